/**
 * A tiny leveled console logger shared by the engine and the chat API object. It has no
 * dependencies, so the tab-side bundle can include it.
 */
import type { Logger } from '../protocol/data.js';

/** Log levels as in the reference `setLogLevel`: 0 debug, 1 info, 2 warn, 3 error, 4 none. */
export type LogLevel = 0 | 1 | 2 | 3 | 4;

/** A logger whose level can change at run time. */
export interface LeveledLogger extends Logger {
  level: LogLevel;
}

/** Whether `value` is a valid {@link LogLevel}. */
export function isLogLevel(value: unknown): value is LogLevel {
  return value === 0 || value === 1 || value === 2 || value === 3 || value === 4;
}

/**
 * A logger writing to `console` with a `[prefix]` tag.
 * @param prefix - tag in front of every line, e.g. `'tabchat'`
 * @param level - initial level; default 2 (warn)
 */
export function createConsoleLogger(prefix: string, level: LogLevel = 2): LeveledLogger {
  const tag = `[${prefix}]`;
  const logger: LeveledLogger = {
    level,
    debug: (...args) => { if (logger.level <= 0) console.debug(tag, ...args); },
    info: (...args) => { if (logger.level <= 1) console.info(tag, ...args); },
    warn: (...args) => { if (logger.level <= 2) console.warn(tag, ...args); },
    error: (...args) => { if (logger.level <= 3) console.error(tag, ...args); },
  };
  return logger;
}

/** Run a callback of the application or a listener: its exceptions are logged, never thrown at the caller. */
export function safely(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error('listener threw:', err);
  }
}
