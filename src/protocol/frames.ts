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
import { isConvFrame, parseConversationFrame, type ConvFrame, type ConversationRequestFrame } from './conversation-frames.js';

/** Bumped on any incompatible change of a frame. */
export const PROTOCOL_VERSION = 1;

/** Platforms of the reference SDK's login policy (docs/reference-behaviour.md). */
export const PLATFORMS = ['Web', 'Android', 'iPhone', 'iPad', 'Windows', 'Mac', 'Linux'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Kick reasons; the strings are the reference `TYPES.KICKED_OUT_*` values. */
export const KICK_TYPES = ['multipleAccount', 'multipleDevice', 'userSigExpired', 'REST_API_Kick'] as const;
export type KickType = (typeof KICK_TYPES)[number];

/** Not-ready reason code of each kick type (3003, 3002, 3004, 3006, as the reference SDK's gate reports them); also the code of a resume refused by a kick. */
export const KICK_REASON_CODE: Readonly<Record<KickType, number>> = Object.freeze({
  multipleAccount: CODE.KICKED_OUT_MULT_ACCOUNT,
  multipleDevice: CODE.KICKED_OUT_MULT_DEVICE,
  userSigExpired: CODE.KICKED_OUT_USERSIG_EXPIRED,
  REST_API_Kick: CODE.KICKED_OUT_REST_API,
});

/** Input limits enforced by {@link parseClientFrame} and {@link textMessageError}. */
export const LIMITS = {
  maxUserIdLength: 128,
  maxUserSigLength: 4096,
  maxTokenLength: 128,
  maxClientNameLength: 64,
  maxRequestId: Number.MAX_SAFE_INTEGER,
  /** `clientMsgId`: 1..64 characters chosen by the client (a random id). */
  maxClientMsgIdLength: 64,
  /** Largest message text, in UTF-8 bytes (12 KB, as the reference). */
  maxTextBytes: 12 * 1024,
  /** Largest `sync.limit`. */
  maxSyncLimit: 500,
  /** Page size of a `sync` without `limit`. */
  defaultSyncLimit: 100,
} as const;

/** Direction of a message as seen by the mailbox owner: `in` = received, `out` = sent by this user. */
export type MessageFlow = 'in' | 'out';

/**
 * A stored C2C text message as the server delivers it to one instance. `seq` is the
 * message's position in THIS user's mailbox (every message has one seq in the recipient's
 * mailbox, flow `in`, and one in the sender's, flow `out`).
 */
export interface WireMessage {
  /** Server-assigned message id, unique on the server. */
  id: string;
  /** Sequence number in the receiving user's mailbox: 1, 2, 3 … without gaps. */
  seq: number;
  flow: MessageFlow;
  from: string;
  to: string;
  text: string;
  /** Server time at which the message was stored, ms since epoch. */
  time: number;
  /** The sender's idempotency key; only on `out` messages (the sender's own mailbox). */
  clientMsgId?: string;
}

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
/**
 * Send a C2C text message as instance `instId`. Idempotent per (sender, `clientMsgId`): a
 * retry returns the message stored the first time and delivers nothing again.
 */
export interface SendFrame {
  type: 'send';
  id: number;
  instId: number;
  /** Client-generated id of this message (1..64 characters, random); the idempotency key. */
  clientMsgId: string;
  /** Recipient userID (1..128 characters; checked by the server with code 9021). */
  to: string;
  /** 1..12 KB of UTF-8 (codes 9020 / 80002). */
  text: string;
}
/** Read the instance's mailbox after `afterSeq` (absent: after the instance's position on the server). */
export interface SyncFrame {
  type: 'sync';
  id: number;
  instId: number;
  afterSeq?: number;
  /** Page size, 1..{@link LIMITS.maxSyncLimit}; default {@link LIMITS.defaultSyncLimit} (100). The server may return fewer (byte budget) and sets `more`. */
  limit?: number;
}
/** The instance has processed its mailbox up to `seq` (no reply). */
export interface AckFrame {
  type: 'ack';
  instId: number;
  seq: number;
}
export type ClientFrame = HelloFrame | LoginFrame | ResumeFrame | LogoutFrame | TimeFrame | PingFrame | SendFrame | SyncFrame | AckFrame | ConversationRequestFrame;
export type RequestFrame = LoginFrame | ResumeFrame | LogoutFrame | TimeFrame | SendFrame | SyncFrame | ConversationRequestFrame;

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
/** `data` of a successful `send`: the stored message as the sender's mailbox holds it (flow `out`). */
export interface SendResultData {
  message: WireMessage;
}
/** `data` of a successful `sync`. */
export interface SyncResultData {
  /** Where this page starts: the request's `afterSeq`, or the instance's server-side position when it was absent. */
  afterSeq: number;
  /** Messages with seq > afterSeq, ascending and consecutive. */
  messages: WireMessage[];
  /** True when more messages follow this page: sync again after the last one. */
  more: boolean;
  /** Highest seq in the user's mailbox. `afterSeq > head` means the mailbox was reset (memory store restarted). */
  head: number;
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
/** A message for instance `instId`: received (flow `in`) or sent by another instance of the same user (flow `out`). */
export interface MsgFrame {
  type: 'msg';
  instId: number;
  message: WireMessage;
}
/** A connection-level problem not tied to a request id (e.g. malformed JSON). */
export interface ErrorFrame {
  type: 'error';
  code: number;
  message: string;
}
export type ServerFrame = WelcomeFrame | ResultFrame | KickFrame | PongFrame | MsgFrame | ErrorFrame | ConvFrame;

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
/**
 * Characters no userID may hold: controls (C0, DEL, C1), the line and paragraph separators
 * U+2028/U+2029, and the bidirectional formatting characters (U+061C, U+200E, U+200F,
 * U+202A–U+202E, U+2066–U+2069), which change how the text around them is shown.
 */
const USERID_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

/** Whether `value` is well-formed UTF-16: every surrogate is half of a pair. */
function isWellFormedText(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit > 0xdbff) return false; // a low surrogate without its high one
    const next = value.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false; // a high surrogate without its low one
    i++;
  }
  return true;
}

