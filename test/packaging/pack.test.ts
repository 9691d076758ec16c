/**
 * The two npm packages, as users get them: `npm pack` at the root (its prepack builds the
 * client files) and `npm pack --workspace server` (its prepack builds the server package),
 * each tarball installed with npm into an empty folder, then used there:
 *
 * - `tabchat`: `import TabChat from 'tabchat'` and `tabchat/node` load and type-check, the
 *   drop-in files are there, and nothing of the server came along (no native addon, no
 *   database or Redis driver, no logger or metrics library);
 * - `tabchat-server`: `npx tabchat-server --help`, `import { createChatServer,
 *   generateUserSig } from 'tabchat-server'` (and its types), and the installed command
 *   serving on `--port 0` with the default `sqlite:` store: /healthz, the drop-in builds, the
 *   demo page, a login and a stored message.
 *
 * Slow on purpose: npm installs from the registry (`--prefer-offline`) and better-sqlite3
 * compiles from source. scripts/test.mjs runs this file as its own step, since packing
 * rebuilds dist/ and server/dist/ of the working tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateUserSig } from '../../server/usersig.js';
import { ROOT, runCliToEnd, startCli } from '../helpers/cli.js';
import { RawClient } from '../helpers/raw-client.js';

const dir = mkdtempSync(join(tmpdir(), 'tabchat-pack-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
const serverPackage = JSON.parse(readFileSync(join(ROOT, 'server', 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };

/**
 * The environment of the npm commands run here: this process's, without what an enclosing
 * `npm test` set for its own script (package and lifecycle variables), so each command
 * sees only its own project.
 */
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_(package|lifecycle|command|config_(workspace|global|prefix))/i.test(name)));

/** Run a command to its end; output kept for the failure message. */
function sh(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: npmEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.once('close', (code) => resolve({ code, output }));
  });
}

