/**
 * What the chat API object (src/client/chat.ts) needs from whatever carries its session:
 * a direct engine (Node), the SharedWorker, or a leader tab. One backend per chat instance.
 */
import type { KickType } from '../protocol/frames.js';
import type { ErrorData, LoginResult, NetState } from '../core/types.js';

export interface BackendEvents {
  /** This instance was kicked: emit KICKED_OUT then SDK_NOT_READY. Terminal. */
  kicked(type: KickType): void;
  /** This instance was lost for a non-kick reason (e.g. re-login refused). Terminal. */
  lost(error: ErrorData): void;
  netState(state: NetState): void;
}

export interface ChatBackend {
  setEvents(events: BackendEvents): void;
  /** Rejects with ErrorData-shaped errors (server code, 2800, 2801, …). */
  login(params: { userID: string; userSig: string }): Promise<LoginResult>;
  /** Resolves even if the server could not be told (the instance is released locally). */
  logout(): Promise<void>;
  /** Server clock in ms. */
  getServerTime(): number;
  /** Release everything this chat instance holds (socket, worker registration, locks). */
  destroy(): Promise<void>;
}
