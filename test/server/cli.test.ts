/**
 * The `tabchat-server` command as a child process (server/cli.ts through tsx): serving,
 * printing UserSigs, config errors and SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLOSE } from '../../src/protocol/codes.js';
import { runCliToEnd as runToEnd, startCli, type CliServer } from '../helpers/cli.js';
import { RawClient } from '../helpers/raw-client.js';
import { generateUserSig, verifyUserSig } from '../../server/usersig.js';

const dir = mkdtempSync(join(tmpdir(), 'tabchat-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = randomBytes(32).toString('hex');
const APP = 1400000077;

function writeConfig(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}
const goodConfig = () =>
  writeConfig(`good-${randomBytes(4).toString('hex')}.json`, {
    apps: [{ sdkAppId: APP, secretKey: SECRET, adminIdentifier: 'administrator' }],
    store: 'memory',
    logLevel: 'warn',
    shutdownGraceMs: 2000,
  });

/** Start the server from the sources; killed when the test ends. */
async function startServer(t: { after(fn: () => unknown): void }, args: string[]): Promise<CliServer> {
  const s = await startCli(args);
  t.after(() => s.stop('SIGKILL'));
  return s;
}

test('--port 0 picks a free port, prints it and serves /healthz; SIGTERM closes clients with 4000 and exits 0', async (t) => {
  const s = await startServer(t, ['--config', goodConfig(), '--port', '0']);
  assert.ok(s.port > 0 && s.port !== 8080, `port ${s.port}`);
  assert.match(s.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'default host 127.0.0.1');
  const health = await fetch(`${s.httpUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as any).status, 'ok');

  const client = await RawClient.connect(`ws://127.0.0.1:${s.port}/ws`);
  const login = await client.login(APP, 'alice', generateUserSig({ sdkAppId: APP, key: SECRET, identifier: 'alice' }));
  assert.equal(login.ok, true, JSON.stringify(login));

  s.child.kill('SIGTERM');
  const closed = await client.waitClosed(10_000);
  assert.equal(closed.code, CLOSE.SHUTDOWN);
  const { code, signal } = await s.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `stderr: ${s.stderr()}`);
});

test('usersig --config F --user U prints a UserSig that verifies with the configured key', async () => {
  const config = goodConfig();
  const r = await runToEnd(['usersig', '--config', config, '--user', 'administrator', '--expire', '600']);
  assert.equal(r.code, 0, r.stderr);
  const userSig = r.stdout.trim();
  assert.match(userSig, /^[A-Za-z0-9*\-_]+$/);
  const f = verifyUserSig(userSig, { sdkAppId: APP, key: SECRET, userID: 'administrator' });
  assert.equal(f.expire, 600);
  assert.throws(() => verifyUserSig(userSig, { sdkAppId: APP, key: SECRET, userID: 'alice' }));

  const unknownApp = await runToEnd(['usersig', '--config', config, '--user', 'u', '--app', '1400009999']);
  assert.equal(unknownApp.code, 2);
  assert.match(unknownApp.stderr, /1400009999 is not in the config/);
  const noUser = await runToEnd(['usersig', '--config', config]);
  assert.equal(noUser.code, 2);
  assert.match(noUser.stderr, /--user/);
});

test('bad config: exit code 2 with a clear message (missing file, invalid JSON, invalid value, no --config)', async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['missing file', ['--config', join(dir, 'does-not-exist.json')], /cannot read config file .*does-not-exist\.json/],
    ['invalid JSON', ['--config', writeConfig('broken.json', '{"apps": [')], /broken\.json is not valid JSON/],
    [
      'invalid policy',
      ['--config', writeConfig('policy.json', { apps: [{ sdkAppId: APP, secretKey: 'k', loginPolicy: 'quad' }] })],
      /apps\[0\]\.loginPolicy must be one of single, dual, triple, multi/,
    ],
    ['no apps', ['--config', writeConfig('noapps.json', { apps: [] })], /config\.apps must be a non-empty array/],
    ['bad port flag', ['--config', goodConfig(), '--port', 'eighty'], /--port must be an integer/],
    ['no --config', [], /give --config FILE/],
  ];
  const results = await Promise.all(cases.map(([, args]) => runToEnd(args)));
  cases.forEach(([what, , message], i) => {
    const r = results[i]!;
    assert.equal(r.code, 2, `${what}: exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, message, what);
    assert.match(r.stderr, /^tabchat-server: /, `${what}: prefixed`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  });
});
