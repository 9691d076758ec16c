/**
 * Every numeric code tabchat produces, in one table.
 *
 * Codes that exist in the reference SDK keep their number and meaning (see
 * docs/errors.md, which has one heading per code). Codes that only tabchat needs live in
 * the 9000–9099 block so they can never collide with a reference code.
 */
export const CODE = {
  OK: 0,

  // ---- client-side (reference Web SDK numbers) ----
  /** No SDKAppID given to create()/login. */
  NO_SDKAPPID: 2000,
  /** Not logged in: logout()/destroy() while logged out; the initial not-ready reason. */
  USER_NOT_LOGGED_IN: 2024,
  /** Another login of this instance is still in flight. */
  REPEAT_LOGIN: 2025,
  /** Default failure of sendMessage. */
  MSG_SEND_FAIL: 2100,
  /** sendMessage() needs a message made by create*Message(). */
  MSG_INSTANCE_REQUIRED: 2105,
  /** conversationType must be 'C2C'. */
  MSG_INVALID_CONV_TYPE: 2106,
  /** The connection to the chat server failed or dropped while a request was pending. */
  NETWORK_ERROR: 2800,
  /** A request got no answer in time, or the page origin is not allowed by the app (trusted-domain rule). */
  NETWORK_TIMEOUT: 2801,
  /** An internal error that should not happen; please report it. */
  UNCAUGHT_ERROR: 2903,
  /** SDK not ready (text appended to gated-call messages; the code returned is the reason). */
  SDK_IS_NOT_READY: 2999,

  // ---- not-ready reasons (reference) ----
  LOGGING_IN: 3000,
  LOGIN_FAILED: 3001,
  KICKED_OUT_MULT_DEVICE: 3002,
  KICKED_OUT_MULT_ACCOUNT: 3003,
  KICKED_OUT_USERSIG_EXPIRED: 3004,
  LOGGED_OUT: 3005,
  KICKED_OUT_REST_API: 3006,

  // ---- REST / service (reference) ----
  REST_HTTP_PARSE: 60002,
  REST_JSON_PARSE: 60003,
  REST_BAD_IDENTIFIER: 60004,
  REST_BAD_USERSIG: 60005,
  REST_SDKAPPID_INVALID: 60006,
  REST_RATE_LIMITED: 60007,
  REST_BAD_URL: 60009,
  REST_NEEDS_ADMIN: 60010,
  REST_SDKAPPID_MISSING: 60012,
  REST_ACCOUNT_NOT_STRING: 60015,
  /** The app is disabled (`enabled: false`): expired or unpaid service. */
  SERVICE_DISABLED: 60020,

  // ---- UserSig / account (reference) ----
  USERSIG_EXPIRED: 70001,
  USERSIG_EMPTY: 70002,
  USERSIG_UNPARSABLE: 70003,
  USERSIG_BAD_SIGNATURE: 70009,
  USERSIG_USERID_MISMATCH: 70013,
  USERSIG_SDKAPPID_MISMATCH: 70014,
  SDKAPPID_NOT_FOUND: 70020,
  LOGIN_RATE_LIMITED: 70050,
  USERSIG_REVOKED: 70052,
  REST_INVALID_PARAMS: 70402,

  // ---- messages (reference server code) ----
  /** The message text is longer than 12 KB of UTF-8 (reference server code 80002). */
  MSG_TOO_LONG: 80002,

  // ---- tabchat-only (9000–9099) ----
  /** A frame was not valid JSON, had an unknown type or invalid fields. */
  BAD_FRAME: 9001,
  /** The peer speaks another protocol version. Terminal: reload the page / upgrade the client. */
  PROTOCOL_VERSION_MISMATCH: 9002,
  /** A frame other than `hello` arrived before `hello`. */
  HELLO_REQUIRED: 9003,
  /** The request names an instance this connection does not hold. */
  UNKNOWN_INSTANCE: 9004,
  /** Resume refused: the resume window passed, or the token is wrong. The client logs in again. */
  RESUME_FAILED: 9005,
  /** Too many frames on one connection in a short time. */
  FRAME_RATE_LIMITED: 9006,
  /** The server is shutting down; reconnect (to another node). */
  SERVER_SHUTTING_DOWN: 9007,
  /** The SharedWorker (or leader tab) hosting the session went away. */
  WORKER_GONE: 9008,
  /**
   * The leader tab's hub did not answer a follower in time (its tab frozen or stalled): the
   * chat shows `connecting` and recovers by itself when the hub answers or another tab leads.
   */
  HUB_UNRESPONSIVE: 9009,
  /** A parameter is out of range (userID too long, bad platform, …). */
  INVALID_PARAMETER: 9010,
  /** The SDK instance was destroyed. */
  DESTROYED: 9011,
  /** Tab and worker run different tabchat builds. */
  WORKER_VERSION_MISMATCH: 9012,
  /** The workerUrl option is not same-origin with the page. */
  WORKER_CROSS_ORIGIN: 9013,
  /** The requested transport cannot run here: no SharedWorker for 'shared-worker', no Web Locks for 'leader'. */
  TRANSPORT_UNAVAILABLE: 9014,
  /** A member of the reference SDK that tabchat does not implement was called (the message names it). */
  NOT_IMPLEMENTED: 9015,
  /** A text message with empty text. */
  MSG_TEXT_EMPTY: 9020,
  /** The message recipient `to` is not a userID of 1..128 characters. */
  MSG_INVALID_RECIPIENT: 9021,
  /** The server did not acknowledge the message in time. It stays queued and is sent when the connection allows. */
  MSG_SEND_TIMEOUT: 9022,
  /** The queued message was dropped before the server stored it (cancelled, logout, kick, destroy). */
  MSG_CANCELLED: 9023,
  /** The outbox could not record the message (e.g. browser storage full); nothing was sent. */
  OUTBOX_ERROR: 9024,
  /** A tab missed message envelopes of the worker that its buffer no longer held (browser; an ERROR event). */
  MESSAGES_MISSED: 9025,
  /** The cluster engine (Redis) cannot be reached: logins, resumes on another node and REST calls that need it fail fast; retry later. */
  ENGINE_UNAVAILABLE: 9030,
  /** The message store (Postgres) cannot be reached: nothing was stored; retry later (same clientMsgId). */
  STORE_UNAVAILABLE: 9031,
  /** The recipient's mailbox is full (count or bytes quota of unacknowledged messages): nothing was stored. */
  MAILBOX_FULL: 9040,
  /** Too many `sync` requests of one connection waiting at once: this one was not served. */
  SYNC_RATE_LIMITED: 9041,
  /** The user is already on `rateLimits.connectionsPerUser` connections of this server: log in on one of them. */
  USER_CONNECTION_LIMIT: 9042,
  /** A conversationID that is not `'C2C' + userID` (tabchat has C2C conversations only). */
  INVALID_CONVERSATION_ID: 9043,
  /** The user has no conversation with this ID (never had one, or deleted it and nothing arrived since). */
  CONVERSATION_NOT_FOUND: 9044,
  /** `nextReqMessageID` is not a message of this conversation of this user (another conversation, another user, unknown, deleted). */
  INVALID_PAGE_CURSOR: 9045,
  /** A history page size outside 1..100 (wire `history.limit`). */
  INVALID_PAGE_SIZE: 9046,
  /** A server-side internal failure; the request may be retried. */
  SERVER_INTERNAL: 9099,
} as const;

