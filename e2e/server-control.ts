/**
 * A chat server the test can stop and start again on the same port (same origin, so the
 * pages, their IndexedDB and their SharedWorker stay valid), for what Playwright cannot do
 * to a SharedWorker: cut its network. `context.setOffline()` and `routeWebSocket()` do not
 * touch the worker's socket; stopping the server does.
 *
 * One server per test (the worker-scoped server of fixtures.ts is shared by every test of a
 * Playwright worker and must not restart). Messages are stored in sqlite, so what the server
 * acknowledged survives its restarts, as in production.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type BrowserContext } from '@playwright/test';
import { generateUserSig } from '../server/usersig.js';
import { RESUME_WINDOW_MS, adminRest, openHarnessTab, startBuiltServer } from './fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The one app of a restartable server: 20 instances per platform, policy multi. */
export const RESTART_APP = 1400000101;

export interface RestartableServer {
  httpUrl: string;
  /** Stop the process (SIGTERM, or SIGKILL: no goodbye to the clients) and wait for it to exit. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Start it again on the same port, with the same config and sqlite file. */
  start(): Promise<void>;
  /** `Detail[]` (online only) of query_online_status for one user. */
  onlineInstances(userID: string): Promise<Array<{ Platform: string; Status: string; InstId: number }>>;
  /** POST /v4/<command> as the admin; the parsed JSON body. */
  rest(command: string, body: unknown): Promise<any>;
  /** A UserSig signed in Node (`expire` in seconds). */
  sig(userID: string, options?: { expire?: number }): string;
  /** Stop for good and remove its files. */
  close(): Promise<void>;
}

const SECRET = randomBytes(24).toString('hex');
const ADMIN = 'administrator';

/** Start a restartable server (free port, sqlite store, the e2e pages under `/e2e/`). */
export async function startRestartableServer(): Promise<RestartableServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-e2e-restart-'));
  const config = {
    apps: [{ sdkAppId: RESTART_APP, secretKey: SECRET, adminIdentifier: ADMIN, maxInstancesPerPlatform: 20, loginPolicy: 'multi', allowedOrigins: ['*'] }],
    devUserSig: true,
    resumeWindowMs: RESUME_WINDOW_MS,
    store: `sqlite:${join(dir, 'messages.db')}`,
    // Every test user logs in from this one address, many times a minute: not an attack.
    rateLimits: { connectionsPerIp: 10_000, loginsPerIp: 1e9, loginsPerUser: 1e9, connectionsPerUser: 1e6 },
    static: { '/e2e/': join(here, 'pages') },
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  let cli = await startBuiltServer(['--config', configPath, '--port', '0']);
  const { httpUrl } = cli;
  const port = String(cli.port);
  const rest = (command: string, body: unknown) => adminRest(httpUrl, RESTART_APP, SECRET, ADMIN, command, body);
  return {
    httpUrl,
    rest,
    sig: (userID, options = {}) => generateUserSig({ sdkAppId: RESTART_APP, key: SECRET, identifier: userID, ...options }),
    stop: (signal) => cli.stop(signal),
    async start() {
      if (cli.child.exitCode === null && cli.child.signalCode === null) throw new Error('the server is still running');
      cli = await startBuiltServer(['--config', configPath, '--port', port]);
    },
    async onlineInstances(userID) {
      const body = await rest('openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
      if (body.ErrorCode !== 0) throw new Error(`query_online_status failed: ${JSON.stringify(body)}`);
      return (body.QueryResult?.[0]?.Detail ?? []).filter((d: { Status: string }) => d.Status !== 'Offline');
    },
    async close() {
      await cli.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Open harness tabs on `server` (the fixture's `openTab` only knows its own server), and
 * collect their console errors and page errors: `problems` must be empty at the end.
 */
export function tabOpener(server: { httpUrl: string }, defaultContext: BrowserContext, allow: RegExp[] = []) {
  // These servers are stopped on purpose. On the leader-tab path the socket lives in a page,
  // so Chromium logs each refused reconnect attempt to that page's console.
  allow = [...allow, /WebSocket connection to '.*' failed: .*ERR_CONNECTION_REFUSED/];
  const problems: string[] = [];
  const openTab = (options: { ctx?: BrowserContext } = {}) =>
    openHarnessTab(options.ctx ?? defaultContext, `${server.httpUrl}/e2e/index.html`, problems, allow);
  const assertNoProblems = () => expect(problems, 'console errors / page errors during the test').toEqual([]);
  return { openTab, problems, assertNoProblems };
}