/**
 * A userID as every part of tabchat accepts it: 1..{@link LIMITS.maxUserIdLength} UTF-16
 * code units of well-formed text (no lone surrogate) without the characters of
 * {@link USERID_FORBIDDEN}. Every other character is allowed (docs/protocol.md "userIDs").
 */
export function isUserID(value: unknown): value is string {
  return isBoundedString(value, LIMITS.maxUserIdLength) && !USERID_FORBIDDEN.test(value) && isWellFormedText(value);
}

/** Why `isUserID` refuses a value, for messages. */
export const USERID_RULE = `1..${LIMITS.maxUserIdLength} characters of well-formed text, without control, line-separator or bidirectional-formatting characters`;
function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER;
}

/**
 * Length of `text` in UTF-8 bytes, as it goes on the wire (a lone surrogate counts as the
 * 3-byte replacement character). Portable: no Buffer, no TextEncoder.
 */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * The one rule for a C2C text message, used by the server and (to fail early, with the
 * same codes) by clients. Returns null when valid, else the code and a message.
 */
export function textMessageError(to: unknown, text: unknown): { code: number; message: string } | null {
  // Only the length here (this check ships in the tab script, which must stay small); the
  // server applies the whole userID rule ({@link isUserID}) with the same code.
  if (!isBoundedString(to, LIMITS.maxUserIdLength)) {
    return { code: CODE.MSG_INVALID_RECIPIENT, message: `to must be a userID of 1..${LIMITS.maxUserIdLength} characters` };
  }
  if (typeof text !== 'string' || text.length === 0) return { code: CODE.MSG_TEXT_EMPTY, message: 'the message text is empty' };
  const bytes = utf8ByteLength(text);
  if (bytes > LIMITS.maxTextBytes) {
    return { code: CODE.MSG_TOO_LONG, message: `the message text is ${bytes} bytes of UTF-8; the limit is ${LIMITS.maxTextBytes}` };
  }
  return null;
}

