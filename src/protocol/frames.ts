/**
 * The wire protocol between a tabchat client (Node client, SharedWorker, leader tab) and the
 * chat server. This file is the ONLY place frames are defined; server and clients import it.
 *
 * Transport: one WebSocket, UTF-8 JSON text frames, one frame per WebSocket message.
 * The first client frame must be `hello` with {@link PROTOCOL_VERSION}. Requests carry a
 * positive integer `id`; the server answers each with exactly one `result` frame.
 * See docs/protocol.md.
 */
import { CODE } from './codes.js';

/** Bumped on any incompatible change of a frame. */
export const PROTOCOL_VERSION = 1;

/** Platforms of the reference login policy (REF §5.4). */
export const PLATFORMS = ['Web', 'Android', 'iPhone', 'iPad', 'Windows', 'Mac', 'Linux'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Kick reasons; the strings are the reference `TYPES.KICKED_OUT_*` values. */
export const KICK_TYPES = ['multipleAccount', 'multipleDevice', 'userSigExpired', 'REST_API_Kick'] as const;
export type KickType = (typeof KICK_TYPES)[number];

/** Not-ready reason code of each kick type (REF §1.7); also the code of a resume refused by a kick. */
export const KICK_REASON_CODE: Readonly<Record<KickType, number>> = Object.freeze({
  multipleAccount: CODE.KICKED_OUT_MULT_ACCOUNT,
  multipleDevice: CODE.KICKED_OUT_MULT_DEVICE,
  userSigExpired: CODE.KICKED_OUT_USERSIG_EXPIRED,
  REST_API_Kick: CODE.KICKED_OUT_REST_API,
});

/** Input limits enforced by {@link parseClientFrame}. */
export const LIMITS = {
  maxUserIdLength: 128,
  maxUserSigLength: 4096,
  maxTokenLength: 128,
  maxClientNameLength: 64,
  maxRequestId: Number.MAX_SAFE_INTEGER,
} as const;

// ---------------------------------------------------------------- client → server

export interface HelloFrame {
  type: 'hello';
  v: number;
  /** Free-form client name and version, for logs (e.g. "tabchat-worker/0.1.0"). */
  client?: string;
}
export interface LoginFrame {
  type: 'login';
  id: number;
  sdkAppId: number;
  userID: string;
  userSig: string;
  platform: Platform;
}
export interface ResumeFrame {
  type: 'resume';
  id: number;
  instId: number;
  token: string;
}
export interface LogoutFrame {
  type: 'logout';
  id: number;
  instId: number;
}
export interface TimeFrame {
  type: 'time';
  id: number;
}
export interface PingFrame {
  type: 'ping';
}
export type ClientFrame = HelloFrame | LoginFrame | ResumeFrame | LogoutFrame | TimeFrame | PingFrame;
export type RequestFrame = LoginFrame | ResumeFrame | LogoutFrame | TimeFrame;

// ---------------------------------------------------------------- server → client

export interface WelcomeFrame {
  type: 'welcome';
  v: number;
  /** Server clock, ms since epoch. */
  serverTime: number;
  /** The server pings (WebSocket ping) at this interval; clients should send `ping` as often. */
  heartbeatMs: number;
  /** How long instances of a dropped connection stay resumable. */
  resumeWindowMs: number;
  /** Id of the server node (useful in logs when several nodes run). */
  node: string;
}
export interface LoginResultData {
  instId: number;
  /** Secret that lets this instance be resumed on a new connection. */
  token: string;
  userID: string;
  serverTime: number;
  /** When the UserSig expires (ms since epoch); the server kicks with userSigExpired then. */
  expireAt: number;
}
export interface ResumeResultData {
  instId: number;
  serverTime: number;
  /** UserSig expiry of the resumed instance (ms since epoch). */
  expireAt: number;
}
export interface TimeResultData {
  serverTime: number;
}
export interface OkResultFrame<D = unknown> {
  type: 'result';
  id: number;
  ok: true;
  data: D;
}
export interface ErrorResultFrame {
  type: 'result';
  id: number;
  ok: false;
  code: number;
  message: string;
  /** e.g. `{kickType}` when a resume finds its instance was kicked meanwhile. */
  data?: { kickType?: KickType };
}
export type ResultFrame = OkResultFrame | ErrorResultFrame;
export interface KickFrame {
  type: 'kick';
  instId: number;
  reason: KickType;
}
export interface PongFrame {
  type: 'pong';
  serverTime: number;
}
/** A connection-level problem not tied to a request id (e.g. malformed JSON). */
export interface ErrorFrame {
  type: 'error';
  code: number;
  message: string;
}
export type ServerFrame = WelcomeFrame | ResultFrame | KickFrame | PongFrame | ErrorFrame;

// ---------------------------------------------------------------- parse guards

export type ParseResult<F> =
  | { ok: true; frame: F }
  | { ok: false; code: number; message: string; id?: number };

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= LIMITS.maxRequestId;
}
function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= Number.MAX_SAFE_INTEGER;
}
function isBoundedString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}
export function isPlatform(value: unknown): value is Platform {
  return typeof value === 'string' && (PLATFORMS as readonly string[]).includes(value);
}
export function isKickType(value: unknown): value is KickType {
  return typeof value === 'string' && (KICK_TYPES as readonly string[]).includes(value);
}

