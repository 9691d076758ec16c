/**
 * A {@link ChatBackend} that talks to a session engine in the same thread: the Node entry
 * (one engine per chat instance) and, later, the leader tab's own chat. It owns its engine:
 * `destroy()` closes it.
 */
import { ChatError } from '../core/errors.js';
import type { SessionEngineApi, SessionHandle } from '../core/types.js';
import { CODE } from '../protocol/codes.js';
import type { LoginResult, OutgoingText, ConversationCall } from '../protocol/data.js';
import type { Platform, WireMessage } from '../protocol/frames.js';
import type { BackendEvents, ChatBackend } from './backend.js';

/** What a direct backend logs in with, besides userID and userSig. */
export interface DirectBackendOptions {
  sdkAppId: number;
  platform: Platform;
}

export class DirectBackend implements ChatBackend {
  private readonly engine: SessionEngineApi;
  private readonly options: DirectBackendOptions;
  private events: BackendEvents | null = null;
  /** The engine instance of the current login, if any. */
  private handle: SessionHandle | null = null;
  private readonly unsubscribeNet: () => void;

  /**
   * @param engine - the engine this backend owns (closed by `destroy()`)
   * @param options - SDKAppID and platform of every login
   */
  constructor(engine: SessionEngineApi, options: DirectBackendOptions) {
    this.engine = engine;
    this.options = options;
    this.unsubscribeNet = engine.onNetState((state) => this.events?.netState(state));
  }

  setEvents(events: BackendEvents): void {
    this.events = events;
  }

  async login(params: { userID: string; userSig: string }): Promise<LoginResult> {
    const { handle, result } = await this.engine.login(
      { sdkAppId: this.options.sdkAppId, platform: this.options.platform, userID: params.userID, userSig: params.userSig },
      {
        // The engine reports only instances it still holds, i.e. the current login.
        onKicked: (type) => {
          this.handle = null;
          this.events?.kicked(type);
        },
        onLost: (error) => {
          this.handle = null;
          this.events?.lost(error);
        },
        onMessages: (messages) => this.events?.messages(messages),
        onConversations: (update) => this.events?.conversations(update),
      },
    );
    this.handle = handle;
    return result;
  }

  /** One chat per engine: `logout({allTabs: true})` has no other chat to reach. */
  async logout(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (handle) await this.engine.logout(handle);
  }

  getServerTime(): number {
    return this.engine.getServerTime();
  }

  async sendText(message: OutgoingText): Promise<WireMessage> {
    const handle = this.handle;
    if (!handle) throw new ChatError(CODE.USER_NOT_LOGGED_IN, 'not logged in');
    return this.engine.send(handle, message);
  }

  async conversation(call: ConversationCall): Promise<unknown> {
    const handle = this.handle;
    if (!handle) throw new ChatError(CODE.USER_NOT_LOGGED_IN, 'not logged in');
    return this.engine.conversation(handle, call);
  }

  async destroy(): Promise<void> {
    await this.logout();
    this.unsubscribeNet();
    this.engine.close();
  }
}
