/**
 * The sqlite store's file: its schema (migrations by `PRAGMA user_version`) and how it is
 * opened (exclusive lock, WAL, `synchronous=FULL`). Used by the writer thread
 * (store-sqlite-writer.ts), the one place that opens the file while a server runs.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_CONVERSATIONS_MIGRATION } from './store-sqlite-conversations.js';

/** Schema version this code writes; `PRAGMA user_version` of an up-to-date file. */
export const SQLITE_SCHEMA_VERSION = 3;

/**
 * WAL pages between automatic checkpoints (SQLite's default is 1,000, about 4 MB). A
 * checkpoint runs inside the commit that passes the mark and copies every page of the WAL
 * back into the file; the hot pages (mailbox heads, index leaves) are rewritten by most
 * batches, so checkpointing less often copies each of them once instead of many times.
 * Measured with the durable relay bench on 2 cores: about 1.2× the relayed msg/s of the
 * default. Costs: the `-wal` file grows to about 40 MB between checkpoints (see
 * {@link SQLITE_WAL_SIZE_LIMIT}) and a restart after a crash replays at most that much.
 */
export const SQLITE_WAL_AUTOCHECKPOINT = 10_000;
/** The `-wal` file is truncated back to this size (bytes) after a checkpoint (`journal_size_limit`). */
export const SQLITE_WAL_SIZE_LIMIT = 64 * 1024 * 1024;

/** Migrations: index i brings a file from version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    sdk_app_id INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    head       INTEGER NOT NULL DEFAULT 0,
    acked      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sdk_app_id, user_id)
  ) WITHOUT ROWID;
  CREATE TABLE messages (
    id            TEXT    NOT NULL PRIMARY KEY,
    sdk_app_id    INTEGER NOT NULL,
    from_user     TEXT    NOT NULL,
    to_user       TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    time          INTEGER NOT NULL,
    from_seq      INTEGER NOT NULL,
    to_seq        INTEGER NOT NULL,
    UNIQUE (sdk_app_id, from_user, client_msg_id)
  );
  CREATE TABLE mailbox (
    sdk_app_id INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    message_id TEXT    NOT NULL REFERENCES messages (id),
    flow       TEXT    NOT NULL CHECK (flow IN ('in', 'out')),
    PRIMARY KEY (sdk_app_id, user_id, seq)
  ) WITHOUT ROWID;
  `,
  // 2: quota and retention (docs/operations.md "Limits and abuse"): each mailbox's entry
  // count and text bytes, each message's text bytes, and the indexes that find old
  // messages and a message's entries without scanning.
  `
  ALTER TABLE users ADD COLUMN entries INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE users ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE messages ADD COLUMN text_bytes INTEGER NOT NULL DEFAULT 0;
  UPDATE messages SET text_bytes = length(CAST(text AS BLOB));
  UPDATE users SET
    entries = (SELECT count(*) FROM mailbox b WHERE b.sdk_app_id = users.sdk_app_id AND b.user_id = users.user_id),
    bytes = (SELECT coalesce(sum(m.text_bytes), 0) FROM mailbox b JOIN messages m ON m.id = b.message_id
             WHERE b.sdk_app_id = users.sdk_app_id AND b.user_id = users.user_id);
  CREATE INDEX messages_by_time ON messages (time);
  CREATE INDEX mailbox_by_message ON mailbox (message_id);
  `,
  // 3: conversations and read markers (store-sqlite-conversations.ts).
  SQLITE_CONVERSATIONS_MIGRATION,
];

/**
 * Open (creating the file and its folder if needed) and migrate. Fails when another
 * process holds the file, or when the file was written by a newer tabchat.
 * @param path - file path; `:memory:` gives a private in-memory database (tests)
 */
export function openSqliteFile(path: string): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: 2000 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma(`wal_autocheckpoint = ${SQLITE_WAL_AUTOCHECKPOINT}`);
    db.pragma(`journal_size_limit = ${SQLITE_WAL_SIZE_LIMIT}`);
    db.pragma('foreign_keys = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new Error(`${path} has schema version ${version}; this tabchat understands up to ${SQLITE_SCHEMA_VERSION} (upgrade tabchat)`);
    }
    // Takes the exclusive lock now, so a file held by another server fails here.
    db.transaction(() => {
      for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
    }).immediate();
  } catch (err) {
    db.close();
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot open the sqlite store ${path}: ${/locked|busy/i.test(message) ? 'the file is in use by another process (one server per file)' : message}`);
  }
  return db;
}
