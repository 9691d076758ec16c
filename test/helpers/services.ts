/**
 * Real Redis and PostgreSQL servers for the cluster tests, each started by the test itself
 * in a temporary folder on a free port (never a shared or system instance), and stopped
 * when the process exits. Both come from Debian packages (scripts/setup.sh installs them):
 * `redis-server` (/usr/bin/redis-server) and `postgresql` (/usr/lib/postgresql/<v>/bin).
 * A missing binary FAILS with a message saying what to install; nothing is skipped.
 *
 * Postgres refuses to run as root: as root the helpers create (once) an unprivileged
 * system user `tabchat-test` and run initdb / pg_ctl through `runuser -u tabchat-test --`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const REDIS_SERVER = '/usr/bin/redis-server';
const PG_ROOT = '/usr/lib/postgresql';
const PG_USER = 'tabchat-test';

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes and data folders to clean up if the test process exits without doing it. */
const exitHooks = new Set<() => void>();
let hooked = false;
function onExit(hook: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const h of exitHooks) {
        try {
          h();
        } catch {
          // best effort
        }
      }
    });
  }
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

/** Answer of one inline Redis command over a raw socket (no client library involved). */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Whether the server process runs. */
  readonly running: boolean;
  /** Kill the server (SIGKILL: no goodbye; data is lost, there is no persistence). */
  kill(): Promise<void>;
  /** Start it again on the same port (empty). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Start a private redis-server (`--save '' --appendonly no`) in a temporary folder. */
export async function startRedis(): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(`${REDIS_SERVER} is missing: the cluster tests need Debian's redis-server (run scripts/setup.sh, or apt-get install -y redis-server)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const kill = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const unhook = onExit(() => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async () => {
    const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
      stdio: 'ignore',
    });
    child = proc;
    const deadline = Date.now() + 30_000;
    while (!(await redisPing(port))) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode} on port ${port}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within 30 s`);
      await sleep(20);
    }
  };
  const killAndWait = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== null && child.exitCode === null && child.signalCode === null;
    },
    kill: killAndWait,
    start,
    close: async () => {
      await killAndWait();
      unhook();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pgBin(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'pg_ctl'))) : [];
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server under ${PG_ROOT}: the cluster tests need Debian's postgresql (run scripts/setup.sh, or apt-get install -y postgresql)`);
  }
  versions.sort((a, b) => Number(b) - Number(a));
  return join(PG_ROOT, versions.includes('15') ? '15' : versions[0]!, 'bin');
}

/** Run a Postgres tool, as the unprivileged test user when we are root. */
function pgRun(bin: string, tool: string, args: string[], timeoutMs = 60_000): void {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', PG_USER, '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const res = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs });
  if (res.status !== 0) {
    throw new Error(`${tool} ${args.join(' ')} failed (${res.status ?? res.signal}): ${(res.stderr || res.stdout || String(res.error ?? '')).slice(-2000)}`);
  }
}

function ensurePgUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = () => spawnSync('id', ['-u', PG_USER], { encoding: 'utf8' });
  if (id().status !== 0) {
    const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER], { encoding: 'utf8' });
    if (made.status !== 0 && id().status !== 0) throw new Error(`cannot create the user ${PG_USER} for Postgres: ${made.stderr}`);
  }
  const uid = Number(id().stdout.trim());
  const gid = Number(spawnSync('id', ['-g', PG_USER], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

export interface PostgresServer {
  readonly port: number;
  /** URL of a database on this server (default `postgres`). */
  url(database?: string): string;
  /** Create a fresh database; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stop the server (`immediate`: like a crash, no checkpoint). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * initdb + start a private PostgreSQL (trust auth, loopback only) in a temporary folder.
 * @param opts.fsync - commit to disk as production does (default off: faster tests)
 */
export async function startPostgres(opts: { fsync?: boolean } = {}): Promise<PostgresServer> {
  const bin = pgBin();
  const owner = ensurePgUser();
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  writeFileSync(log, '');
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(log, owner.uid, owner.gid);
  }
  const port = await freePort();
  let running = false;
  const stopSync = (mode: string) => {
    if (!running) return;
    try {
      pgRun(bin, 'pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);
    } catch {
      // already gone
    }
    running = false;
  };
  const unhook = onExit(() => {
    stopSync('immediate');
    rmSync(dir, { recursive: true, force: true });
  });
  pgRun(bin, 'initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const start = async () => {
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${opts.fsync ? 'on' : 'off'} -c max_connections=200`;
    pgRun(bin, 'pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', '30', 'start']);
    running = true;
  };
  await start();
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop: async (mode = 'fast') => stopSync(mode),
    start,
    close: async () => {
      stopSync('immediate');
      unhook();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
