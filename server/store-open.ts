/**
 * Open the message store named by config `store`: the one place that knows the three
 * implementations (store.ts is their contract). Each is imported only when chosen, so a
 * server on `memory` never loads better-sqlite3 or pg.
 */
import { redactUrl } from './log.js';
import { DEFAULT_STORE_BATCH, NO_QUOTA, type MailboxQuota, type MessageStore, type StoreBatchOptions } from './store.js';

/**
 * Open the store named by config `store`: `memory`, `sqlite:PATH` (file created if missing,
 * schema created or migrated) or `postgres://…` / `postgresql://…` (schema created or
 * migrated; fails when the database cannot be reached).
 * @param batch - group commit bounds (used by `sqlite:`); default {@link DEFAULT_STORE_BATCH}
 * @param quota - per-mailbox quota (config `mailbox`); default none
 */
export async function openStore(spec: string, batch: StoreBatchOptions = DEFAULT_STORE_BATCH, quota: MailboxQuota = NO_QUOTA): Promise<MessageStore> {
  if (spec === 'memory') {
    const { MemoryStore } = await import('./store-memory.js');
    return new MemoryStore(quota);
  }
  if (spec.startsWith('sqlite:')) {
    const { SqliteStore } = await import('./store-sqlite.js');
    return SqliteStore.open(spec.slice('sqlite:'.length), batch, quota);
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const { PostgresStore } = await import('./store-postgres.js');
    return PostgresStore.open(spec, quota, batch.baseline === true);
  }
  throw new Error(`store ${JSON.stringify(redactUrl(spec))} is not available: use "memory", "sqlite:PATH" or a postgres:// URL`);
}
