/**
 * Sampling of repetitive log lines (pino has none): at most `perInterval` lines per key in
 * each interval; the lines dropped are counted and reported once, as one summary line
 * `<msg> (repeated)` with `suppressed: N`, when the key's interval ends. Keys are bounded:
 * past `maxKeys` live keys, new keys share one overflow key. A flood of refused logins
 * then costs a few lines per address per interval instead of one per attempt.
 */
import type { Logger } from './log.js';

interface KeyState {
  logged: number;
  suppressed: number;
  msg: string;
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
}

export interface LogSamplerOptions {
  /** Lines logged per key per interval. Default 5. */
  perInterval?: number;
  /** Default 10 000 ms. */
  intervalMs?: number;
  /** Live keys at most; beyond, new keys share one overflow key. Default 10 000. */
  maxKeys?: number;
}

const OVERFLOW_KEY = '\u0000overflow';

export class LogSampler {
  private keys = new Map<string, KeyState>();
  private readonly perInterval: number;
  private readonly maxKeys: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    options: LogSamplerOptions = {},
  ) {
    this.perInterval = options.perInterval ?? 5;
    this.maxKeys = options.maxKeys ?? 10_000;
    this.timer = setInterval(() => this.flush(), options.intervalMs ?? 10_000);
    this.timer.unref();
  }

  info(key: string, fields: Record<string, unknown>, msg: string): void {
    this.line('info', key, fields, msg);
  }

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    this.line('warn', key, fields, msg);
  }

  /** End the interval now: write the summary lines and forget every key. */
  flush(): void {
    const keys = this.keys;
    this.keys = new Map();
    for (const state of keys.values()) {
      if (state.suppressed > 0) this.log[state.level]({ ...state.fields, suppressed: state.suppressed }, `${state.msg} (repeated)`);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private line(level: 'info' | 'warn', key: string, fields: Record<string, unknown>, msg: string): void {
    if (!this.log.isLevelEnabled(level)) return;
    let state = this.keys.get(key);
    if (state === undefined && this.keys.size >= this.maxKeys) {
      key = OVERFLOW_KEY;
      state = this.keys.get(key);
      fields = { overflow: true };
    }
    if (state === undefined) {
      state = { logged: 0, suppressed: 0, msg, level, fields };
      this.keys.set(key, state);
    }
    if (state.logged < this.perInterval) {
      state.logged++;
      this.log[level](fields, msg);
    } else {
      state.suppressed++;
      state.fields = fields;
    }
  }
}
