/**
 * Public constants: `TabChat.EVENT`, `TabChat.TYPES`, `TabChat.VERSION`. String values are
 * exactly those of the reference SDK (docs/reference-behaviour.md), so code written for it keeps working.
 */

/** Event names for `chat.on(name, handler)`. */
export const EVENT = Object.freeze({
  /** The instance is ready: authenticated APIs may be called. `data` is undefined. */
  SDK_READY: 'sdkStateReady',
  /** The instance left the ready state (logout, kick, lost session). `data` is undefined. */
  SDK_NOT_READY: 'sdkStateNotReady',
  /** Kicked by the server; `data` is `{type}` with a `TYPES.KICKED_OUT_*` value. Fired before SDK_NOT_READY. */
  KICKED_OUT: 'kickedOut',
  /** Network state changed; `data` is `{state}` with a `TYPES.NET_STATE_*` value. */
  NET_STATE_CHANGE: 'netStateChange',
  /** A call was refused by the not-ready gate, or a session was lost; `data` is `{code, message}`. */
  ERROR: 'error',
  /** Messages arrived; `data` is `Message[]`. */
  MESSAGE_RECEIVED: 'onMessageReceived',
} as const);

/** Value types of `TabChat.TYPES`. */
export const TYPES = Object.freeze({
  /** Kicked by another login instance of the same account on the same platform (instance limit). */
  KICKED_OUT_MULT_ACCOUNT: 'multipleAccount',
  /** Kicked by a login on another platform (login policy). */
  KICKED_OUT_MULT_DEVICE: 'multipleDevice',
  /** The UserSig expired while online. */
  KICKED_OUT_USERSIG_EXPIRED: 'userSigExpired',
  /** Kicked by the REST API `im_open_login_svc/kick`. */
  KICKED_OUT_REST_API: 'REST_API_Kick',
  NET_STATE_CONNECTED: 'connected',
  NET_STATE_CONNECTING: 'connecting',
  NET_STATE_DISCONNECTED: 'disconnected',
  /** One-to-one conversation. */
  CONV_C2C: 'C2C',
  /** Text message element. */
  MSG_TEXT: 'TIMTextElem',
} as const);

/** The tabchat version (same as package.json). */
export const VERSION = '0.1.0';
