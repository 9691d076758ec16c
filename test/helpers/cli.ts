/**
 * `tabchat-server` in a child process: the one spawner of the Node tests, the e2e fixtures,
 * the benchmarks and the packaging test. It runs the sources through tsx, the built
 * package (server/dist, what `npm pack --workspace server` ships), a copy of it, or an
 * installed `tabchat-server` bin; waits for the "listening" line by watching the output
 * (never by sleeping); and stops the process with a signal (SIGKILL if it hangs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The server's CLI in the sources. */
export const SOURCE_CLI = join(ROOT, 'server', 'cli.ts');
/** The server's CLI as `npm run build` compiles it into the server package (server/dist). */
export const BUILT_CLI = join(ROOT, 'server', 'dist', 'server', 'cli.js');

/**
 * What to run: `sources` (server/cli.ts through tsx), `built` ({@link BUILT_CLI}), a Node
 * script (`{script}`: a copy of the built CLI) or an executable (`{command}`: an installed bin).
 */
export type CliEntry = 'sources' | 'built' | { script: string } | { command: string };

export interface CliOptions {
  /** Default `sources`. */
  entry?: CliEntry;
  /** Working directory; default the repository root. */
  cwd?: string;
  /** `inherit` shows the server's stderr (its errors) on this process's stderr; default `pipe` (kept in {@link CliProcess.stderr}). */
  stderr?: 'pipe' | 'inherit';
}

export interface CliProcess {
  child: ChildProcess;
  /** Everything the process wrote to stdout so far. */
  stdout(): string;
  /** Everything it wrote to stderr so far (empty with `stderr: 'inherit'`). */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A started server: its URLs, from the line it printed. */
export interface CliServer extends CliProcess {
  httpUrl: string;
  wsUrl: string;
  port: number;
  /** Send `signal` (SIGKILL after `killAfterMs`, default 5 s) and wait for the exit; nothing if it has exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL', killAfterMs?: number): Promise<void>;
}

/** The line the CLI prints on stdout once it listens. */
const LISTENING = /tabchat-server listening on (http:\/\/\S+)/;

function command(entry: CliEntry): [string, string[]] {
  if (entry === 'sources') return [process.execPath, ['--import', 'tsx', SOURCE_CLI]];
  if (entry === 'built') return [process.execPath, [BUILT_CLI]];
  if ('script' in entry) return [process.execPath, [entry.script]];
  return [entry.command, []];
}

/** Run the CLI with `args` (a command that ends, or a server: see {@link startCli}). */
export function runCli(args: string[], opts: CliOptions = {}): CliProcess {
  const [cmd, prefix] = command(opts.entry ?? 'sources');
  const child = spawn(cmd, [...prefix, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', opts.stderr ?? 'pipe'] });
  let out = '';
  let err = '';
  // Read both pipes for the whole life of the process: a full pipe would block the server.
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Run the CLI to its end (SIGKILL after `timeoutMs`). */
export async function runCliToEnd(args: string[], opts: CliOptions & { timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runCli(args, opts);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const { code } = await run.exited;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/**
 * Start the server (`args` choose the config and the port, e.g. `--port 0`) and resolve once
 * it printed its listening line; reject if it exits first or prints nothing within
 * `timeoutMs` (default 60 s: tsx compiles the sources first, and the machine is shared).
 */
export async function startCli(args: string[], opts: CliOptions & { timeoutMs?: number } = {}): Promise<CliServer> {
  const run = runCli(args, opts);
  const output = () => `stdout: ${run.stdout()}\nstderr: ${run.stderr()}`;
  const httpUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`tabchat-server ${args.join(' ')} did not start within ${opts.timeoutMs ?? 60_000} ms:\n${output()}`));
    }, opts.timeoutMs ?? 60_000);
    const check = () => {
      const match = LISTENING.exec(run.stdout());
      if (!match?.[1]) return;
      clearTimeout(timer);
      run.child.stdout!.off('data', check);
      resolve(match[1].replace(/\/$/, ''));
    };
    run.child.stdout!.on('data', check);
    void run.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`tabchat-server ${args.join(' ')} exited (${signal ?? code}) before listening:\n${output()}`));
    });
  });
  return {
    ...run,
    httpUrl,
    wsUrl: `${httpUrl.replace(/^http/, 'ws')}/ws`,
    port: Number(new URL(httpUrl).port),
    stop: (signal, killAfterMs) => stopCli(run.child, signal, killAfterMs),
  };
}

/** Send `signal` to the process (SIGKILL after `killAfterMs`) and wait for it to exit. */
export async function stopCli(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', killAfterMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(killTimer);
}