/** Whether `value` is a well-formed {@link WireMessage}. */
export function isWireMessage(value: unknown): value is WireMessage {
  if (!isObject(value)) return false;
  return (
    typeof value.id === 'string' &&
    value.id.length > 0 &&
    isPositiveInt(value.seq) &&
    (value.flow === 'in' || value.flow === 'out') &&
    typeof value.from === 'string' &&
    typeof value.to === 'string' &&
    typeof value.text === 'string' &&
    typeof value.time === 'number' &&
    Number.isFinite(value.time) &&
    (value.clientMsgId === undefined || typeof value.clientMsgId === 'string')
  );
}

/** Whether `value` is a well-formed {@link SyncResultData}. */
export function isSyncResultData(value: unknown): value is SyncResultData {
  return (
    isObject(value) &&
    isSeq(value.afterSeq) &&
    isSeq(value.head) &&
    typeof value.more === 'boolean' &&
    Array.isArray(value.messages) &&
    value.messages.every(isWireMessage)
  );
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
      if (!isUserID(value.userID)) {
        return bad(`userID must be ${USERID_RULE}`, id, CODE.INVALID_PARAMETER);
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
    case 'send': {
      // Only the shape is checked here; the message rules (codes 9020, 9021, 80002) are the
      // server's, so a refused message is not counted as a malformed frame.
      if (id === undefined) return bad('send.id must be a positive integer');
      if (!isPositiveInt(value.instId)) return bad('send.instId must be a positive integer', id);
      if (!isBoundedString(value.clientMsgId, LIMITS.maxClientMsgIdLength)) {
        return bad(`send.clientMsgId must be a string of 1..${LIMITS.maxClientMsgIdLength} characters`, id, CODE.INVALID_PARAMETER);
      }
      if (typeof value.to !== 'string') return bad('send.to must be a string', id, CODE.MSG_INVALID_RECIPIENT);
      if (typeof value.text !== 'string') return bad('send.text must be a string', id);
      return { ok: true, frame: { type, id, instId: value.instId, clientMsgId: value.clientMsgId, to: value.to, text: value.text } };
    }
    case 'sync': {
      if (id === undefined) return bad('sync.id must be a positive integer');
      if (!isPositiveInt(value.instId)) return bad('sync.instId must be a positive integer', id);
      if (value.afterSeq !== undefined && !isSeq(value.afterSeq)) return bad('sync.afterSeq must be an integer >= 0', id);
      const limit = value.limit;
      if (limit !== undefined && !(isPositiveInt(limit) && limit <= LIMITS.maxSyncLimit)) {
        return bad(`sync.limit must be an integer of 1..${LIMITS.maxSyncLimit}`, id);
      }
      const frame: SyncFrame = { type, id, instId: value.instId };
      if (value.afterSeq !== undefined) frame.afterSeq = value.afterSeq;
      if (limit !== undefined) frame.limit = limit;
      return { ok: true, frame };
    }
    case 'ack': {
      if (!isPositiveInt(value.instId)) return bad('ack.instId must be a positive integer');
      if (!isSeq(value.seq)) return bad('ack.seq must be an integer >= 0');
      return { ok: true, frame: { type, instId: value.instId, seq: value.seq } };
    }
    case 'convList':
    case 'history':
    case 'read':
    case 'convDelete':
      return parseConversationFrame(value, id);
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
    case 'msg':
      if (!isPositiveInt(value.instId) || !isWireMessage(value.message)) return bad('bad msg');
      return { ok: true, frame: value as unknown as MsgFrame };
    case 'conv':
      if (!isConvFrame(value)) return bad('bad conv');
      return { ok: true, frame: value as unknown as ConvFrame };
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
