/**
 * The page's identity and its life lock. Each page holds `tabchat:tab:<TAB_ID>` for its
 * whole life; its hub waits on that lock, and its release (the page closed, navigated or
 * crashed) is how the hub learns the tab is gone. Without Web Locks (a non-secure origin)
 * the hub learns it only from the `pagehide` goodbye.
 */
import { CODE } from '../protocol/codes.js';
import { holdForLife, tabLockName, webLocks } from '../protocol/hub-protocol.js';
import { ChatError, asChatError } from '../core/errors.js';
import { newClientMsgId } from '../core/outbox.js';

/** This page's id: one per page load, shared by every chat and hub connection of the page. */
export const TAB_ID = newClientMsgId();

let tabLock: Promise<void> | null = null;

/** Hold the tab lock until the page dies (once per page); resolves once it is held. */
export function holdTabLock(): Promise<void> {
  const manager = webLocks();
  if (!manager) return Promise.resolve();
  tabLock ??= holdForLife(manager, tabLockName(TAB_ID)).catch((err: unknown) => {
    tabLock = null;
    throw new ChatError(CODE.UNCAUGHT_ERROR, `cannot hold the tab lock: ${asChatError(err).message}`);
  });
  return tabLock;
}

/** After a return from the bfcache: Safari releases a cached page's locks, so take it again. */
export async function reclaimTabLock(): Promise<void> {
  const manager = webLocks();
  if (!manager || !tabLock) return;
  const state = await manager.query();
  const name = tabLockName(TAB_ID);
  if (!(state.held ?? []).some((lock) => lock.name === name)) {
    tabLock = null;
    await holdTabLock();
  }
}
