/**
 * Helpers of the adversarial suite: raw TCP sockets (as an attacker opens them), a server in
 * a child process under a low `ulimit -n`, and reading the server's own figures.
 */
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { ROOT, SOURCE_CLI, startCli, type CliServer } from '../helpers/cli.js';

export { metricValue, getMetrics } from '../server/util.js';

/** A raw TCP socket that never closes its own side (`allowHalfOpen`), with its fate recorded. */
export interface RawSocket {
  socket: Socket;
  /** Everything the server sent. */
  received(): string;
  /** True once the server ended its side (FIN or reset). */
  ended(): boolean;
}

export function rawSocket(port: number, localAddress = '127.0.0.1'): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    let data = '';
    let ended = false;
    const socket = connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => (ended = true));
    socket.on('end', () => (ended = true));
    socket.on('close', () => (ended = true));
    socket.once('connect', () => resolve({ socket, received: () => data, ended: () => ended }));
    socket.once('error', reject);
  });
}

/** GET `path` from `localAddress` (another address on loopback); resolves status and body. */
export function httpGet(url: string, localAddress = '127.0.0.1', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface ChildServer extends CliServer {
  sdkAppId: number;
  secretKey: string;
  close(): Promise<void>;
}

/** `tabchat-server` from the sources in a child process, under `ulimit -n <fileLimit>` when given. */
export async function startChildServer(config: Record<string, unknown>, fileLimit?: number): Promise<ChildServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-adv-'));
  const sdkAppId = 1400000001;
  const secretKey = randomBytes(32).toString('hex');
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ apps: [{ sdkAppId, secretKey }], store: `sqlite:${join(dir, 'chat.db')}`, logLevel: 'warn', ...config }));
  const node = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(SOURCE_CLI)} --config ${JSON.stringify(file)} --port 0`;
  const command = fileLimit === undefined ? `exec ${node}` : `ulimit -n ${fileLimit} && exec ${node}`;
  const script = join(dir, 'run.sh');
  writeFileSync(script, `#!/bin/bash\ncd ${JSON.stringify(ROOT)}\n${command}\n`, { mode: 0o755 });
  const server = await startCli([], { entry: { command: script } });
  return {
    ...server,
    sdkAppId,
    secretKey,
    close: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
