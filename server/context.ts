/** What every part of one running server shares. */
import type { Authenticator } from './auth.js';
import type { AppConfig, ServerConfig } from './config.js';
import type { InstanceEngine } from './engine.js';
import type { Logger } from './log.js';
import type { LogSampler } from './log-sampler.js';
import type { MessageService } from './messages.js';
import type { ConversationService } from './conversations.js';
import type { Metrics } from './metrics.js';
import type { SocketGuard } from './sockets.js';
import type { MessageStore } from './store.js';
import type { SyncScheduler } from './sync-scheduler.js';

/**
 * What the server does with an open client connection from outside it (heartbeat sweep,
 * shutdown, tests): `Connection` (connection.ts) implements it; declared here so this
 * file needs nothing from connection.ts.
 */
export interface OpenConnection {
  readonly id: number;
  /** False after a ping went unanswered until the next sweep. */
  readonly isAlive: boolean;
  ping(): void;
  close(code: number, reason: string): void;
  /** Drop the socket without a close handshake. */
  terminate(): void;
  /** Bytes written to the socket that its client has not taken yet. */
  readonly bufferedAmount: number;
}

export interface ServerContext {
  readonly config: ServerConfig;
  /** Apps by SDKAppID; entries are mutable (login settings change at run time). */
  readonly apps: Map<number, AppConfig>;
  /**
   * Instances, limits, kicks and routing: in memory (one node) or cluster-wide on Redis
   * (config `redis`). `engine.local` is the instances this node holds.
   */
  readonly engine: InstanceEngine;
  readonly auth: Authenticator;
  readonly metrics: Metrics;
  /** Where messages are stored (config `store`). */
  readonly store: MessageStore;
  /** C2C messages: send, sync, ack, delivery. */
  readonly messages: MessageService;
  /** Conversations: list, history, read markers, deletion (conversations.ts). */
  readonly conversations: ConversationService;
  readonly log: Logger;
  /** Repetitive lines (refused logins and sockets): a few per key per interval, then a count. */
  readonly sampler: LogSampler;
  /** This node's id, in logs and metrics. */
  readonly node: string;
  /** Open client connections; each removes itself when its socket closes. */
  readonly connections: Set<OpenConnection>;
  /** The connections of this node that carry instances of each user (`userKey`): `rateLimits.connectionsPerUser`. */
  readonly userConnections: Map<string, Set<OpenConnection>>;
  /** Every TCP socket of the listener: per-address and total limits, header deadline. */
  readonly sockets: SocketGuard;
  /** Runs the `sync` reads of all connections, one connection after another. */
  readonly syncs: SyncScheduler;
  shuttingDown: boolean;
}
