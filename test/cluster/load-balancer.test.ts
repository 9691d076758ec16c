/**
 * The deployment shape of docs/scaling.md "Load balancer": clients know ONE URL, a TCP load
 * balancer's, in front of the nodes. When the node holding a client's connection is killed
 * (SIGKILL, a separate process), the SDK reconnects to the same URL, lands on the live node,
 * resumes its instance there without a new login or a kick, and catches up on everything
 * acknowledged meanwhile. A user whose client does not come back is reported offline within
 * the documented bound.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import TabChat, { type Chat, type Message } from '../../src/node/index.js';
import { RawClient, onlineIds, startCluster, startProcessNode, until, type TestCluster } from './util.js';

/**
 * A round-robin TCP balancer on a free port of 127.0.0.1: each connection goes to the next
 * backend; a backend that refuses is skipped (as a load balancer's failed connect or health
 * check would), so no connection is lost to a dead node.
 */
class Balancer {
  private next = 0;
  readonly picked: number[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, private readonly ports: number[]) {}

  static async start(t: TestContext, ports: number[]): Promise<Balancer> {
    const server = createServer();
    const lb = new Balancer(server, ports);
    server.on('connection', (client) => lb.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => lb.close());
    return lb;
  }

  get url(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('balancer not listening');
    return `ws://127.0.0.1:${address.port}/ws`;
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const attempt = (tries: number) => {
      const index = this.next++ % this.ports.length;
      const upstream = connect(this.ports[index]!, '127.0.0.1');
      this.sockets.add(upstream);
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        this.picked.push(index);
        upstream.on('error', () => client.destroy());
        upstream.on('close', () => client.destroy());
        client.on('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.once('error', () => {
        this.sockets.delete(upstream);
        if (connected) return; // the pipe's own handlers close the client
        if (tries + 1 < this.ports.length) attempt(tries + 1);
        else client.destroy();
      });
    };
    attempt(0);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

function portOf(wsUrl: string): number {
  return Number(new URL(wsUrl).port);
}

/** A Node SDK chat on `url` (destroyed after the test) that records what it receives and announces. */
async function chatOn(t: TestContext, c: TestCluster, url: string, userID: string) {
  const chat: Chat = TabChat.create({ SDKAppID: c.sdkAppId, server: url })!;
  chat.setLogLevel(4);
  t.after(() => chat.destroy().catch(() => undefined));
  const inbox: Message[] = [];
  const events: string[] = [];
  chat.on(TabChat.EVENT.MESSAGE_RECEIVED, (e) => inbox.push(...(e.data as Message[])));
  chat.on(TabChat.EVENT.KICKED_OUT, (e) => events.push(`kicked:${(e.data as { type: string }).type}`));
  chat.on(TabChat.EVENT.SDK_NOT_READY, () => events.push('not-ready'));
  chat.on(TabChat.EVENT.NET_STATE_CHANGE, (e) => events.push(`net:${(e.data as { state: string }).state}`));
  const ready = new Promise((r) => chat.on(TabChat.EVENT.SDK_READY, r));
  await chat.login({ userID, userSig: c.sig(userID) });
  await ready;
  const send = (to: string, text: string) => chat.sendMessage(chat.createTextMessage({ to, conversationType: 'C2C', payload: { text } }));
  return { chat, inbox, events, send, texts: () => inbox.map((m) => m.payload.text as string) };
}

test('nodes behind one load-balancer URL: a client whose node is killed reconnects through the same URL, resumes on the live node and misses nothing; a client that does not come back is reported offline within the bound', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 1 }, { nodes: 1, resumeWindowMs: 30_000 });
  const live = c.nodes[0]!;
  const doomed = await startProcessNode(t, c, 'node2');
  // The first connection goes to the doomed node, the second to the live one.
  const lb = await Balancer.start(t, [portOf(doomed.wsUrl), portOf(live.wsUrl)]);
  const alice = await chatOn(t, c, lb.url, 'alice');
  const bob = await chatOn(t, c, lb.url, 'bob');
  assert.deepEqual(lb.picked, [0, 1], 'alice on the doomed node, bob on the live one');
  const [aliceInst] = await onlineIds(c, live.httpUrl, 'alice');
  assert.ok(aliceInst, 'alice online');
  // A client on the doomed node that never reconnects (a closed laptop).
  const gone = await RawClient.connect(doomed.wsUrl);
  t.after(() => gone.close());
  assert.ok((await gone.login(c.sdkAppId, 'carol', c.sig('carol'))).ok);

  await bob.send('alice', 'before');
  await until(() => alice.texts().includes('before'), 5_000, 'push across nodes before the kill');
  const eventsBefore = alice.events.length;

  await doomed.kill();
  const killedAt = Date.now();
  // Acknowledged while alice's node is dead and she is not back yet.
  const during = ['during0', 'during1', 'during2'];
  for (const text of during) await bob.send('alice', text);

  // Alice's SDK reconnects to the balancer's URL, which skips the dead node: she resumes her
  // instance on the live node (same instance: no new login, nobody kicked) and syncs.
  await until(() => during.every((x) => alice.texts().includes(x)), 20_000, `alice caught up (has ${alice.texts()})`);
  assert.deepEqual(await onlineIds(c, live.httpUrl, 'alice'), [aliceInst], 'the same instance, resumed on the live node');
  assert.ok(alice.chat.isReady());
  const after = alice.events.slice(eventsBefore);
  assert.ok(!after.some((e) => e.startsWith('kicked:') || e === 'not-ready'), `no kick, no SDK_NOT_READY: ${after}`);
  assert.ok(after.includes('net:connecting') && after.at(-1) === 'net:connected', `reconnected: ${after}`);
  assert.ok(lb.picked.length >= 3 && lb.picked.at(-1) === 1, `the reconnect landed on the live node: ${lb.picked}`);

  await bob.send('alice', 'after');
  await alice.send('bob', 'back');
  await until(() => alice.texts().includes('after') && bob.texts().includes('back'), 5_000, 'both ways after the move');
  assert.deepEqual(alice.texts(), ['before', ...during, 'after'], 'each once, in order');

  // Carol never came back: reported offline within nodeTimeoutMs + a few heartbeats of the kill.
  const { nodeTimeoutMs = 0, nodeHeartbeatMs = 0 } = c.serverOptions;
  const bound = nodeTimeoutMs + 3 * nodeHeartbeatMs + 1_000;
  await until(async () => (await onlineIds(c, live.httpUrl, 'carol')).length === 0, bound + 5_000, 'carol released');
  const releasedAfter = Date.now() - killedAt;
  assert.ok(releasedAfter < bound, `carol reported online ${releasedAfter} ms after the kill (bound ${bound} ms)`);
  assert.deepEqual(await onlineIds(c, live.httpUrl, 'alice'), [aliceInst], 'the reaper leaves the moved instance alone');
});