export type Code = (typeof CODE)[keyof typeof CODE];

/**
 * Texts of the codes the chat API object and the tab script create themselves (the
 * not-ready reasons, argument and state refusals, worker failures). Kept apart because they
 * ship in the drop-in `tabchat.js`, which must stay small; the other texts ({@link CODE_TEXT})
 * are only in the worker, the Node entry and the server, which produce those codes.
 */
export const CLIENT_CODE_TEXT: Readonly<Record<number, string>> = {
  [CODE.USER_NOT_LOGGED_IN]: 'user has not logged in',
  [CODE.REPEAT_LOGIN]: 'a login is already in progress',
  [CODE.MSG_INSTANCE_REQUIRED]: 'sendMessage needs a message created by create*Message()',
  [CODE.MSG_INVALID_CONV_TYPE]: "conversationType must be 'C2C'",
  [CODE.UNCAUGHT_ERROR]: 'internal error',
  [CODE.SDK_IS_NOT_READY]: 'SDK not ready',
  [CODE.LOGGING_IN]: 'login in progress',
  [CODE.LOGIN_FAILED]: 'login failed',
  [CODE.KICKED_OUT_MULT_DEVICE]: 'kicked out by a login on another device (login policy)',
  [CODE.KICKED_OUT_MULT_ACCOUNT]: 'kicked out by another login instance (instance limit)',
  [CODE.KICKED_OUT_USERSIG_EXPIRED]: 'kicked out: UserSig expired',
  [CODE.LOGGED_OUT]: 'logged out',
  [CODE.KICKED_OUT_REST_API]: 'kicked out by the REST API',
  [CODE.WORKER_GONE]: 'the tabchat worker went away',
  [CODE.DESTROYED]: 'the SDK instance was destroyed',
  [CODE.WORKER_VERSION_MISMATCH]: 'tabchat.js and tabchat-worker.js come from different builds',
  [CODE.WORKER_CROSS_ORIGIN]: 'workerUrl must be same-origin with the page',
  [CODE.TRANSPORT_UNAVAILABLE]: 'the requested transport is not available in this browser',
};

