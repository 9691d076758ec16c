/**
 * `tabchat-server`: run the chat server, or print a UserSig.
 *
 *   tabchat-server --config FILE [--port N] [--host H] [--node ID]
 *   tabchat-server --demo [--port N] [--host H]
 *   tabchat-server usersig --config FILE --user ID [--app SDKAPPID] [--expire SECONDS]
 */
import { parseArgs } from 'node:util';
import { ASSETS, serverVersion } from './assets.js';
import { ConfigError, loadConfigFile, type ServerConfig } from './config.js';
import { createChatServer } from './index.js';
import { DEFAULT_EXPIRE_SECONDS, generateUserSig } from './usersig.js';

const USAGE = `Usage:
  tabchat-server --config FILE [--port N] [--host H] [--node ID]   run the chat server
  tabchat-server --demo [--port N] [--host H]          run with the built-in demo config (insecure dev UserSigs)
  tabchat-server usersig --config FILE --user ID [--app SDKAPPID] [--expire SECONDS]
                                                       print a UserSig (use --user <adminIdentifier> for REST)
Options:
  --port N     listen port (default 8080; 0 picks a free port and prints it)
  --host H     listen address (default 127.0.0.1)
  --node ID    node id in logs, metrics and cluster stats (default: config "node", else random)
  --help       this text
  --version    print the version`;

function fail(message: string): never {
  process.stderr.write(`tabchat-server: ${message}\n`);
  process.exit(2);
}

function load(path: string): ServerConfig {
  try {
    return loadConfigFile(path);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

function intArg(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) fail(`--${name} must be an integer between ${min} and ${max}`);
  return n;
}

function usersig(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, user: { type: 'string' }, app: { type: 'string' }, expire: { type: 'string' }, demo: { type: 'boolean' } },
    strict: true,
  });
  const config = load(values.demo ? ASSETS.demoConfig : (values.config ?? fail('usersig needs --config FILE (or --demo)')));
  const user = values.user ?? fail('usersig needs --user ID');
  const appId = intArg(values.app, 'app', 1, 0xffffffff);
  const app = appId === undefined ? config.apps[0]! : config.apps.find((a) => a.sdkAppId === appId);
  if (!app) fail(`SDKAppID ${appId} is not in the config`);
  const expire = intArg(values.expire, 'expire', 1, 50 * 365 * 86_400) ?? DEFAULT_EXPIRE_SECONDS;
  process.stdout.write(generateUserSig({ sdkAppId: app.sdkAppId, key: app.secretKey, identifier: user, expire }) + '\n');
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      demo: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      node: { type: 'string' },
    },
    strict: true,
  });
  if (!values.config && !values.demo) fail('give --config FILE (or --demo)\n' + USAGE);
  if (values.node !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(values.node)) fail('--node must be 1..64 characters of A-Z a-z 0-9 . _ : -');
  const config = load(values.config ?? ASSETS.demoConfig);
  const port = intArg(values.port, 'port', 0, 65535);
  if (port !== undefined) config.port = port;
  if (values.host !== undefined) config.host = values.host;
  if (values.node !== undefined) config.node = values.node;
  const server = await createChatServer(config);
  process.stdout.write(`tabchat-server listening on ${server.httpUrl} (WebSocket ${server.wsUrl})\n`);
  if (config.devUserSig) process.stdout.write(`demo: open ${server.httpUrl}/ in two tabs\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.context.log.info({ signal }, 'signal received');
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => {
    server.context.log.fatal({ err: err.stack }, 'uncaught exception');
    process.exit(1);
  });
}

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void process.stdout.write(USAGE + '\n');
  if (argv.includes('--version')) return void process.stdout.write(serverVersion() + '\n');
  try {
    if (argv[0] === 'usersig') return usersig(argv.slice(1));
    await serve(argv);
  } catch (err) {
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) fail(`${err.message}\n${USAGE}`);
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') fail(`port already in use: ${(err as Error).message}`);
    fail((err as Error).message);
  }
}

// Run when executed directly (`node --import tsx server/cli.ts …`, `node dist/server/cli.js …`);
// bin/tabchat-server.js calls main() itself.
if (process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
