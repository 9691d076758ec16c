/**
 * The REST API of the reference service (docs/reference-behaviour.md):
 * `POST /v4/<service>/<command>?sdkappid=&identifier=&usersig=&random=&contenttype=json`,
 * authenticated with the App admin's UserSig. Always HTTP 200 with `ActionStatus`,
 * `ErrorCode`, `ErrorInfo` in the body. See docs/rest.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CODE } from '../src/protocol/codes.js';
import { USERID_RULE, isPlatform, isUserID } from '../src/protocol/frames.js';
import { AuthError } from './auth.js';
import { LOGIN_POLICIES, type AppConfig, type LoginPolicy } from './config.js';
import type { ServerContext } from './context.js';
import { EngineUnavailableError, type LoginSettings } from './engine.js';

type Body = Record<string, unknown>;
type Reply = Record<string, unknown>;

class RestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Most accounts one query_online_status call may name (as the reference). */
const MAX_QUERY_ACCOUNTS = 500;

type Handler = (ctx: ServerContext, app: AppConfig, body: Body) => Reply | Promise<Reply>;

const COMMANDS: Record<string, Handler> = {
  'im_open_login_svc/kick': async (ctx, app, body) => {
    const userID = body.UserID;
    if (!isUserID(userID)) {
      throw new RestError(CODE.REST_INVALID_PARAMS, `UserID must be ${USERID_RULE}`);
    }
    const kicked = await ctx.engine.kickUser(app.sdkAppId, userID, 'REST_API_Kick');
    ctx.log.info({ sdkAppId: app.sdkAppId, userID, kicked: kicked.length }, 'REST kick');
    return {};
  },

  'openim/query_online_status': async (ctx, app, body) => {
    const accounts = body.To_Account;
    if (!Array.isArray(accounts) || accounts.length === 0 || accounts.length > MAX_QUERY_ACCOUNTS) {
      throw new RestError(CODE.REST_INVALID_PARAMS, `To_Account must be an array of 1..${MAX_QUERY_ACCOUNTS} userIDs`);
    }
    const needDetail = body.IsNeedDetail === 1 || body.IsNeedDetail === true;
    const QueryResult: Reply[] = [];
    const ErrorList: Reply[] = [];
    const valid = accounts.filter(isUserID);
    const online = await ctx.engine.online(app.sdkAppId, valid);
    let next = 0;
    for (const account of accounts) {
      if (!isUserID(account)) {
        ErrorList.push({ To_Account: account, ErrorCode: CODE.REST_ACCOUNT_NOT_STRING });
        continue;
      }
      const instances = online[next++] ?? [];
      const entry: Reply = { To_Account: account, Status: instances.length > 0 ? 'Online' : 'Offline' };
      if (needDetail) {
        entry.Detail = instances.map((i) => ({
          Platform: i.platform,
          Status: 'Online',
          InstId: i.instId,
          LoginOrder: i.loginOrder,
          LoginTime: Math.floor(i.loginAt / 1000),
          Connected: i.connected,
        }));
      }
      QueryResult.push(entry);
    }
    return { QueryResult, ErrorList };
  },

  'tabchat_admin/get_login_settings': async (ctx, app) => loginSettings(await ctx.engine.loginSettings(app)),

  'tabchat_admin/set_login_settings': async (ctx, app, body) => {
    const max = body.MaxInstancesPerPlatform;
    const policy = body.LoginPolicy;
    if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 1000)) {
      throw new RestError(CODE.REST_INVALID_PARAMS, 'MaxInstancesPerPlatform must be an integer between 1 and 1000');
    }
    if (policy !== undefined && !(LOGIN_POLICIES as readonly unknown[]).includes(policy)) {
      throw new RestError(CODE.REST_INVALID_PARAMS, `LoginPolicy must be one of ${LOGIN_POLICIES.join(', ')}`);
    }
    const change: Partial<LoginSettings> = {};
    if (max !== undefined) change.maxInstancesPerPlatform = max as number;
    if (policy !== undefined) change.loginPolicy = policy as LoginPolicy;
    const settings = await ctx.engine.setLoginSettings(app, change);
    ctx.log.info({ sdkAppId: app.sdkAppId, ...settings }, 'login settings changed');
    return loginSettings(settings);
  },

  'tabchat_admin/get_stats': async (ctx, app) => {
    const [stats, settings] = await Promise.all([ctx.engine.stats(), ctx.engine.loginSettings(app)]);
    const reply: Reply = { Node: ctx.node, Connections: stats.connections, ...instanceCounts(stats.instances), ...loginSettings(settings) };
    if (stats.nodes) {
      reply.Nodes = stats.nodes.map((n) => ({ Node: n.node, Connections: n.connections, ...instanceCounts(n.instances) }));
    }
    return reply;
  },
};