async function ok(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await sh(cmd, args, cwd);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} in ${cwd} failed:\n${r.output.slice(-4000)}`);
  return r.output;
}

/** An empty project folder with `tarball` installed by npm. */
async function install(name: string, tarball: string): Promise<string> {
  const project = join(dir, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: `${name}-check`, version: '1.0.0', private: true, type: 'module' }));
  await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project);
  return project;
}

/** Every installed package name under `nodeModules` (nested ones too), and every file ending in `.node`. */
function walk(nodeModules: string, found = { packages: new Set<string>(), addons: [] as string[] }): typeof found {
  if (!existsSync(nodeModules)) return found;
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    const path = join(nodeModules, entry.name);
    if (entry.name.startsWith('@') && entry.isDirectory()) {
      for (const scoped of readdirSync(path)) visit(join(path, scoped), `${entry.name}/${scoped}`, found);
    } else if (entry.isDirectory() && !entry.name.startsWith('.')) {
      visit(path, entry.name, found);
    }
  }
  return found;
}
function visit(packageDir: string, name: string, found: ReturnType<typeof walk>): void {
  found.packages.add(name);
  const files = (sub: string): void => {
    for (const entry of readdirSync(sub, { withFileTypes: true })) {
      const path = join(sub, entry.name);
      if (entry.isDirectory()) {
        if (entry.name === 'node_modules') walk(path, found);
        else files(path);
      } else if (entry.name.endsWith('.node')) found.addons.push(path);
    }
  };
  files(packageDir);
}

/** Type-check `source` in `project` with the repository's TypeScript (strict; types of Node from the repository). */
async function typeCheck(project: string, source: string): Promise<void> {
  writeFileSync(join(project, 'consumer.ts'), source);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        types: ['node'],
      },
      files: ['consumer.ts'],
    }),
  );
  await ok(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(project, 'tsconfig.json')], project);
}

/** Run an ES module snippet in `project` (its node_modules); its stdout. */
function nodeEval(project: string, code: string): Promise<string> {
  return ok(process.execPath, ['--input-type=module', '-e', code], project);
}

test('npm pack builds and packs both packages; each installs into an empty folder and works there', { timeout: 30 * 60_000 }, async (t) => {
  const tarballs = join(dir, 'tarballs');
  mkdirSync(tarballs);
  await ok('npm', ['pack', '--pack-destination', tarballs], ROOT);
  await ok('npm', ['pack', '--workspace', 'server', '--pack-destination', tarballs], ROOT);
  const clientTarball = join(tarballs, `tabchat-${rootPackage.version}.tgz`);
  const serverTarball = join(tarballs, `${serverPackage.name}-${serverPackage.version}.tgz`);
  assert.deepEqual(readdirSync(tarballs).sort(), [clientTarball, serverTarball].map((p) => p.slice(tarballs.length + 1)).sort());
  assert.equal(serverPackage.version, rootPackage.version, 'both packages of one release carry one version');

  await t.test('tabchat: the client entries and their types, the drop-in files, nothing of the server', async () => {
    const project = await install('client', clientTarball);
    const pkg = join(project, 'node_modules', 'tabchat');
    for (const file of ['dist/tabchat.js', 'dist/tabchat-worker.js', 'dist/types/src/index.d.ts', 'dist/types/src/node/index.d.ts']) {
      assert.ok(existsSync(join(pkg, file)), `${file} is in the installed package`);
    }
    const loaded = await nodeEval(
      project,
      `const browser = (await import('tabchat')).default; const node = (await import('tabchat/node')).default;
       console.log(typeof browser.create, typeof node.create, typeof node.EVENT.SDK_READY);`,
    );
    assert.equal(loaded.trim(), 'function function string');
    await typeCheck(
      project,
      `import TabChat from 'tabchat';
       import NodeTabChat from 'tabchat/node';
       const chat = TabChat.create({ SDKAppID: 1400000001 });
       const bot = NodeTabChat.create({ SDKAppID: 1400000001, server: 'ws://127.0.0.1:1/ws' });
       export const calls: Array<Promise<unknown> | undefined> = [chat?.login({ userID: 'alice', userSig: 'sig' }), bot?.logout()];
       // @ts-expect-error: SDKAppID is required (the types are real, not \`any\`)
       TabChat.create({});
       // @ts-expect-error: so is server, in Node
       NodeTabChat.create({ SDKAppID: 1400000001 });
      `,
    );
    const { packages, addons } = walk(join(project, 'node_modules'));
    assert.deepEqual(addons, [], 'no native addon');
    const serverOnly = [serverPackage.name, ...Object.keys(serverPackage.dependencies).filter((d) => !(d in rootPackage.dependencies))];
    assert.ok(serverOnly.includes('better-sqlite3') && serverOnly.includes('pino'), `server-only dependencies: ${serverOnly.join(', ')}`);
    assert.deepEqual(serverOnly.filter((name) => packages.has(name)), [], `none of the server's dependencies (installed: ${[...packages].sort().join(', ')})`);
  });

  await t.test('tabchat-server: the command, the library and its types, serving on the default sqlite store', async (st) => {
    const project = await install('server', serverTarball);
    const help = await ok('npx', ['--no-install', 'tabchat-server', '--help'], project);
    assert.match(help, /tabchat-server --config FILE/);
    const loaded = await nodeEval(project, `const m = await import('tabchat-server'); console.log(typeof m.createChatServer, typeof m.generateUserSig);`);
    assert.equal(loaded.trim(), 'function function');
    await typeCheck(
      project,
      `import { createChatServer, generateUserSig, validateConfig, type ChatServer } from 'tabchat-server';
       const sig: string = generateUserSig({ sdkAppId: 1400000001, key: 'k', identifier: 'alice' });
       export const start = (): Promise<ChatServer> => createChatServer(validateConfig({ apps: [{ sdkAppId: 1400000001, secretKey: sig }] }));
       // @ts-expect-error: a config is required (the types are real, not \`any\`)
       createChatServer();
      `,
    );
    const version = await runCliToEnd(['--version'], { entry: { command: join(project, 'node_modules', '.bin', 'tabchat-server') }, cwd: project });
    assert.deepEqual([version.code, version.stdout.trim()], [0, serverPackage.version]);

    // No `store` key: the default, sqlite:./tabchat.db next to the config file.
    const secretKey = 'pack-test-key';
    const sdkAppId = 1400000001;
    writeFileSync(join(project, 'tabchat.json'), JSON.stringify({ apps: [{ sdkAppId, secretKey }], logLevel: 'warn' }));
    const server = await startCli(['--config', 'tabchat.json', '--port', '0'], { entry: { command: join(project, 'node_modules', '.bin', 'tabchat-server') }, cwd: project });
    st.after(() => server.stop('SIGKILL'));
    const health = await fetch(`${server.httpUrl}/healthz`);
    assert.equal(health.status, 200);
    for (const [path, type, sample] of [
      ['/tabchat.js', 'text/javascript', readFileSync(join(ROOT, 'dist', 'tabchat.js'), 'utf8')],
      ['/tabchat-worker.js', 'text/javascript', readFileSync(join(ROOT, 'dist', 'tabchat-worker.js'), 'utf8')],
      ['/', 'text/html', readFileSync(join(ROOT, 'demo', 'index.html'), 'utf8')],
    ] as const) {
      const res = await fetch(`${server.httpUrl}${path}`);
      assert.equal(res.status, 200, `GET ${path}`);
      assert.match(res.headers.get('content-type') ?? '', new RegExp(`^${type}`), `GET ${path}`);
      assert.equal(await res.text(), sample, `GET ${path} serves the release's own file`);
    }
    const client = await RawClient.connect(server.wsUrl);
    st.after(() => client.terminate());
    const login = await client.login(sdkAppId, 'alice', generateUserSig({ sdkAppId, key: secretKey, identifier: 'alice' }));
    assert.equal(login.ok, true, JSON.stringify(login));
    const sent = await client.request({ type: 'send', instId: login.data.instId, clientMsgId: 'pack-1', to: 'bob', text: 'stored by the installed server' });
    assert.deepEqual([sent.ok, sent.data?.message?.seq], [true, 1], JSON.stringify(sent));
    await server.stop();
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr());
    assert.ok(existsSync(join(project, 'tabchat.db')), 'the sqlite file next to the config');
  });
});
