/**
 * Argument checks shared by the chat API object (src/client/chat.ts) and the `create()` of
 * both entries (src/browser/tabchat.ts, src/node/index.ts).
 */

/** The error every bad argument throws, synchronously, with the reference SDK's message. */
export function paramsError(): Error {
  return new Error('Params validate failed.');
}

/**
 * Options of the reference SDK's `create()` that both entries accept: `proxyServer` is
 * another name for `server`, the others are accepted and ignored (warned about once).
 */
export interface ReferenceCreateOptions {
  /** The reference's WebSocket proxy address: used as `server` when `server` is not given. */
  proxyServer?: string | undefined;
  /** Ignored (tabchat uploads no files). */
  fileUploadProxy?: string | undefined;
  /** Ignored (tabchat downloads no files). */
  fileDownloadProxy?: string | undefined;
  /** Ignored (used by the reference's UI kit). */
  scene?: string | undefined;
}

/** `create()` options of the reference SDK that tabchat accepts and ignores (some only exist at its run time). */
export const IGNORED_CREATE_OPTIONS = [
  'fileUploadProxy', 'fileDownloadProxy', 'scene', 'unlimitedAVChatRoom', 'oversea', 'devMode', 'testEnv',
  'eventThrottling', 'partialUpdatedConversations', 'disableIndependentDomain', 'modules',
];

/**
 * The `server` option, or else `proxyServer` (the reference's name for the address of the
 * WebSocket server); `server` wins when both are given.
 */
export function serverOption(options: { server?: unknown; proxyServer?: unknown }): unknown {
  return options.server ?? options.proxyServer;
}

/** The SDKAppID as a number, or null when it is not a positive integer (or a string of digits). */
export function parseSdkAppId(value: unknown): number | null {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number > 0 && number <= 0xffffffff ? number : null;
}