/**
 * Default English texts of every code. The reference SDK downloads its texts at run time;
 * we ship ours. (Built with a pure call so a bundle that only needs {@link CLIENT_CODE_TEXT}
 * drops it.)
 */
export const CODE_TEXT: Readonly<Record<number, string>> = /* @__PURE__ */ Object.assign({}, CLIENT_CODE_TEXT, {
  [CODE.NO_SDKAPPID]: 'SDKAppID is required',
  [CODE.MSG_SEND_FAIL]: 'failed to send the message',
  [CODE.NETWORK_ERROR]: 'network error: the connection to the chat server failed',
  [CODE.NETWORK_TIMEOUT]: 'request timed out',
  [CODE.SERVICE_DISABLED]: 'the app is disabled (service expired or not purchased)',
  [CODE.USERSIG_EXPIRED]: 'UserSig expired; generate a new one',
  [CODE.USERSIG_EMPTY]: 'UserSig is empty',
  [CODE.USERSIG_UNPARSABLE]: 'UserSig could not be parsed (truncated or not a TLSSigAPIv2 UserSig)',
  [CODE.USERSIG_BAD_SIGNATURE]: 'UserSig verification failed (signed with another key?)',
  [CODE.USERSIG_USERID_MISMATCH]: 'userID does not match the identifier inside the UserSig',
  [CODE.USERSIG_SDKAPPID_MISMATCH]: 'SDKAppID does not match the sdkappid inside the UserSig',
  [CODE.SDKAPPID_NOT_FOUND]: 'SDKAppID not found on this server',
  [CODE.LOGIN_RATE_LIMITED]: 'too many failed logins; retry after a minute',
  [CODE.USERSIG_REVOKED]: 'UserSig was issued before a REST kick of this user; generate a new one',
  [CODE.BAD_FRAME]: 'malformed frame',
  [CODE.PROTOCOL_VERSION_MISMATCH]: 'protocol version mismatch',
  [CODE.HELLO_REQUIRED]: 'send hello first',
  [CODE.UNKNOWN_INSTANCE]: 'unknown instance on this connection',
  [CODE.RESUME_FAILED]: 'session could not be resumed',
  [CODE.HUB_UNRESPONSIVE]: 'the tabchat leader tab does not answer',
  [CODE.FRAME_RATE_LIMITED]: 'too many frames; slow down',
  [CODE.SERVER_SHUTTING_DOWN]: 'server is shutting down',
  [CODE.INVALID_PARAMETER]: 'invalid parameter',
  [CODE.NOT_IMPLEMENTED]: 'not implemented by tabchat',
  [CODE.MSG_TOO_LONG]: 'the message text is longer than 12 KB (UTF-8)',
  [CODE.MSG_TEXT_EMPTY]: 'the message text is empty',
  [CODE.MSG_INVALID_RECIPIENT]: 'the recipient must be a userID of 1..128 characters',
  [CODE.MSG_SEND_TIMEOUT]: 'the message was not acknowledged in time; it stays queued and is sent when the connection allows',
  [CODE.MSG_CANCELLED]: 'the queued message was dropped before the server stored it',
  [CODE.OUTBOX_ERROR]: 'the outbox could not record the message',
  [CODE.MESSAGES_MISSED]: 'messages were dropped between the tabchat worker and this tab',
  [CODE.ENGINE_UNAVAILABLE]: 'the cluster engine (Redis) is unavailable; retry later',
  [CODE.STORE_UNAVAILABLE]: 'the message store is unavailable; nothing was stored, retry later',
  [CODE.MAILBOX_FULL]: "the recipient's mailbox is full; nothing was stored",
  [CODE.SYNC_RATE_LIMITED]: 'too many sync requests waiting on this connection',
  [CODE.USER_CONNECTION_LIMIT]: 'this user is on too many connections of this server',
  [CODE.INVALID_CONVERSATION_ID]: "the conversationID must be 'C2C' followed by a userID",
  [CODE.CONVERSATION_NOT_FOUND]: 'no conversation with this conversationID',
  [CODE.INVALID_PAGE_CURSOR]: 'nextReqMessageID is not a message of this conversation',
  [CODE.INVALID_PAGE_SIZE]: 'the history page size must be 1..100',
  [CODE.SERVER_INTERNAL]: 'internal server error',
});

