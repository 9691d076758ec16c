/**
 * Stopping a tab's JavaScript the ways a browser or a user does, for the stall and freeze
 * specs (e2e/stall.spec.ts) and the leader specs:
 *
 * - `pauseScript` / `resume()`: CDP `Debugger.pause` on the page, what a debugger, an
 *   `alert()` or a long task of the app does to the page's main thread (its workers run on).
 * - `hidePage`, `freezePage`, `unfreezePage`: the Page Lifecycle as Chromium runs it (hidden
 *   first, then `freeze`; `resume` when it runs again). Headless Chromium keeps every page
 *   visible, and CDP `Page.setWebLifecycleState` does nothing to a visible page (measured on
 *   the test machine), so the page's `visibilityState` is overridden and the events are
 *   dispatched as the browser would, then `Page.setWebLifecycleState` is sent anyway (it
 *   freezes a really hidden page) and the page's JavaScript is paused to stand for the freeze.
 * - `pauseDedicatedWorker`: CDP `Debugger.pause` on the leader's dedicated worker, a hub that
 *   stops answering (Playwright gives no CDP session for workers: a browser-level session
 *   attaches to it).
 * - `holdsLeaderLock`: whether a page holds `tabchat:leader:<build>`.
 */
import type { CDPSession, Page } from '@playwright/test';

/** A paused page or worker; `resume()` lets it run again. */
export interface Paused {
  resume(): Promise<void>;
}

/** Pause `page`'s JavaScript (CDP `Debugger.pause`); resolves once it is paused. */
export async function pauseScript(page: Page): Promise<Paused> {
  const cdp = await page.context().newCDPSession(page);
  return pauseTarget({
    call: (method, params) => cdp.send(method as 'Runtime.evaluate', params as never),
    next: (method) => new Promise<void>((resolve) => cdp.once(method as 'Debugger.paused', () => resolve())),
    detach: () => cdp.detach(),
  });
}

/** Pause the JavaScript of the target behind `session`; resolves once it is paused. */
async function pauseTarget(session: WorkerSession): Promise<Paused> {
  const paused = session.next('Debugger.paused');
  await session.call('Debugger.enable');
  await session.call('Debugger.pause');
  // It stops at the next statement it runs: make it run one (answered after the resume).
  session.call('Runtime.evaluate', { expression: 'void 0' }).catch(() => {});
  await paused;
  return {
    async resume() {
      await session.call('Debugger.resume');
      await session.call('Debugger.disable');
      await session.detach();
    },
  };
}

/** Make `page` look hidden (`visibilityState`, `hidden`) and dispatch `visibilitychange`, as the browser does when a tab goes to the background. */
export async function hidePage(page: Page): Promise<void> {
  await setVisibility(page, 'hidden');
}

/** Undo {@link hidePage}. */
export async function showPage(page: Page): Promise<void> {
  await setVisibility(page, 'visible');
}

