/**
 * What the chat API object (src/client/chat.ts) needs from whatever carries its session:
 * a direct engine (Node), the SharedWorker, or a leader tab. One backend per chat instance.
 *
 * Messages (added with C2C text): a backend reports the messages of its instance with
 * {@link BackendEvents.messages} and sends with {@link ChatBackend.sendText}. Both map
 * one-to-one onto the session engine: `InstanceEvents.onMessages` and
 * `SessionEngineApi.send(handle, message)`; a backend in another thread forwards the
 * same plain data (WireMessage in, OutgoingText out, ErrorData-shaped errors back).
 */
import type { KickType, WireMessage } from '../protocol/frames.js';
import type { ConversationCall, ConversationsUpdate, ErrorData, LoginResult, NetState, OutgoingText } from '../protocol/data.js';

export interface BackendEvents {
  /** This instance was kicked: emit KICKED_OUT then SDK_NOT_READY. Terminal. */
  kicked(type: KickType): void;
  /** This instance was lost for a non-kick reason (e.g. re-login refused). Terminal. */
  lost(error: ErrorData): void;
  /** The socket's state; may repeat the last one (the chat announces transitions only). */
  netState(state: NetState): void;
  /**
   * Messages for this instance, in mailbox order, each once: received ones (flow `in`) and
   * those the same user sent from another instance (flow `out`); never the ones this
   * instance sent itself. Emitted as MESSAGE_RECEIVED.
   */
  messages(list: WireMessage[]): void;
  /**
   * A problem the application should hear about although no call failed (emitted as
   * ERROR), e.g. 9025 when a tab could not get messages the worker delivered.
   */
  error(error: ErrorData): void;
  /**
   * Another chat of this user logged out every tab (`logout({allTabs: true})`): this
   * instance is logged out; emit SDK_NOT_READY (reason 3005). Terminal.
   */
  loggedOut(): void;
  /**
   * The user's conversations after a change (or once after the login): from the shared
   * cache of the engine (src/core/conversations.ts). Emitted as CONVERSATION_LIST_UPDATED,
   * TOTAL_UNREAD_MESSAGE_COUNT_UPDATED and MESSAGE_READ_BY_PEER.
   */
  conversations(update: ConversationsUpdate): void;
}

export interface ChatBackend {
  setEvents(events: BackendEvents): void;
  /** Rejects with ErrorData-shaped errors (server code, 2800, 2801, …). */
  login(params: { userID: string; userSig: string }): Promise<LoginResult>;
  /**
   * Resolves even if the server could not be told (the instance is released locally).
   * @param allTabs - also log out this user's chats in the other tabs of the browser profile
   *   (they get {@link BackendEvents.loggedOut}); a backend with one chat per session ignores it
   */
  logout(allTabs?: boolean): Promise<void>;
  /** Server clock in ms. */
  getServerTime(): number;
  /** Release everything this chat instance holds (socket, worker registration, locks). */
  destroy(): Promise<void>;
  /**
   * Send a C2C text message as the logged-in instance; resolves with the stored message
   * (flow `out`) once the server has stored it, with the semantics and codes of
   * `SessionEngineApi.send` (9022 after the send timeout while the message stays queued;
   * 9023 dropped; 9021/9020/80002 invalid; 2024 not logged in).
   */
  sendText(message: OutgoingText): Promise<WireMessage>;
  /** A conversation call as the logged-in instance (`SessionEngineApi.conversation`). */
  conversation(call: ConversationCall): Promise<unknown>;
}
