/**
 * Small helpers shared by the server test files (not a test file itself).
 */
import { request } from 'node:http';
import type { TestServer } from '../helpers/server.js';
import type { ServerFrame } from '../../src/protocol/frames.js';

/** GET /metrics as text. */
export async function getMetrics(httpUrl: string): Promise<string> {
  const res = await fetch(`${httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/**
 * Value of one Prometheus sample whose labels include `labels` (label order irrelevant).
 * Undefined when no such sample exists.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map<string, string>();
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got.set(pair[1]!, pair[2]!);
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) return Number(m[4]);
  }
  return undefined;
}

export interface DetailEntry {
  Platform: string;
  Status: string;
  InstId: number;
  [k: string]: unknown;
}

/** The user's online Detail entries (empty when offline), via REST query_online_status. */
export async function onlineDetail(ts: TestServer, userID: string): Promise<DetailEntry[]> {
  const r = await ts.rest('openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
  if (r.ErrorCode !== 0) throw new Error(`query_online_status failed: ${JSON.stringify(r)}`);
  const entry = r.QueryResult[0];
  if (entry.Status === 'Offline') return [];
  return entry.Detail as DetailEntry[];
}

/** Sorted instIds the server reports online for the user. */
export async function onlineIds(ts: TestServer, userID: string): Promise<number[]> {
  return (await onlineDetail(ts, userID)).map((d) => d.InstId).sort((a, b) => a - b);
}

/** A raw HTTP request (no URL normalisation, unlike fetch). */
export function rawHttp(httpUrl: string, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const u = new URL(httpUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Frames of one type. */
export function framesOf<T extends ServerFrame['type']>(frames: ServerFrame[], type: T): Array<Extract<ServerFrame, { type: T }>> {
  return frames.filter((f) => f.type === type) as Array<Extract<ServerFrame, { type: T }>>;
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);
