/**
 * Run a callback on the next task of the event loop, without a timer.
 *
 * The SDK delivers some events one task after the call that caused them (SDK_READY after the
 * login promise resolved, as the reference SDK orders them). A `setTimeout(fn, 0)` does that
 * in a visible tab, but browsers throttle timers in hidden tabs: at least 1 s in Firefox and
 * Chrome (Chrome's intensive throttling lets chained timers run once a minute after five
 * minutes hidden). A message posted on a MessageChannel is a task too, queued at once and
 * never throttled, so a tab in the background gets its events as fast as a visible one.
 *
 * One channel serves every callback, first in first out. It is created on first use, and in
 * Node its port is unreferenced while nothing waits, so an idle channel keeps no process
 * alive. Where MessageChannel does not exist, `setTimeout(fn, 0)` is the fallback.
 * docs/architecture.md "Timers in a background tab" lists the SDK's timers and what
 * throttling does to each.
 */

/** Cancels a scheduled callback; no effect once it ran. */
export type CancelTask = () => void;

interface Task {
  run: () => void;
  cancelled: boolean;
}

/** The port API this module uses; `ref`/`unref` exist in Node only. */
interface Port {
  onmessage: ((event: unknown) => void) | null;
  postMessage(message: unknown): void;
  ref?: () => void;
  unref?: () => void;
}

let channel: { in: Port; out: Port } | null = null;
/**
 * Callbacks in order. Each entry posted one message and the next message takes it off, so the
 * queue only holds what the callers scheduled within one task (one per login or kick).
 */
const queue: Task[] = [];

function runOne(): void {
  const task = queue.shift();
  if (queue.length === 0) channel?.in.unref?.();
  if (task === undefined || task.cancelled) return;
  // A throwing callback must not stop the channel: report it the way a timer's would be.
  try {
    task.run();
  } catch (err) {
    reportError(err);
  }
}

function reportError(err: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === 'function') report(err);
  else queueMicrotask(() => { throw err; });
}

function openChannel(): { in: Port; out: Port } | null {
  const Ctor = (globalThis as { MessageChannel?: new () => { port1: Port; port2: Port } }).MessageChannel;
  if (typeof Ctor !== 'function') return null;
  const { port1, port2 } = new Ctor();
  port1.onmessage = runOne;
  return { in: port1, out: port2 };
}

/**
 * Run `fn` on a new task (after every microtask of the current one: promise continuations
 * of the caller run first). Returns a function that cancels it.
 */
export function nextTask(fn: () => void): CancelTask {
  channel ??= openChannel();
  if (channel === null) {
    const timer = setTimeout(fn, 0);
    return () => clearTimeout(timer);
  }
  const task: Task = { run: fn, cancelled: false };
  queue.push(task);
  channel.in.ref?.();
  channel.out.postMessage(null);
  return () => {
    task.cancelled = true;
  };
}
