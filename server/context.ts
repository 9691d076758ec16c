/** What every part of one running server shares. */
import type { Authenticator } from './auth.js';
import type { AppConfig, ServerConfig } from './config.js';
import type { Connection } from './connection.js';
import type { Engine } from './engine.js';
import type { Logger } from './log.js';
import type { MessageService } from './messages.js';
import type { Metrics } from './metrics.js';
import type { MessageStore } from './store.js';

export interface ServerContext {
  readonly config: ServerConfig;
  /** Apps by SDKAppID; entries are mutable (login settings change at run time). */
  readonly apps: Map<number, AppConfig>;
  /**
   * Instances, limits, kicks and routing: in memory (one node) or cluster-wide on Redis
   * (config `redis`). `engine.local` is the instances this node holds.
   */
  readonly engine: Engine;
  readonly auth: Authenticator;
  readonly metrics: Metrics;
  /** Where messages are stored (config `store`). */
  readonly store: MessageStore;
  /** C2C messages: send, sync, ack, delivery. */
  readonly messages: MessageService;
  readonly log: Logger;
  /** This node's id, in logs and metrics. */
  readonly node: string;
  readonly connections: Set<Connection>;
  shuttingDown: boolean;
}