async function setVisibility(page: Page, state: 'hidden' | 'visible'): Promise<void> {
  await page.evaluate((visibility) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => visibility === 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

/**
 * Freeze `page` as Chromium does: hidden, then `freeze` (its handlers run), then frozen
 * (`Page.setWebLifecycleState`; its JavaScript paused, which is what the freeze does to it).
 */
export async function freezePage(page: Page): Promise<{ unfreeze(): Promise<void> }> {
  await hidePage(page);
  await page.evaluate(() => document.dispatchEvent(new Event('freeze')));
  const cdp: CDPSession = await page.context().newCDPSession(page);
  await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
  const paused = await pauseScript(page);
  return {
    async unfreeze() {
      await cdp.send('Page.setWebLifecycleState', { state: 'active' });
      await cdp.detach();
      await paused.resume();
      await page.evaluate(() => document.dispatchEvent(new Event('resume')));
      await showPage(page);
    },
  };
}

/** The CDP targets of one kind (`shared_worker`, `worker`) in the browser context `page` belongs to. */
export async function workerTargets(page: Page, type: 'shared_worker' | 'worker'): Promise<Array<{ targetId: string; url: string }>> {
  const browser = page.context().browser();
  if (!browser) throw new Error('no browser');
  const pageSession = await page.context().newCDPSession(page);
  const { targetInfo } = (await pageSession.send('Target.getTargetInfo')) as { targetInfo: { browserContextId: string } };
  await pageSession.detach();
  const session = await browser.newBrowserCDPSession();
  const { targetInfos } = (await session.send('Target.getTargets')) as {
    targetInfos: Array<{ targetId: string; type: string; url: string; browserContextId: string }>;
  };
  await session.detach();
  return targetInfos.filter((t) => t.type === type && t.browserContextId === targetInfo.browserContextId);
}

/** A CDP session on a worker target. */
export interface WorkerSession {
  /** Send a command; its result (an error after 10 s without an answer, or on a CDP error). */
  call(method: string, params?: object): Promise<any>;
  /** Resolves at the next event named `method`. */
  next(method: string): Promise<void>;
  detach(): Promise<void>;
}

/**
 * Attach to the one worker of kind `type` in `page`'s browser context (null if there is
 * none). Playwright gives no CDP session for workers (and does not even see shared workers),
 * so a browser-level session attaches to it (non-flat: messages go through
 * `Target.sendMessageToTarget`).
 */
export async function attachWorker(page: Page, type: 'shared_worker' | 'worker'): Promise<WorkerSession | null> {
  const workers = await workerTargets(page, type);
  if (workers.length > 1) throw new Error(`expected at most one ${type} in the context, found ${workers.length}`);
  if (workers.length === 0) return null;
  const session = await page.context().browser()!.newBrowserCDPSession();
  const { sessionId } = (await session.send('Target.attachToTarget', { targetId: workers[0]!.targetId, flatten: false })) as { sessionId: string };
  let nextId = 1;
  const answers = new Map<number, (message: { result?: unknown; error?: { message: string } }) => void>();
  const events = new Map<string, Array<() => void>>();
  session.on('Target.receivedMessageFromTarget', (event: { sessionId: string; message: string }) => {
    if (event.sessionId !== sessionId) return;
    const message = JSON.parse(event.message) as { id?: number; method?: string; result?: unknown; error?: { message: string } };
    if (message.id !== undefined) answers.get(message.id)?.(message);
    else if (message.method) for (const resolve of events.get(message.method)?.splice(0) ?? []) resolve();
  });
  return {
    async call(method, params = {}) {
      const id = nextId++;
      const answer = new Promise<{ result?: unknown; error?: { message: string } }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker CDP ${method}: no answer within 10 s`)), 10_000);
        answers.set(id, (message) => {
          clearTimeout(timer);
          answers.delete(id);
          resolve(message);
        });
      });
      await session.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) });
      const message = await answer;
      if (message.error) throw new Error(`${method}: ${message.error.message}`);
      return message.result;
    },
    next(method) {
      return new Promise<void>((resolve) => events.set(method, [...(events.get(method) ?? []), resolve]));
    },
    async detach() {
      await session.send('Target.detachFromTarget', { sessionId }).catch(() => {});
      await session.detach().catch(() => {});
    },
  };
}

/**
 * Pause the dedicated worker (the leader tab's hub) of `page`'s browser context (there must
 * be exactly one); resolves once it is paused.
 */
export async function pauseDedicatedWorker(page: Page): Promise<Paused> {
  const worker = await attachWorker(page, 'worker');
  if (!worker) throw new Error('no dedicated worker in the context');
  return pauseTarget(worker);
}

/** Whether `page` holds the leader lock (the lock's clientId is the page's). */
export function holdsLeaderLock(page: Page): Promise<boolean> {
  return page.evaluate(async () => {
    const self = `e2e-self-${Math.random().toString(36).slice(2)}`;
    return navigator.locks.request(self, async () => {
      const held = (await navigator.locks.query()).held ?? [];
      const mine = held.find((lock) => lock.name === self);
      return held.some((lock) => lock.name?.startsWith('tabchat:leader:') === true && lock.clientId === mine?.clientId);
    });
  });
}