/** Text for a code, or a generic fallback. */
export function codeText(code: number): string {
  return CODE_TEXT[code] ?? `error ${code}`;
}

/** Text for a code the client side creates ({@link CLIENT_CODE_TEXT}), or a generic fallback. */
export function clientCodeText(code: number): string {
  return CLIENT_CODE_TEXT[code] ?? `error ${code}`;
}

/**
 * WebSocket close codes the server uses. 4000–4499: reconnect with backoff.
 * 4500–4999: terminal, do not reconnect.
 */
export const CLOSE = {
  /** ws: binary frames are not part of the protocol. */
  UNSUPPORTED_DATA: 1003,
  /** ws: frame larger than maxPayload. */
  MESSAGE_TOO_BIG: 1009,
  /** Server restarting / shutting down: reconnect and resume. */
  SHUTDOWN: 4000,
  /** No heartbeat answered in time (client-side close of a dead socket). */
  HEARTBEAT_TIMEOUT: 4001,
  /** No hello in time after connecting. */
  HELLO_TIMEOUT: 4002,
  /** Too many frames in a short time. */
  FRAME_RATE: 4003,
  /** The connection carried no instance for `idleTimeoutMs`. */
  IDLE: 4004,
  /** A resume needed the cluster engine (Redis), which is unavailable: reconnect with backoff and resume again. */
  ENGINE_UNAVAILABLE: 4005,
  /** The client did not take what the server sent (its send buffer passed `maxBufferedBytes`): reconnect with backoff. */
  SLOW_CONSUMER: 4006,
  /** Protocol version mismatch: terminal. */
  PROTOCOL_VERSION: 4500,
  /** Too many malformed frames: terminal. */
  PROTOCOL_VIOLATION: 4501,
} as const;

/** The error code reported to the application when the server closes with a terminal code. */
export function terminalCloseError(closeCode: number): number {
  if (closeCode === CLOSE.PROTOCOL_VERSION) return CODE.PROTOCOL_VERSION_MISMATCH;
  if (closeCode === CLOSE.PROTOCOL_VIOLATION) return CODE.BAD_FRAME;
  return CODE.NETWORK_ERROR;
}

/** Whether a close code means "do not reconnect". */
export function isTerminalClose(code: number): boolean {
  return code >= 4500 && code <= 4999;
}
