/**
 * One engine carrying several instances (as the SharedWorker / leader hub does) across a
 * server restart: the new server numbers its instances from 1 again, so the id one instance
 * gets on its re-login can be the stale id of another instance still being restored. Every
 * instance must end up logged in again, none lost, none sharing an id.
 *
 * The collision itself depends on the order of the replies (a re-login answered before another
 * instance's resume is): this test guards the outcome; e2e/restart.spec.ts (SIGKILL under
 * load) is where it was seen (two instances claiming one id, the third session silently gone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SessionEngine } from '../../src/core/engine.js';
import type { InstanceEvents, SessionHandle } from '../../src/core/types.js';
import { startTestServer } from '../helpers/server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('a restarted server reusing instance ids: every instance of one engine logs in again', async (t) => {
  const server = await startTestServer({ maxInstancesPerPlatform: 20 });
  const engine = new SessionEngine({ url: server.wsUrl, WebSocket, clientName: 'restart-ids-test', logger: quiet, backoff: () => 50 });
  t.after(async () => {
    engine.close();
    await server.close();
  });
  const ended: string[] = [];
  const events = (name: string) => ({
    onKicked: (type: string) => ended.push(`${name} kicked ${type}`),
    onLost: (error: { code: number }) => ended.push(`${name} lost ${error.code}`),
    onMessages: () => {},
  }) as unknown as InstanceEvents;
  const handles: SessionHandle[] = [];
  // bob first, so alice's ids after the restart (1, 2, 3 …) overlap her old ones (2, 3, 4).
  handles.push((await engine.login({ sdkAppId: server.sdkAppId, userID: 'bob', userSig: server.sig('bob'), platform: 'Web' }, events('bob'))).handle);
  for (let i = 0; i < 3; i++) {
    handles.push((await engine.login({ sdkAppId: server.sdkAppId, userID: 'alice', userSig: server.sig('alice'), platform: 'Web' }, events(`alice${i}`))).handle);
  }
  await server.restart();
  const online = async (user: string) => (await server.rest('openim/query_online_status', { To_Account: [user], IsNeedDetail: 1 })).QueryResult[0].Detail as Array<{ InstId: number; Connected: boolean }>;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const alice = await online('alice');
    const bob = await online('bob');
    if (alice.length === 3 && bob.length === 1 && [...alice, ...bob].every((d) => d.Connected)) break;
    if (Date.now() > deadline) assert.fail(`not every instance came back: alice ${JSON.stringify(alice)}, bob ${JSON.stringify(bob)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(ended, []);
  const ids = handles.map((h) => h.instId);
  assert.equal(new Set(ids).size, 4, `distinct ids ${ids.join(',')}`);
  const serverIds = [...(await online('alice')), ...(await online('bob'))].map((d) => d.InstId).sort();
  assert.deepEqual([...ids].sort(), serverIds);
  assert.equal(engine.instanceCount, 4);
});
