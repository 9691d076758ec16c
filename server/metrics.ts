/**
 * Prometheus metrics, one registry per server (several servers can share a process in
 * tests): {@link Metrics} for every server (listed in docs/operations.md) and
 * {@link ClusterMetrics}, registered only by a cluster node (listed in docs/scaling.md).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PLATFORMS, type Platform } from '../src/protocol/frames.js';

export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly instances: Gauge<'platform'>;
  readonly logins: Counter<'result'>;
  readonly kicks: Counter<'type'>;
  readonly resumes: Counter<'result'>;
  readonly loginDuration: Histogram;
  readonly restRequests: Counter<'command' | 'code'>;
  readonly restDuration: Histogram<'command'>;
  readonly framesRejected: Counter<'reason'>;
  readonly messagesStored: Counter;
  /** Conversation requests answered, by frame type (convList, history, read, convDelete). */
  readonly conversationRequests: Counter<'op'>;
  readonly messagesDuplicate: Counter;
  readonly messagesRejected: Counter<'code'>;
  readonly messagesDelivered: Counter<'via'>;
  readonly storeDuration: Histogram<'op'>;
  readonly sockets: Gauge;
  readonly socketsRefused: Counter<'reason'>;
  readonly connectionsClosed: Counter<'reason'>;
  readonly readsPaused: Counter;
  readonly bufferedBytesMax: Gauge;
  readonly syncsRefused: Counter<'reason'>;
  readonly messagesExpired: Counter<'why'>;
  readonly httpBodyDiscarded: Counter;
  readonly storeAvailable: Gauge;

  /**
   * @param bufferedBytes - the largest number of bytes buffered for one open connection now
   *   (read when the metrics are collected)
   */
  constructor(node: string, countInstances: () => Map<Platform, number>, bufferedBytes: () => number = () => 0) {
    this.registry.setDefaultLabels({ node });
    collectDefaultMetrics({ register: this.registry, prefix: 'tabchat_process_' });
    const registers = [this.registry];
    this.connections = new Gauge({ name: 'tabchat_connections', help: 'Open WebSocket connections', registers });
    this.instances = new Gauge({
      name: 'tabchat_instances',
      help: 'Logged-in instances (including those of dropped connections inside the resume window)',
      labelNames: ['platform'],
      registers,
      collect() {
        const counts = countInstances();
        for (const p of PLATFORMS) this.set({ platform: p }, counts.get(p) ?? 0);
      },
    });
    this.logins = new Counter({ name: 'tabchat_logins_total', help: 'Login attempts by result (ok or error code)', labelNames: ['result'], registers });
    this.kicks = new Counter({ name: 'tabchat_kicks_total', help: 'Instances kicked, by kick type', labelNames: ['type'], registers });
    this.resumes = new Counter({ name: 'tabchat_resumes_total', help: 'Resume attempts by result (ok, kicked, failed)', labelNames: ['result'], registers });
    this.loginDuration = new Histogram({
      name: 'tabchat_login_duration_seconds',
      help: 'Server time to answer a login frame',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.restRequests = new Counter({ name: 'tabchat_rest_requests_total', help: 'REST calls by command and ErrorCode', labelNames: ['command', 'code'], registers });
    this.restDuration = new Histogram({
      name: 'tabchat_rest_duration_seconds',
      help: 'REST call duration',
      labelNames: ['command'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.framesRejected = new Counter({ name: 'tabchat_frames_rejected_total', help: 'Client frames refused, by reason', labelNames: ['reason'], registers });
    this.conversationRequests = new Counter({ name: 'tabchat_conversation_requests_total', help: 'Conversation requests (convList, history, read, convDelete), by type', labelNames: ['op'], registers });
    this.messagesStored = new Counter({ name: 'tabchat_messages_stored_total', help: 'New messages stored (acknowledged to their sender)', registers });
    this.messagesDuplicate = new Counter({
      name: 'tabchat_messages_duplicate_total',
      help: 'Sends answered with a message stored before (retries of the same clientMsgId)',
      registers,
    });
    this.messagesRejected = new Counter({ name: 'tabchat_messages_rejected_total', help: 'Sends refused, by error code', labelNames: ['code'], registers });
    this.messagesDelivered = new Counter({
      name: 'tabchat_messages_delivered_total',
      help: 'Messages handed to instances, by path: push (live) or sync (catch-up)',
      labelNames: ['via'],
      registers,
    });
    this.storeDuration = new Histogram({
      name: 'tabchat_store_duration_seconds',
      help: 'Message store call duration, by operation (send, read, ack, position)',
      labelNames: ['op'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
    this.sockets = new Gauge({ name: 'tabchat_sockets', help: 'Open TCP sockets of the listener (WebSocket and plain HTTP)', registers });
    this.socketsRefused = new Counter({
      name: 'tabchat_sockets_refused_total',
      help: 'Sockets refused or cut before their request: per-ip, max-sockets, handshake-timeout, bad-request',
      labelNames: ['reason'],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'tabchat_connections_closed_total',
      help: 'WebSocket connections closed by the server for a limit, by reason (slow)',
      labelNames: ['reason'],
      registers,
    });
    this.readsPaused = new Counter({ name: 'tabchat_reads_paused_total', help: 'Times the server stopped reading a connection whose send buffer was full', registers });
    this.bufferedBytesMax = new Gauge({
      name: 'tabchat_buffered_bytes_max',
      help: 'Largest number of bytes buffered for one open connection (not yet taken by its client)',
      registers,
      collect() {
        this.set(bufferedBytes());
      },
    });
    this.syncsRefused = new Counter({ name: 'tabchat_syncs_refused_total', help: 'sync requests refused (9041), by reason (queue)', labelNames: ['reason'], registers });
    this.messagesExpired = new Counter({
      name: 'tabchat_messages_removed_total',
      help: 'Messages deleted by the store, by reason (retention: older than mailbox.retentionSeconds)',
      labelNames: ['why'],
      registers,
    });
    this.storeAvailable = new Gauge({
      name: 'tabchat_store_available',
      help: 'Whether the last message store call reached the store: 1 or 0 (9031 while 0)',
      registers,
    });
    this.storeAvailable.set(1);
    this.httpBodyDiscarded = new Counter({
      name: 'tabchat_http_body_discarded_bytes_total',
      help: 'Request body bytes read and discarded after an early answer (failed auth, 404, 405)',
      registers,
    });
  }
}

/** The metrics of the Redis engine, in the server's registry; created only when config `redis` is set. */
export class ClusterMetrics {
  readonly available: Gauge;
  readonly nodes: Gauge;
  readonly pubsub: Counter<'direction' | 'type'>;
  readonly reaped: Counter;
  readonly reapedSelf: Counter;
  readonly errors: Counter<'op'>;
  readonly unrouted: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.available = new Gauge({ name: 'tabchat_engine_available', help: 'Whether this node reaches the cluster engine (Redis): 1 or 0', registers });
    this.nodes = new Gauge({ name: 'tabchat_cluster_nodes', help: 'Live nodes of the cluster, as last seen by this node', registers });
    this.pubsub = new Counter({
      name: 'tabchat_cluster_pubsub_messages_total',
      help: 'Node-to-node PUB/SUB messages by direction (in, out) and type (kick, forget, msg, settings, sync)',
      labelNames: ['direction', 'type'],
      registers,
    });
    this.reaped = new Counter({ name: 'tabchat_cluster_reaped_instances_total', help: 'Instances of dead nodes released by this node', registers });
    this.reapedSelf = new Counter({
      name: 'tabchat_cluster_reaped_self_total',
      help: 'Times this node found, on its own heartbeat, that the cluster had taken it for dead and released its instances',
      registers,
    });
    this.unrouted = new Gauge({
      name: 'tabchat_cluster_unrouted_users',
      help: 'Recipients whose pushes this node could not route to other nodes (its Redis link was down), until it has asked the cluster to let them catch up',
      registers,
    });
    this.errors = new Counter({ name: 'tabchat_engine_errors_total', help: 'Cluster engine (Redis) operations that failed, by operation', labelNames: ['op'], registers });
  }
}
