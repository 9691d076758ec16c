/**
 * Release of orphaned instances: instances a dead worker run held for tabs that died with
 * it (see worker/storage.ts). For each one, once every tab it belonged to has released its
 * life lock and no tab has taken it over in this run, a short-lived connection resumes it
 * (silent: kicks nobody) and logs it out, so it leaves the server at once instead of after
 * the resume window.
 *
 * The session engine has no "resume without falling back to a new login" call, and a new
 * login here could kick live instances, so this speaks the three frames itself on its own
 * socket (hello → resume → logout), bounded by a timeout. A 9005 (already released, or the
 * window passed) means there is nothing to do.
 */
import { CODE } from '../src/protocol/codes.js';
import { PROTOCOL_VERSION, encodeFrame, parseServerFrame } from '../src/protocol/frames.js';
import type { Logger } from '../src/protocol/data.js';
import type { WebSocketConstructor } from '../src/core/types.js';
import { workerLockName } from '../src/protocol/hub-protocol.js';
import type { StoredInstance, StoredRun } from './storage.js';

/** What {@link adoptDeadRuns} needs: the Web Locks, the run records, and the hub. */
export interface DeadRunWatch {
  locks: Pick<LockManager, 'request'>;
  /** Records of the other runs (dead or alive). */
  others(): Promise<StoredRun[]>;
  /** The current record of one run (it may have changed since {@link others}), if any. */
  record(epoch: string): Promise<StoredRun | undefined>;
  /** Take charge of a dead run's instances (`Hub.adoptOrphans`). */
  adopt(run: StoredRun): void;
  log: Logger;
}

/**
 * Adopt the instances of every other run recorded, each once its life lock
 * (`tabchat:worker:<epoch>`) is free: at once for a run that is already dead, else when it
 * dies. Waiting matters because a crashed renderer releases its locks one by one: the next
 * leader tab may get the leader lock (and start this) while the dead leader's life lock is
 * still listed as held, and a run checked only once would be skipped, leaving the dead
 * tab's own instance online for the server's resume window.
 *
 * The wait is a `shared` request, as tabs watch their hub: it is granted together with
 * theirs when the holder dies, is released at once (the callback returns immediately), and
 * blocks nothing (only the run itself ever asks for that lock exclusively, and it holds it
 * already). For a run that is really alive (another hub of the same build) it simply stays
 * queued, harmless, until that run dies or this one does.
 */
export async function adoptDeadRuns(watch: DeadRunWatch): Promise<void> {
  const others = await watch.others();
  for (const run of others) {
    watch.locks
      .request(workerLockName(run.epoch), { mode: 'shared' }, () => {
        // Read the record again: the run may have changed it before it died.
        watch.record(run.epoch).then(
          (latest) => { if (latest) watch.adopt(latest); },
          (err: unknown) => watch.log.warn(`cannot read the record of run ${run.epoch}:`, err),
        );
      })
      .catch((err: unknown) => watch.log.warn(`cannot watch run ${run.epoch}:`, err));
  }
}

/** How long one release may take before its socket is closed. */
export const RELEASE_TIMEOUT_MS = 5_000;

/**
 * Resume and log out one instance on a socket of its own.
 * @returns 'released', 'gone' (the server no longer had it) or 'failed'
 */
export function releaseInstance(
  WebSocketCtor: WebSocketConstructor,
  instance: Pick<StoredInstance, 'server' | 'instId' | 'token'>,
  clientName: string,
  log: Logger,
): Promise<'released' | 'gone' | 'failed'> {
  return new Promise((resolve) => {
    let socket: InstanceType<WebSocketConstructor>;
    try {
      socket = new WebSocketCtor(instance.server);
    } catch (err) {
      log.warn(`cannot open a socket to release instance ${instance.instId}:`, err);
      resolve('failed');
      return;
    }
    let done = false;
    const finish = (outcome: 'released' | 'gone' | 'failed', why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      log.info(`orphaned instance ${instance.instId}: ${outcome} (${why})`);
      try {
        socket.close(1000, 'orphan released');
      } catch {
        // already closing
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('failed', `no answer within ${RELEASE_TIMEOUT_MS} ms`), RELEASE_TIMEOUT_MS);
    socket.onopen = () => socket.send(encodeFrame({ type: 'hello', v: PROTOCOL_VERSION, client: clientName }));
    socket.onerror = () => {};
    socket.onclose = (event) => finish('failed', `socket closed (${event.code})`);
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      const parsed = parseServerFrame(event.data);
      if (!parsed.ok) return;
      const frame = parsed.frame;
      if (frame.type === 'welcome') {
        socket.send(encodeFrame({ type: 'resume', id: 1, instId: instance.instId, token: instance.token }));
      } else if (frame.type === 'result' && frame.id === 1) {
        if (frame.ok) socket.send(encodeFrame({ type: 'logout', id: 2, instId: instance.instId }));
        else finish(frame.code === CODE.RESUME_FAILED || frame.data?.kickType ? 'gone' : 'failed', `resume: ${frame.code} ${frame.message}`);
      } else if (frame.type === 'result' && frame.id === 2) {
        finish(frame.ok ? 'released' : 'failed', frame.ok ? 'logged out' : `logout: ${frame.code} ${frame.message}`);
      }
    };
  });
}
