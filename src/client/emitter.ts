/**
 * Event emitter with the reference SDK's EventEmitter3 semantics: handlers get
 * `{name, data}`; calling `on` twice with one handler registers it twice; one `off` removes
 * every registration of that handler (of that context, when given); exceptions thrown by
 * handlers are caught and logged, never propagated.
 */
import type { Logger } from '../protocol/data.js';

/** What every handler receives. */
export interface ChatEvent<D = unknown> {
  name: string;
  data: D;
}

/** A handler; called with `this` bound to the context given to `on`. */
export type ChatEventHandler<D = unknown> = (event: ChatEvent<D>) => void;

interface Registration {
  handler: ChatEventHandler<never>;
  context: unknown;
  once: boolean;
}

export class Emitter {
  readonly #registrations = new Map<string, Registration[]>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  on(name: string, handler: ChatEventHandler<never>, context: unknown, once: boolean): void {
    const list = this.#registrations.get(name) ?? [];
    list.push({ handler, context, once });
    this.#registrations.set(name, list);
  }

  /** Remove every registration of `handler` (restricted to `context` when given). */
  off(name: string, handler: ChatEventHandler<never>, context?: unknown): void {
    const list = this.#registrations.get(name) ?? [];
    const kept = list.filter((r) => r.handler !== handler || (context !== undefined && r.context !== context));
    if (kept.length === list.length) {
      this.#log.warn(`off(${JSON.stringify(name)}): handler was not registered`);
      return;
    }
    if (kept.length > 0) this.#registrations.set(name, kept);
    else this.#registrations.delete(name);
  }

  emit(name: string, data?: unknown): void {
    const list = this.#registrations.get(name);
    if (!list) return;
    for (const registration of [...list]) {
      if (registration.once) this.#remove(name, registration);
      try {
        (registration.handler as ChatEventHandler).call(registration.context, { name, data });
      } catch (err) {
        this.#log.error(`CallbackError in a ${JSON.stringify(name)} handler:`, err);
      }
    }
  }

  removeAll(): void {
    this.#registrations.clear();
  }

  #remove(name: string, registration: Registration): void {
    const list = this.#registrations.get(name);
    if (!list) return;
    const kept = list.filter((r) => r !== registration);
    if (kept.length > 0) this.#registrations.set(name, kept);
    else this.#registrations.delete(name);
  }
}
