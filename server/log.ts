/**
 * Structured JSON logs (pino). Secrets never reach a log: UserSigs, keys and tokens are
 * redacted wherever they appear in a logged object, and REST URLs (which carry the admin
 * UserSig in their query) are never logged whole.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'userSig', 'usersig', 'secretKey', 'token', 'key',
  '*.userSig', '*.usersig', '*.secretKey', '*.token', '*.key',
];

export function createLogger(level: string, node: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { node },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A URL (`postgres://`, `redis://`) with any password hidden, for messages and logs. */
export function redactUrl(spec: string): string {
  return spec.replace(/\/\/[^@/]*@/, '//***@');
}
