/**
 * Plain HTTP routes on the server's port: health, metrics, dev UserSigs, REST (rest.ts),
 * the drop-in builds and the demo page (static files).
 */
import { timingSafeEqual } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { CODE } from '../src/protocol/codes.js';
import { USERID_RULE, isUserID } from '../src/protocol/frames.js';
import { ASSETS } from './assets.js';
import type { ServerContext } from './context.js';
import { handleRest, isRestPath } from './rest.js';
import { generateUserSig } from './usersig.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** URL prefix → directory, longest prefix first. Config `static` routes come first. */
function staticRoutes(ctx: ServerContext): Array<[string, string]> {
  const routes: Array<[string, string]> = [
    ...Object.entries(ctx.config.static),
    ['/esm/', join(ASSETS.clientBuilds, 'esm')],
    ['/', ASSETS.demo],
  ];
  return routes.sort((a, b) => b[0].length - a[0].length);
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  text(res, status, JSON.stringify(body), 'application/json; charset=utf-8');
}

function serveFile(req: IncomingMessage, res: ServerResponse, file: string): boolean {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return false;
  }
  if (stat.isDirectory()) return serveFile(req, res, join(file, 'index.html'));
  if (!stat.isFile()) return false;
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers: Record<string, string> = {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': 'no-cache',
    etag,
    'x-content-type-options': 'nosniff',
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return true;
  }
  headers['content-length'] = String(stat.size);
  res.writeHead(200, headers);
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
  return true;
}

function serveStatic(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
  if (pathname === '/tabchat.js' || pathname === '/tabchat-worker.js' || pathname === '/tabchat.js.map' || pathname === '/tabchat-worker.js.map') {
    if (serveFile(req, res, join(ASSETS.clientBuilds, pathname.slice(1)))) return true;
    text(res, 404, `${pathname} is not built: run "npm run build"\n`);
    return true;
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  if (decoded.includes('\0')) return false;
  for (const [prefix, dir] of staticRoutes(ctx)) {
    if (!decoded.startsWith(prefix)) continue;
    const root = resolve(dir);
    const file = normalize(join(root, decoded.slice(prefix.length)));
    if (file !== root && !file.startsWith(root + sep)) return false;
    return serveFile(req, res, file);
  }
  return false;
}

function devUserSig(ctx: ServerContext, res: ServerResponse, url: URL): void {
  const appId = Number(url.searchParams.get('sdkappid'));
  const userID = url.searchParams.get('userID') ?? '';
  const expireParam = url.searchParams.get('expire');
  const expire = expireParam === null ? 86_400 : Number(expireParam);
  const app = ctx.apps.get(appId);
  if (!app) return json(res, 404, { code: CODE.SDKAPPID_NOT_FOUND, message: `SDKAppID ${url.searchParams.get('sdkappid')} is not configured` });
  if (!isUserID(userID)) return json(res, 400, { code: CODE.INVALID_PARAMETER, message: `userID must be ${USERID_RULE}` });
  if (!Number.isInteger(expire) || expire < 1 || expire > 365 * 86_400) {
    return json(res, 400, { code: CODE.INVALID_PARAMETER, message: 'expire must be 1..31536000 seconds' });
  }
  const userSig = generateUserSig({ sdkAppId: app.sdkAppId, key: app.secretKey, identifier: userID, expire });
  json(res, 200, { sdkAppId: app.sdkAppId, userID, expire, userSig, warning: 'demo only: devUserSig issues UserSigs to anyone' });
}

/** Whether the request carries `Authorization: Bearer <token>` (compared in constant time). */
function hasBearer(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length).trim());
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** `GET /metrics` (main port, or the metrics port of config `metrics`): 401 without the configured bearer token. */
export async function serveMetrics(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return text(res, 405, 'method not allowed\n');
  }
  const token = ctx.config.metrics.token;
  if (token !== undefined && !hasBearer(req, token)) {
    res.setHeader('www-authenticate', 'Bearer realm="tabchat metrics"');
    return text(res, 401, 'metrics need Authorization: Bearer <metrics.token>\n');
  }
  const body = await ctx.metrics.registry.metrics();
  text(res, 200, body, ctx.metrics.registry.contentType);
}

export async function handleHttp(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, ip: string): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return text(res, 400, 'bad request URL\n');
  }
  const { pathname } = url;
  if (isRestPath(pathname)) return handleRest(ctx, req, res, url, ip);
  if (pathname === '/healthz') {
    return ctx.shuttingDown ? json(res, 503, { status: 'shutting-down', node: ctx.node }) : json(res, 200, { status: 'ok', node: ctx.node });
  }
  if (pathname === '/readyz') {
    // Readiness (route new clients here?), unlike /healthz (liveness: restart the process?).
    const engine = ctx.engine.available;
    const store = ctx.messages.storeAvailable;
    const ready = !ctx.shuttingDown && engine && store;
    const status = ctx.shuttingDown ? 'shutting-down' : ready ? 'ok' : 'degraded';
    return json(res, ready ? 200 : 503, { status, node: ctx.node, engine: engine ? 'ok' : 'unavailable', store: store ? 'ok' : 'unavailable' });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return text(res, 405, 'method not allowed\n');
  }
  // With a metrics port of its own, the main port does not serve them.
  if (pathname === '/metrics' && ctx.config.metrics.port === undefined) return serveMetrics(ctx, req, res);
  if (pathname === '/dev/usersig') {
    if (!ctx.config.devUserSig) return text(res, 404, 'not found\n');
    return devUserSig(ctx, res, url);
  }
  if (pathname === '/ws') return text(res, 426, 'this endpoint speaks WebSocket only\n');
  if (serveStatic(ctx, req, res, pathname)) return;
  text(res, 404, 'not found\n');
}
