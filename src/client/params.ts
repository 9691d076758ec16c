/**
 * Argument checks shared by the chat API object (src/client/chat.ts) and the `create()` of
 * both entries (src/browser/tabchat.ts, src/node/index.ts).
 */

/** The error every bad argument throws, synchronously, with the reference SDK's message. */
export function paramsError(): Error {
  return new Error('Params validate failed.');
}

/** The SDKAppID as a number, or null when it is not a positive integer (or a string of digits). */
export function parseSdkAppId(value: unknown): number | null {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number > 0 && number <= 0xffffffff ? number : null;
}
