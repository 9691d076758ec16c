/**
 * The one error class of tabchat, and its plain-data form for crossing threads
 * (comlink, BroadcastChannel): `toErrorData()` before sending, `fromErrorData()` on arrival,
 * so `instanceof ChatError` and `.code` work on both sides.
 */
import { CODE, clientCodeText } from '../protocol/codes.js';
import type { ErrorData } from '../protocol/data.js';

export { KICK_REASON_CODE } from '../protocol/frames.js';

/** An error with a numeric `code` (see docs/errors.md), a `message` and a `data` object. */
export class ChatError extends Error {
  override readonly name = 'ChatError';
  /** Numeric code from src/protocol/codes.ts, or a server code (70001, 60020, …). */
  readonly code: number;
  /** Extra facts; `{}` when there are none (e.g. `{kickType}` on a resume refused by a kick). */
  readonly data: Record<string, unknown>;

  /**
   * @param code - error code
   * @param message - default: the code's text from `CLIENT_CODE_TEXT` (`error <code>` for others)
   * @param data - default `{}`
   */
  constructor(code: number, message: string = clientCodeText(code), data: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether `value` has the {@link ErrorData} shape (numeric `code`, string `message`). */
export function isErrorData(value: unknown): value is ErrorData {
  return isRecord(value) && typeof value.code === 'number' && typeof value.message === 'string';
}

/**
 * Plain-data form of any thrown value. ChatErrors and ErrorData-shaped objects keep their
 * code, message and data; anything else becomes {@link CODE.UNCAUGHT_ERROR} (2903).
 */
export function toErrorData(err: unknown): ErrorData {
  if (isErrorData(err)) {
    const data = isRecord(err.data) ? { ...err.data } : {};
    return { code: err.code, message: err.message, data };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: CODE.UNCAUGHT_ERROR, message: `${clientCodeText(CODE.UNCAUGHT_ERROR)}: ${message}`, data: {} };
}

/** A ChatError again from its plain-data form. */
export function fromErrorData(d: ErrorData): ChatError {
  return new ChatError(d.code, d.message, d.data ?? {});
}

/** `err` itself when it is a ChatError, else a ChatError carrying the same facts. */
export function asChatError(err: unknown): ChatError {
  return err instanceof ChatError ? err : fromErrorData(toErrorData(err));
}
