/**
 * Adoption of dead worker runs (worker/orphans.ts `adoptDeadRuns`) with a fake Web Locks
 * manager: a run whose life lock is still held when the new hub starts (a crashed renderer
 * releases its locks one by one, so the next leader can start first) is adopted when the
 * lock is released, not skipped; the wait is a shared request that blocks nobody; a run that
 * stays alive is never adopted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerLockName } from '../../src/protocol/hub-protocol.js';
import { adoptDeadRuns } from '../../worker/orphans.js';
import type { StoredRun } from '../../worker/storage.js';

type Callback = (lock: { name: string; mode: LockMode } | null) => unknown;

interface Request {
  name: string;
  mode: LockMode;
  callback: Callback;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Web Locks, the parts used here: exclusive and shared modes, a FIFO queue per name, a lock
 * held until its callback's promise settles. `hold()` stands for another context holding a
 * lock exclusively until `release()`.
 */
class FakeLocks {
  readonly requests: Array<{ name: string; mode: LockMode }> = [];
  private readonly held = new Map<string, { mode: LockMode; count: number }>();
  private readonly queue: Request[] = [];
  private readonly releases = new Map<string, () => void>();

  request(name: string, optionsOrCallback: LockOptions | Callback, maybeCallback?: Callback): Promise<unknown> {
    const options = typeof optionsOrCallback === 'function' ? {} : optionsOrCallback;
    const callback = (typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback)!;
    const mode = options.mode ?? 'exclusive';
    this.requests.push({ name, mode });
    return new Promise((resolve, reject) => {
      this.queue.push({ name, mode, callback, resolve, reject });
      this.pump();
    });
  }

  /** Another context takes `name` exclusively. */
  hold(name: string): void {
    void this.request(name, () => new Promise<void>((resolve) => this.releases.set(name, resolve)));
  }

  /** That context dies: its lock is released. */
  release(name: string): void {
    this.releases.get(name)?.();
    this.releases.delete(name);
  }

  /** Whether anyone holds `name` now. */
  isHeld(name: string): boolean {
    return this.held.has(name);
  }

  waiting(name: string): number {
    return this.queue.filter((request) => request.name === name).length;
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length; i++) {
      const request = this.queue[i]!;
      // FIFO per name: nothing jumps over an earlier request for the same lock.
      if (this.queue.slice(0, i).some((earlier) => earlier.name === request.name)) continue;
      const current = this.held.get(request.name);
      const grantable = !current || (current.mode === 'shared' && request.mode === 'shared');
      if (!grantable) continue;
      this.queue.splice(i--, 1);
      if (current) current.count++;
      else this.held.set(request.name, { mode: request.mode, count: 1 });
      Promise.resolve()
        .then(() => request.callback({ name: request.name, mode: request.mode }))
        .then(request.resolve, request.reject)
        .finally(() => {
          const entry = this.held.get(request.name)!;
          if (--entry.count === 0) this.held.delete(request.name);
          this.pump();
        });
    }
  }
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function run(epoch: string, instIds: number[]): StoredRun {
  return {
    epoch,
    build: 'b',
    updatedAt: Date.now(),
    instances: instIds.map((instId) => ({ key: `chat|${epoch}/${instId}`, server: 'ws://s/ws', sdkAppId: 1, userID: 'u', instId, token: 't', tabIds: [] })),
  };
}

async function until(probe: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (probe()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

/** Run `adoptDeadRuns` over `records` (read live); returns the list the adopted runs land in. */
async function watchRuns(locks: FakeLocks, records: Map<string, StoredRun>): Promise<StoredRun[]> {
  const adopted: StoredRun[] = [];
  await adoptDeadRuns({
    locks,
    others: async () => [...records.values()],
    record: async (epoch) => records.get(epoch),
    adopt: (r) => adopted.push(r),
    log: quiet,
  });
  return adopted;
}

/** Let every queued microtask and immediate run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a dead run is adopted at once; a run whose lock is still held is adopted when it is released, with its latest record', async () => {
  const locks = new FakeLocks();
  const records = new Map<string, StoredRun>([['dead', run('dead', [1])], ['dying', run('dying', [2])]]);
  // The crashed leader's life lock is still listed as held when the new leader starts.
  locks.hold(workerLockName('dying'));
  const adopted = await watchRuns(locks, records);
  await until(() => adopted.length === 1, 'the dead run adopted');
  assert.equal(adopted[0]!.epoch, 'dead');
  assert.deepEqual(
    locks.requests.filter((r) => r.name !== workerLockName('dying') || r.mode === 'shared'),
    [{ name: workerLockName('dead'), mode: 'shared' }, { name: workerLockName('dying'), mode: 'shared' }],
    'one shared request per run',
  );
  await settle();
  assert.equal(adopted.length, 1, 'not the run that still holds its lock');
  assert.equal(locks.waiting(workerLockName('dying')), 1, 'its lock is waited on');

  // The dying run recorded one more instance before its lock went.
  records.set('dying', run('dying', [2, 3]));
  locks.release(workerLockName('dying'));
  await until(() => adopted.length === 2, 'the run adopted once its lock is released');
  assert.deepEqual(adopted[1]!.instances.map((i) => i.instId), [2, 3]);
  // The shared request was let go at once: the lock is free again for anyone.
  await until(() => !locks.isHeld(workerLockName('dying')), 'the shared request released');
});

test('waiting on a live run blocks nobody and adopts nothing; a record gone meanwhile is not adopted', async () => {
  const locks = new FakeLocks();
  const records = new Map<string, StoredRun>([['alive', run('alive', [1])], ['dropped', run('dropped', [2])]]);
  locks.hold(workerLockName('alive'));
  locks.hold(workerLockName('dropped'));
  const adopted = await watchRuns(locks, records);
  // Tabs of the live run watch it with shared requests too: they are not held up by ours.
  let tabWatchGranted = false;
  void locks.request(workerLockName('alive'), { mode: 'shared' }, () => { tabWatchGranted = true; });
  await settle();
  assert.equal(tabWatchGranted, false, 'the holder is alive');
  assert.equal(locks.waiting(workerLockName('alive')), 2);
  assert.equal(adopted.length, 0);

  // Another hub dealt with the dropped run before its lock was released here.
  records.delete('dropped');
  locks.release(workerLockName('dropped'));
  await until(() => !locks.isHeld(workerLockName('dropped')) && locks.waiting(workerLockName('dropped')) === 0, 'the wait on the dropped run ended');
  await settle();
  assert.equal(adopted.length, 0);

  locks.release(workerLockName('alive'));
  await until(() => tabWatchGranted && adopted.length === 1, 'both watchers granted together');
  assert.equal(adopted[0]!.epoch, 'alive');
});
