/**
 * kill -9 in the middle of a send storm, sqlite store (writer thread, group commit,
 * synchronous=FULL): every message the server acknowledged to its sender is in the file
 * afterwards, with the id and seqs it was acknowledged with, and the mailboxes have no
 * gaps. The real `tabchat-server` process, real sockets; the kill lands when enough
 * acknowledgements arrived (polled), while sends are still in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../server/store-sqlite.js';
import { generateUserSig } from '../../server/usersig.js';
import { startCli } from '../helpers/cli.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { isGapless, tempDir } from './util.js';

const APP = 1400000088;
const SECRET = randomBytes(32).toString('hex');
const SENDERS = 4;
/** Sends each sender keeps in flight. */
const WINDOW = 32;
/** The kill lands once this many sends were acknowledged. */
const KILL_AFTER = 600;

interface Acked {
  from: string;
  clientMsgId: string;
  id: string;
  fromSeq: number;
}

test('kill -9 during a send storm: every acknowledged message is in the file with its id and seqs; no seq gaps', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'crash.db');
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    apps: [{ sdkAppId: APP, secretKey: SECRET, adminIdentifier: 'administrator' }],
    store: `sqlite:${file}`,
    logLevel: 'warn',
    rateLimits: { framesPerSecond: 1_000_000, loginsPerIp: 1_000_000, loginsPerUser: 1_000_000 },
  }));
  const server = await startCli(['--config', config, '--port', '0']);
  t.after(() => server.stop('SIGKILL'));

  const acked: Acked[] = [];
  let sent = 0;
  let killed = false;
  const clients: RawClient[] = [];
  const storms: Array<Promise<void>> = [];
  for (let s = 0; s < SENDERS; s++) {
    const from = `sender${s}`;
    const client = await RawClient.connect(server.wsUrl, { record: false });
    clients.push(client);
    const login = await client.login(APP, from, generateUserSig({ sdkAppId: APP, key: SECRET, identifier: from }));
    assert.equal(login.ok, true, JSON.stringify(login));
    const instId = login.data.instId as number;
    // WINDOW loops per sender, each sending the next message once its previous one answered.
    const loop = async (lane: number) => {
      for (let i = 0; !killed; i++) {
        const clientMsgId = `${from}-${lane}-${i}`;
        sent++;
        let result;
        try {
          result = await client.request({ type: 'send', instId, clientMsgId, to: 'bob', text: `storm ${clientMsgId}` }, 60_000);
        } catch {
          return; // the socket died with the server: this send was never acknowledged
        }
        assert.equal(result.ok, true, JSON.stringify(result));
        const m = result.data.message;
        acked.push({ from, clientMsgId, id: m.id, fromSeq: m.seq });
      }
    };
    for (let lane = 0; lane < WINDOW; lane++) storms.push(loop(lane));
  }

  await until(() => acked.length >= KILL_AFTER, 120_000, `${KILL_AFTER} acknowledged sends`);
  server.child.kill('SIGKILL');
  killed = true;
  const inFlight = sent - acked.length;
  const exit = await server.exited;
  assert.equal(exit.signal, 'SIGKILL');
  await Promise.all(storms);
  for (const c of clients) c.terminate();
  const ackedAtKill = acked.length;
  assert.ok(inFlight > 0, 'sends were still in flight when the server died');

  const store = await SqliteStore.open(file);
  t.after(() => store.close());
  const bob = [];
  for (let after = 0; ;) {
    const page = await store.read(APP, 'bob', after, 1000);
    bob.push(...page.entries);
    if (!page.more) break;
    after = page.entries.at(-1)!.seq;
  }
  assert.ok(isGapless(bob.map((e) => e.seq)), 'bob’s mailbox is 1..n without gaps');
  const stored = new Map(bob.map((e) => [`${e.message.from}/${e.message.clientMsgId}`, e.message]));
  let missing = 0;
  for (const a of acked) {
    const m = stored.get(`${a.from}/${a.clientMsgId}`);
    if (!m) {
      missing++;
      continue;
    }
    assert.equal(m.id, a.id, `${a.clientMsgId}: the id it was acknowledged with`);
    assert.equal(m.fromSeq, a.fromSeq, `${a.clientMsgId}: the sender's seq it was acknowledged with`);
  }
  assert.equal(missing, 0, `${missing} of ${acked.length} acknowledged messages lost`);
  assert.ok(bob.length >= ackedAtKill, `stored ${bob.length} ≥ acknowledged ${ackedAtKill}`);
  for (let s = 0; s < SENDERS; s++) {
    const head = await store.head(APP, `sender${s}`);
    const mine = bob.filter((e) => e.message.from === `sender${s}`).map((e) => e.message.fromSeq).sort((x, y) => x - y);
    assert.ok(isGapless(mine), `sender${s}: seqs 1..${head} without gaps`);
    assert.equal(mine.length, head);
  }
});
