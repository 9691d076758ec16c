/**
 * What the Redis engine keeps in Redis: the key and channel names under config
 * `redisPrefix` (P), and the shapes of the values stored there. The keys of one user are
 * described with the scripts that change them (redis-scripts.ts).
 *
 * - `P{<sdkAppId>:<encoded userID>}:i|u|k`: the user's instances, revocation and login
 *   order, kick tombstones (one hash slot per user, for Redis Cluster).
 * - `P iid:<instId>`: which app and user an instance id belongs to (claimed at login, so
 *   ids are unique cluster-wide; kept as a tombstone after a kick).
 * - `P ni:<nodeKey>`: the node's index set, one {@link NodeIndexEntry} per instance it
 *   owns (what the reaper of a dead node walks).
 * - `P node:<nodeKey>`: the node's liveness key (its stats, with a TTL); also the name of
 *   its PUB/SUB channel. `P nodes`: every node that may still own instances.
 * - `P all`: the channel every node listens to (login settings).
 * - `P settings:<sdkAppId>`: the app's cluster-wide login settings.
 * - `P epoch`: a random value; a different one after a reconnect means Redis lost its data.
 * - `P reap:<nodeKey>`: lock of the one node that reaps a dead node (its value becomes
 *   `done` when the reap is over).
 * - `P reaped:<nodeKey>`: set by the reaper before it releases anything; a node that finds
 *   it on its own heartbeat was taken for dead and reconciles, then deletes it.
 */
import { isPlatform, type Platform } from '../src/protocol/frames.js';
import type { Instance } from './registry.js';

/** The three keys of one user (the `KEYS` of most scripts). */
export interface UserKeys {
  /** HASH instId → {@link InstanceHashEntry} JSON. */
  instances: string;
  /** HASH `rb` (UserSigs issued before this second are revoked), `lo` (last login order). */
  user: string;
  /** HASH instId → kick tombstone `{k, x}` (kick type, expiry in ms). */
  tombstones: string;
}

/**
 * The JSON value of one instance in its user's instance hash, as the Lua scripts write it
 * (short field names: it is stored once per instance and parsed by every script).
 */
export interface InstanceHashEntry {
  /** Platform. */
  p: string;
  /** Node key of the owning node. */
  n: string;
  /** Login order (per-user counter; smaller = older). */
  o: number;
  /** UserSig expiry, ms since epoch. */
  e: number;
  /** Login time, ms since epoch. */
  l: number;
  /** SHA-256 (hex) of the resume token. */
  t: string;
  /** 1 while a connection holds it, 0 inside its resume window. */
  c: number;
  /** Generation: bumped by every resume; releases and detaches name it. */
  g: number;
}

/** One member of a node's index set: an instance the node owns. */
export interface NodeIndexEntry {
  a: number;
  u: string;
  id: string;
}

/** Upper bound of the instance-id key's TTL (before the tombstone time is added). */
const MAX_INSTANCE_ID_TTL_MS = 400 * 86_400_000;

/** TTL of an instance id's key: until its UserSig expires (at most 400 days), plus the tombstone time. */
export function instanceIdTtlMs(expireAt: number, tombstoneTtlMs: number): number {
  return Math.min(Math.max(expireAt - Date.now(), 0), MAX_INSTANCE_ID_TTL_MS) + tombstoneTtlMs;
}

/** An instance this node holds (attached, or inside its resume window): the local copy. */
export interface ClusterInstance extends Instance {
  /** Generation in Redis: bumped by every resume; releases and detaches name it. */
  gen: number;
  tokenHash: string;
}

/** The hash entry that registers `inst` as owned by node `nodeKey`. */
export function toHashEntry(inst: ClusterInstance, nodeKey: string): InstanceHashEntry {
  return {
    p: inst.platform,
    n: nodeKey,
    o: inst.loginSeq,
    e: inst.expireAt,
    l: inst.loginAt,
    t: inst.tokenHash,
    c: inst.owner ? 1 : 0,
    g: inst.gen,
  };
}

/** The platform of a hash entry (`Web` for a value this version does not know). */
export function entryPlatform(entry: InstanceHashEntry): Platform {
  return isPlatform(entry.p) ? entry.p : 'Web';
}

/** Key and channel names under one prefix. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** The keys of one user, in one hash slot. */
  user(sdkAppId: number, userID: string): UserKeys {
    const tag = `${this.prefix}{${sdkAppId}:${encodeURIComponent(userID)}}`;
    return { instances: `${tag}:i`, user: `${tag}:u`, tombstones: `${tag}:k` };
  }

  /** App and user of an instance id (JSON `{a, u}`). */
  instanceId(instId: number | string): string {
    return `${this.prefix}iid:${instId}`;
  }

  /** The index set of a node's instances. */
  nodeIndex(nodeKey: string): string {
    return `${this.prefix}ni:${nodeKey}`;
  }

  /** A node's liveness key (its stats, PX nodeTimeoutMs). */
  nodeLiveness(nodeKey: string): string {
    return `${this.prefix}node:${nodeKey}`;
  }

  /** The set of nodes that may still own instances. */
  get nodes(): string {
    return `${this.prefix}nodes`;
  }

  /** Prefix of the node channels: a node listens to `<this><nodeKey>`; the scripts publish there. */
  get nodeChannelPrefix(): string {
    return `${this.prefix}node:`;
  }

  /** The channel every node listens to. */
  get broadcastChannel(): string {
    return `${this.prefix}all`;
  }

  settings(sdkAppId: number): string {
    return `${this.prefix}settings:${sdkAppId}`;
  }

  get epoch(): string {
    return `${this.prefix}epoch`;
  }

  reapLock(nodeKey: string): string {
    return `${this.prefix}reap:${nodeKey}`;
  }

  reapedMarker(nodeKey: string): string {
    return `${this.prefix}reaped:${nodeKey}`;
  }

  /** Member of a node's index set for one instance. */
  indexEntry(sdkAppId: number, userID: string, instId: number | string): string {
    const entry: NodeIndexEntry = { a: sdkAppId, u: userID, id: String(instId) };
    return JSON.stringify(entry);
  }
}

/** A member of a node's index set, or undefined when it does not parse. */
export function parseIndexEntry(member: string): NodeIndexEntry | undefined {
  try {
    return JSON.parse(member) as NodeIndexEntry;
  } catch {
    return undefined;
  }
}
