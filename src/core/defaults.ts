/**
 * The session engine's defaults (see `SessionEngineOptions`) and its reconnect backoff.
 * A module of its own so the tab bundle can read a default without the engine.
 */

/** Default timeout of a request (and of a login including its connection wait), in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default silence tolerated beyond the server's heartbeat interval, in ms. */
export const DEFAULT_SILENCE_MARGIN_MS = 10_000;
/** Default smallest reconnect delay, in ms. */
export const DEFAULT_BACKOFF_MIN_MS = 500;
/** Default largest reconnect delay, in ms. */
export const DEFAULT_BACKOFF_MAX_MS = 10_000;
/** Default time a `send()` waits for the server's acknowledgement (the message stays queued after), in ms. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000;
/** Default pace of `send` frames per second; below the server's default limit of 100 frames per second. */
export const DEFAULT_FRAMES_PER_SECOND = 80;
/** Default largest frame the server accepts (its `maxPayloadBytes` default), in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 65_536;
/** Default delay before processed messages are acknowledged, in ms. */
export const DEFAULT_ACK_DELAY_MS = 200;

/**
 * Capped full-jitter backoff: `min(max, min + random() · min(max, min · 2^attempt))`.
 * @param options.minMs - default 500
 * @param options.maxMs - default 10 000
 * @param options.random - default `Math.random`
 */
export function fullJitterBackoff(
  options: { minMs?: number; maxMs?: number; random?: () => number } = {},
): (attempt: number) => number {
  const { minMs = DEFAULT_BACKOFF_MIN_MS, maxMs = DEFAULT_BACKOFF_MAX_MS, random = Math.random } = options;
  return (attempt) => Math.min(maxMs, minMs + random() * Math.min(maxMs, minMs * 2 ** attempt));
}
