/**
 * Tabs of different browsers (BrowserContexts) on different server nodes of one cluster:
 * three `tabchat-server` processes (from source) on a private Redis and Postgres, each
 * serving the harness page, so a tab talks to the node that served it. Limits, kicks and
 * messages must hold across nodes exactly as on one server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type BrowserContext } from '@playwright/test';
import { loginReady, openHarnessTab, sdkStates, type Tab } from './fixtures.js';
import { startCli, type CliServer } from '../test/helpers/cli.js';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../test/helpers/services.js';

const here = dirname(fileURLToPath(import.meta.url));
const SDKAPPID = 1400000002;

let redis: RedisServer;
let pg: PostgresServer;
let dir: string;
const nodes: CliServer[] = [];

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  dir = mkdtempSync(join(tmpdir(), 'tabchat-e2e-cluster-'));
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      apps: [{ sdkAppId: SDKAPPID, secretKey: randomBytes(24).toString('hex'), maxInstancesPerPlatform: 2 }],
      devUserSig: true,
      store: await pg.createDatabase('e2e'),
      redis: redis.url,
      redisPrefix: 'e2e:',
      logLevel: 'silent',
      port: 0,
      static: { '/e2e/': join(here, 'pages') },
    }),
  );
  for (const name of ['node1', 'node2', 'node3']) nodes.push(await startCli(['--config', config, '--node', name], { stderr: 'inherit' }));
});

test.afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  await Promise.allSettled([redis?.close(), pg?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A tab of `ctx` on the harness page served by `node`, with a chat created and logged in as `userID`. */
async function readyTabOn(ctx: BrowserContext, node: CliServer, userID: string, problems: string[]): Promise<Tab> {
  const tab = await openHarnessTab(ctx, `${node.httpUrl}/e2e/index.html`, problems);
  await loginReady(tab, SDKAPPID, userID);
  return tab;
}

const states = (tab: Tab): Promise<string[]> => sdkStates(tab, SDKAPPID);

test('limit 2 across three browsers on three nodes: a3 on node 3 kicks a1 on node 1; a2 on node 2 stays', async ({ browser }) => {
  const user = `a-${randomBytes(3).toString('hex')}`;
  const problems: string[] = [];
  const contexts = await Promise.all(nodes.map(() => browser.newContext()));
  try {
    const a1 = await readyTabOn(contexts[0]!, nodes[0]!, user, problems);
    const a2 = await readyTabOn(contexts[1]!, nodes[1]!, user, problems);
    const a3 = await readyTabOn(contexts[2]!, nodes[2]!, user, problems);
    await expect.poll(() => states(a1)).toEqual(['sdkStateReady', 'kickedOut:multipleAccount', 'sdkStateNotReady']);
    expect(await states(a2)).toEqual(['sdkStateReady']);
    expect(await states(a3)).toEqual(['sdkStateReady']);
    expect(await a2.h('isReady', SDKAPPID)).toBe(true);
    expect(problems).toEqual([]);
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});

test('a message from a tab on node 1 reaches the recipient’s tabs on nodes 2 and 3, once each', async ({ browser }) => {
  const stem = randomBytes(3).toString('hex');
  const problems: string[] = [];
  const contexts = await Promise.all(nodes.map(() => browser.newContext()));
  try {
    const alice = await readyTabOn(contexts[0]!, nodes[0]!, `alice-${stem}`, problems);
    const bob2 = await readyTabOn(contexts[1]!, nodes[1]!, `bob-${stem}`, problems);
    const bob3 = await readyTabOn(contexts[2]!, nodes[2]!, `bob-${stem}`, problems);
    for (let i = 0; i < 5; i++) {
      const sent = await alice.h('send', SDKAPPID, { to: `bob-${stem}`, text: `hello ${i}` });
      expect(sent.ok, JSON.stringify(sent)).toBe(true);
    }
    for (const bob of [bob2, bob3]) {
      await expect.poll(async () => (await bob.h('received', SDKAPPID)).map((m: { text: string }) => m.text)).toEqual([0, 1, 2, 3, 4].map((i) => `hello ${i}`));
    }
    expect(problems).toEqual([]);
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});