function instanceCounts(counts: Map<string, number>): Reply {
  const Instances: Record<string, number> = {};
  let total = 0;
  for (const [platform, n] of counts) {
    if (isPlatform(platform)) Instances[platform] = n;
    total += n;
  }
  return { InstancesTotal: total, Instances };
}

function loginSettings(settings: LoginSettings): Reply {
  return { MaxInstancesPerPlatform: settings.maxInstancesPerPlatform, LoginPolicy: settings.loginPolicy };
}

function send(res: ServerResponse, code: number, info: string, extra: Reply = {}): void {
  const body = JSON.stringify({ ActionStatus: code === 0 ? 'OK' : 'FAIL', ErrorCode: code, ErrorInfo: info, ...extra });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

/** A body over the limit is drained (discarded) up to this multiple of the limit, then the socket is cut. */
const DRAIN_FACTOR = 16;

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    const tooBig = () => new RestError(CODE.REST_HTTP_PARSE, `body larger than ${limit} bytes`);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      // Keep reading (and discarding) so the client gets its 60002 answer: destroying the
      // socket with unread bytes makes the kernel reset the connection, losing the reply.
      // Past a hard cap the sender is abusive and the socket is cut.
      if (size > limit * DRAIN_FACTOR) {
        reject(tooBig());
        req.destroy();
      }
    });
    req.on('end', () => (size > limit ? reject(tooBig()) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', () => reject(new RestError(CODE.REST_HTTP_PARSE, 'request body could not be read')));
  });
}

/** Whether `pathname` is a REST path this module answers. */
export function isRestPath(pathname: string): boolean {
  return pathname.startsWith('/v4/');
}

export async function handleRest(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, url: URL, ip: string): Promise<void> {
  const command = url.pathname.slice('/v4/'.length);
  const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  const label = handler ? command : 'unknown';
  const started = performance.now();
  let code = 0;
  try {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new RestError(CODE.REST_HTTP_PARSE, `use POST (got ${req.method})`);
    }
    if (!handler) throw new RestError(CODE.REST_BAD_URL, `unknown REST command ${command.slice(0, 64)}`);
    const q = url.searchParams;
    const appParam = q.get('sdkappid');
    if (!appParam) throw new RestError(CODE.REST_SDKAPPID_MISSING, 'sdkappid is missing from the query');
    if (!/^\d{1,10}$/.test(appParam)) throw new RestError(CODE.REST_SDKAPPID_INVALID, 'sdkappid must be a number');
    const identifier = q.get('identifier');
    if (!identifier) throw new RestError(CODE.REST_BAD_IDENTIFIER, 'identifier is missing from the query');
    const usersig = q.get('usersig');
    if (!usersig) throw new RestError(CODE.REST_BAD_USERSIG, 'usersig is missing from the query');
    const app = ctx.auth.app(Number(appParam));
    // The UserSig is checked first: failures (anyone's) never refuse a correct admin UserSig.
    if (identifier !== app.adminIdentifier) {
      throw await ctx.auth.failure(ip, app.sdkAppId, identifier, new AuthError(CODE.REST_NEEDS_ADMIN, 'identifier must be the App admin account'));
    }
    await ctx.auth.verify({ sdkAppId: app.sdkAppId, userID: identifier, userSig: usersig, ip }, 'rest');
    const text = await readBody(req, ctx.config.maxBodyBytes);
    let body: unknown;
    try {
      body = JSON.parse(text.length === 0 ? '{}' : text);
    } catch {
      throw new RestError(CODE.REST_JSON_PARSE, 'body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RestError(CODE.REST_JSON_PARSE, 'body must be a JSON object');
    const reply = await handler(ctx, app, body as Body);
    send(res, 0, '', reply);
  } catch (err) {
    if (err instanceof RestError || err instanceof AuthError) {
      code = err.code;
      if (err instanceof AuthError) {
        ctx.sampler.info(`rest refused ${ip} ${err.code}`, { command: label, ip, identifier: url.searchParams.get('identifier')?.slice(0, 128), code: err.code }, 'REST call refused');
      }
      send(res, err.code, err.message);
    } else if (err instanceof EngineUnavailableError) {
      code = CODE.ENGINE_UNAVAILABLE;
      send(res, code, err.message);
    } else {
      code = CODE.SERVER_INTERNAL;
      ctx.log.error({ command: label, err: err instanceof Error ? err.stack : String(err) }, 'REST internal error');
      send(res, CODE.SERVER_INTERNAL, 'internal server error');
    }
  } finally {
    ctx.metrics.restRequests.inc({ command: label, code: String(code) });
    ctx.metrics.restDuration.observe({ command: label }, (performance.now() - started) / 1000);
  }
}
