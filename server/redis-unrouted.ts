/**
 * Recipients whose message pushes this node could not route to the other nodes: its link to
 * Redis was down, or the ROUTE call failed. The messages themselves are stored (a send is
 * acknowledged after the commit); what was lost is only the push that tells the recipient's
 * other nodes. Once this node's link answers again (reconnect, or a heartbeat after a stall),
 * it publishes a `sync` notice on the broadcast channel naming those users, and every node
 * lets its connected instances of them catch up (they get the newest mailbox entry, see a
 * gap and sync). Without it, a recipient on another node would wait for its next push.
 *
 * Bounded: at most `maxUsers` users are remembered; past that the node forgets the list and
 * asks every node to let ALL its connected instances catch up (one notice).
 */
import type { Gauge } from 'prom-client';
import type { Logger } from './log.js';
import type { RedisLink } from './redis-health.js';

/** Users per `sync` notice (about 50 bytes each). */
export const SYNC_CHUNK_USERS = 500;

/** Publishes one `sync` notice: these users, or every connected instance (`'all'`). */
export type PublishSync = (users: Array<[number, string]> | 'all') => Promise<unknown>;

export class UnroutedUsers {
  private readonly users = new Map<string, [number, string]>();
  private everyone = false;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly link: RedisLink,
    private readonly publish: PublishSync,
    private readonly gauge: Gauge,
    private readonly log: Logger,
    private readonly maxUsers: number,
  ) {}

  /** A push to `userID`'s other nodes could not be routed. */
  note(sdkAppId: number, userID: string): void {
    if (this.everyone) return;
    const key = `${sdkAppId}:${userID}`;
    if (this.users.has(key)) return;
    if (this.users.size >= this.maxUsers) {
      this.everyone = true;
      this.users.clear();
      this.log.warn({ maxUsers: this.maxUsers }, 'too many recipients with unrouted pushes: every node will let all its connected instances catch up');
    } else {
      this.users.set(key, [sdkAppId, userID]);
    }
    this.gauge.set(this.everyone ? this.maxUsers : this.users.size);
  }

  /** Whether some users wait for a catch-up notice. */
  get pending(): boolean {
    return this.everyone || this.users.size > 0;
  }

  /**
   * Publish the catch-up notices if the link answers; what fails to publish stays pending
   * for the next call (after the next heartbeat or reconnect).
   */
  flush(): Promise<void> {
    if (!this.pending || !this.link.usable) return Promise.resolve();
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const everyone = this.everyone;
    const users = [...this.users.values()];
    this.everyone = false;
    this.users.clear();
    this.gauge.set(0);
    try {
      if (everyone) {
        await this.publish('all');
      } else {
        for (let i = 0; i < users.length; i += SYNC_CHUNK_USERS) await this.publish(users.slice(i, i + SYNC_CHUNK_USERS));
      }
      this.log.info({ users: everyone ? 'all' : users.length }, 'asked the cluster to let recipients of unrouted pushes catch up');
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'catch-up notice failed; retried after the next heartbeat');
      if (everyone) this.everyone = true;
      else for (const [a, u] of users) this.note(a, u);
      this.gauge.set(this.everyone ? this.maxUsers : this.users.size);
    }
  }
}
