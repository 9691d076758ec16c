/**
 * Version skew: tabs of two deploys (two builds) open in one browser profile. The worker name,
 * the leader lock and the channels all carry the build, so each build runs its own hub and
 * socket; a tab never registers its session with the other build's hub (a worker of another
 * build refuses it with 9012), so no tab's session is ever held by both. The old build steps
 * down when its last tab goes: its instance leaves, the new build's session is untouched.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP, ROOT, expect, loginReady, sharedWorkerTargets, test, type Tab } from './fixtures.js';

const BUILD_RE = /\b\d+\.\d+\.\d+\+[0-9a-f]{10}\b/;
const NEW_BUILD = '9.9.9+ffffffffff';

/** Serve a copy of the built tab script and worker with another build id under /e2e-tmp/skew/. */
function deployNewBuild(tmpDir: string): string {
  const dir = join(tmpDir, 'skew');
  mkdirSync(dir, { recursive: true });
  const tabScript = readFileSync(join(ROOT, 'dist', 'tabchat.js'), 'utf8');
  const worker = readFileSync(join(ROOT, 'dist', 'tabchat-worker.js'), 'utf8');
  const build = BUILD_RE.exec(worker)?.[0];
  expect(build, 'build id in dist/tabchat-worker.js').toBeTruthy();
  expect(tabScript).toContain(build);
  writeFileSync(join(dir, 'tabchat.js'), tabScript.split(build!).join(NEW_BUILD));
  writeFileSync(join(dir, 'tabchat-worker.js'), worker.split(build!).join(NEW_BUILD));
  writeFileSync(join(dir, 'index.html'), [
    '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">',
    '<title>tabchat e2e tab (new deploy)</title>',
    '<script src="/e2e-tmp/skew/tabchat.js"></script><script src="/e2e/harness.js"></script>',
    '</head><body><pre id="state">loading</pre></body></html>',
  ].join('\n'));
  return build!;
}

test('an old and a new deploy in one profile: two hubs, one session per tab, the old one steps down cleanly', async ({ openTab, server, uid, noSharedWorker, browserName }) => {
  const oldBuild = deployNewBuild(server.tmpDir);
  const user = uid();
  const oldTab = await openTab();
  await loginReady(oldTab, APP.limit2, user);
  const newTab = await openTab({ path: '/e2e-tmp/skew/index.html' });
  await loginReady(newTab, APP.limit2, user);

  const oldState = (await oldTab.h('workerState')).value;
  const newState = (await newTab.h('workerState')).value;
  expect(oldState.build).toBe(oldBuild);
  expect(newState.build).toBe(NEW_BUILD);
  expect(newState.name).toContain(NEW_BUILD);
  expect(newState.epoch).not.toBe(oldState.epoch);
  // Each hub carries only its own build's tab: no session is held twice.
  expect(oldState.tabs).toHaveLength(1);
  expect(newState.tabs).toHaveLength(1);
  expect(newState.tabs[0]).not.toBe(oldState.tabs[0]);
  expect(oldState.instances).toHaveLength(1);
  expect(newState.instances).toHaveLength(1);
  // Two SharedWorkers in the profile: counted through CDP in Chromium; Firefox has no CDP, and
  // there the two epochs and builds above (each hub answers for itself) show the two workers.
  if (!noSharedWorker && browserName === 'chromium') expect(await sharedWorkerTargets(oldTab.page)).toHaveLength(2);
  const online = await server.onlineInstances(APP.limit2, user);
  expect(online.map((d) => d.InstId).sort()).toEqual([oldState.instances[0].instId, newState.instances[0].instId].sort());
  await expect.poll(() => server.connections()).toBe(2);

  // The old deploy's last tab goes: its hub logs its instance out and closes its socket.
  await oldTab.page.close();
  await expect.poll(async () => (await server.onlineInstances(APP.limit2, user)).map((d) => d.InstId), { timeout: noSharedWorker ? 20_000 : 5_000 })
    .toEqual([newState.instances[0].instId]);
  await expect.poll(() => server.connections()).toBe(1);
  expect(await newTab.h('isReady', APP.limit2)).toBe(true);
  expect((await newTab.events(APP.limit2)).filter((e) => e.name === 'kickedOut' || e.name === 'sdkStateNotReady')).toEqual([]);
  expect((await newTab.h('serverTime', APP.limit2)).ok).toBe(true);
});

test('a new-deploy tab pointed at the old worker is refused (9012) and never registered there', async ({ openTab, server, uid, noSharedWorker }) => {
  test.skip(noSharedWorker, 'workerUrl selects a SharedWorker; the leader path has no worker URL to mix up');
  const oldBuild = deployNewBuild(server.tmpDir);
  const user = uid();
  const oldTab = await openTab();
  await loginReady(oldTab, APP.limit2, user);
  const newTab = await openTab({ path: '/e2e-tmp/skew/index.html' });
  expect(await newTab.h('create', { SDKAppID: APP.limit2, workerUrl: '/tabchat-worker.js' })).toEqual({ ok: true, value: 'new' });
  const login = await newTab.h('login', APP.limit2, user);
  expect(login).toMatchObject({ ok: false, code: 9012 });
  expect(login.message).toContain(oldBuild);
  const state = (await oldTab.h('workerState')).value;
  expect(state.tabs).toHaveLength(1);
  expect(state.instances).toHaveLength(1);
  expect(await server.onlineInstances(APP.limit2, user)).toHaveLength(1);
  expect(await oldTab.h('isReady', APP.limit2)).toBe(true);
});