function bad(message: string, id?: number, code: number = CODE.BAD_FRAME): ParseResult<never> {
  return id === undefined ? { ok: false, code, message } : { ok: false, code, message, id };
}

/**
 * Validate a client frame. Never throws: anything a hostile client may send yields a
 * coded refusal. `id` is returned with the refusal when the frame had a usable one, so
 * the server can answer the request instead of the connection.
 */
export function parseClientFrame(raw: string): ParseResult<ClientFrame> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return bad('frame is not valid JSON');
  }
  if (!isObject(value)) return bad('frame must be a JSON object');
  const type = value.type;
  const id = isRequestId(value.id) ? value.id : undefined;
  switch (type) {
    case 'hello': {
      if (typeof value.v !== 'number' || !Number.isInteger(value.v)) return bad('hello.v must be an integer');
      if (value.client !== undefined && !isBoundedString(value.client, LIMITS.maxClientNameLength)) {
        return bad(`hello.client must be a string of 1..${LIMITS.maxClientNameLength} characters`);
      }
      const frame: HelloFrame = { type, v: value.v };
      if (typeof value.client === 'string') frame.client = value.client;
      return { ok: true, frame };
    }
    case 'ping':
      return { ok: true, frame: { type } };
    case 'login': {
      if (id === undefined) return bad('login.id must be a positive integer');
      if (!isPositiveInt(value.sdkAppId) || value.sdkAppId > 0xffffffff) {
        return bad('login.sdkAppId must be a positive integer', id, CODE.INVALID_PARAMETER);
      }
      if (!isBoundedString(value.userID, LIMITS.maxUserIdLength)) {
        return bad(`userID must be a string of 1..${LIMITS.maxUserIdLength} characters`, id, CODE.INVALID_PARAMETER);
      }
      if (typeof value.userSig !== 'string' || value.userSig.length === 0) {
        return bad('userSig is empty', id, CODE.USERSIG_EMPTY);
      }
      if (value.userSig.length > LIMITS.maxUserSigLength) {
        return bad(`userSig longer than ${LIMITS.maxUserSigLength} characters`, id, CODE.USERSIG_UNPARSABLE);
      }
      if (!isPlatform(value.platform)) {
        return bad(`platform must be one of ${PLATFORMS.join(', ')}`, id, CODE.INVALID_PARAMETER);
      }
      return {
        ok: true,
        frame: { type, id, sdkAppId: value.sdkAppId, userID: value.userID, userSig: value.userSig, platform: value.platform },
      };
    }
    case 'resume': {
      if (id === undefined) return bad('resume.id must be a positive integer');
      if (!isPositiveInt(value.instId)) return bad('resume.instId must be a positive integer', id);
      if (!isBoundedString(value.token, LIMITS.maxTokenLength)) return bad('resume.token must be a short string', id);
      return { ok: true, frame: { type, id, instId: value.instId, token: value.token } };
    }
    case 'logout': {
      if (id === undefined) return bad('logout.id must be a positive integer');
      if (!isPositiveInt(value.instId)) return bad('logout.instId must be a positive integer', id);
      return { ok: true, frame: { type, id, instId: value.instId } };
    }
    case 'time': {
      if (id === undefined) return bad('time.id must be a positive integer');
      return { ok: true, frame: { type, id } };
    }
    default:
      return bad(`unknown frame type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 32) : type)}`, id);
  }
}

/**
 * Validate a server frame (client side). A server is trusted more than a client, but a
 * proxy or a version skew can still deliver garbage; the client drops it with a log
 * instead of throwing inside a socket callback.
 */
export function parseServerFrame(raw: string): ParseResult<ServerFrame> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return bad('frame is not valid JSON');
  }
  if (!isObject(value)) return bad('frame must be a JSON object');
  switch (value.type) {
    case 'welcome':
      if (typeof value.v !== 'number' || typeof value.serverTime !== 'number') return bad('bad welcome');
      if (typeof value.heartbeatMs !== 'number' || typeof value.resumeWindowMs !== 'number') return bad('bad welcome');
      return { ok: true, frame: value as unknown as WelcomeFrame };
    case 'result':
      if (!isRequestId(value.id) || typeof value.ok !== 'boolean') return bad('bad result');
      if (value.ok === false && (typeof value.code !== 'number' || typeof value.message !== 'string')) return bad('bad error result');
      return { ok: true, frame: value as unknown as ResultFrame };
    case 'kick':
      if (!isPositiveInt(value.instId) || !isKickType(value.reason)) return bad('bad kick');
      return { ok: true, frame: value as unknown as KickFrame };
    case 'pong':
      if (typeof value.serverTime !== 'number') return bad('bad pong');
      return { ok: true, frame: value as unknown as PongFrame };
    case 'error':
      if (typeof value.code !== 'number' || typeof value.message !== 'string') return bad('bad error');
      return { ok: true, frame: value as unknown as ErrorFrame };
    default:
      return bad('unknown server frame type');
  }
}

/** Serialize a frame. The one place frames become text. */
export function encodeFrame(frame: ClientFrame | ServerFrame): string {
  return JSON.stringify(frame);
}
