/** Rows of the two SQL stores (store-sqlite.ts, store-postgres.ts), which name their columns alike. */
import type { MessageFlow } from '../src/protocol/frames.js';
import type { StoredMessage } from './store.js';

/** A message row as both SQL stores name their columns (`messages` joined with a mailbox entry). */
export interface MessageRow {
  id: string;
  sdk_app_id: number;
  from_user: string;
  to_user: string;
  client_msg_id: string;
  text: string;
  time: number;
  from_seq: number;
  to_seq: number;
}
export interface EntryRow extends MessageRow {
  seq: number;
  flow: MessageFlow;
}

/** The {@link StoredMessage} of a row of either SQL store. */
export function toMessage(row: MessageRow): StoredMessage {
  return {
    id: row.id,
    sdkAppId: row.sdk_app_id,
    from: row.from_user,
    to: row.to_user,
    clientMsgId: row.client_msg_id,
    text: row.text,
    time: row.time,
    fromSeq: row.from_seq,
    toSeq: row.to_seq,
  };
}
