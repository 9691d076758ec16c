/**
 * UserSig in the TLSSigAPIv2 format (docs/reference-behaviour.md): zlib-deflated JSON, base64 with the URL-safe
 * substitutions `+`→`*`, `/`→`-`, `=`→`_`, signed with HMAC-SHA256 over four text lines.
 * Compatible with every official TLSSigAPIv2 generator (node, python, go, java, c++).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { deflateSync, inflateSync, type ZlibOptions } from 'node:zlib';
import { CODE } from '../src/protocol/codes.js';

/** Default validity of a generated UserSig: 180 days, as the official generators. */
export const DEFAULT_EXPIRE_SECONDS = 180 * 24 * 3600;
/** Inflated JSON larger than this is refused as unparsable (zip-bomb guard). */
const MAX_INFLATED_BYTES = 16 * 1024;

export interface UserSigFields {
  identifier: string;
  sdkappid: number;
  /** Issue time, whole seconds since epoch. */
  time: number;
  /** Validity in seconds, relative to `time`. */
  expire: number;
  /** Raw userbuf bytes, if the UserSig carries one (TRTC only). */
  userbuf?: Buffer;
  /** The base64 HMAC as found in the UserSig. */
  sig: string;
}

export interface GenerateOptions {
  sdkAppId: number;
  key: string;
  identifier: string;
  /** Validity in seconds; default 180 days. */
  expire?: number;
  /** Issue time in whole seconds; default now. */
  time?: number;
  userbuf?: Buffer;
}

/** The four (or five) lines that are signed. */
export function signedContent(f: { identifier: string; sdkappid: number; time: number; expire: number; userbuf?: Buffer | undefined }): string {
  let content =
    `TLS.identifier:${f.identifier}\n` +
    `TLS.sdkappid:${f.sdkappid}\n` +
    `TLS.time:${f.time}\n` +
    `TLS.expire:${f.expire}\n`;
  if (f.userbuf) content += `TLS.userbuf:${f.userbuf.toString('base64')}\n`;
  return content;
}

/** base64(HMAC-SHA256(key, content)); the key is used as raw UTF-8 bytes, not hex-decoded. */
export function hmacBase64(key: string, content: string): string {
  return createHmac('sha256', key).update(content, 'utf8').digest('base64');
}

function base64UrlEncode(buf: Buffer): string {
  return buf.toString('base64').replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}

/** Generate a UserSig (same output shape as the official node generator). */
export function generateUserSig(opts: GenerateOptions): string {
  const time = opts.time ?? Math.floor(Date.now() / 1000);
  const expire = opts.expire ?? DEFAULT_EXPIRE_SECONDS;
  const fields = { identifier: opts.identifier, sdkappid: opts.sdkAppId, time, expire, userbuf: opts.userbuf };
  const doc: Record<string, unknown> = {
    'TLS.ver': '2.0',
    'TLS.identifier': opts.identifier,
    'TLS.sdkappid': opts.sdkAppId,
    'TLS.time': time,
    'TLS.expire': expire,
  };
  if (opts.userbuf) doc['TLS.userbuf'] = opts.userbuf.toString('base64');
  doc['TLS.sig'] = hmacBase64(opts.key, signedContent(fields));
  return base64UrlEncode(deflateSync(Buffer.from(JSON.stringify(doc), 'utf8')));
}

export class UserSigError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'UserSigError';
  }
}

/** Base64 with the substitutions; padding (`_`) only at the end, as every generator emits it. */
const USERSIG_ALPHABET = /^[A-Za-z0-9*\-]+_{0,2}$/;

/**
 * Decode a UserSig without checking its signature. Throws {@link UserSigError} with 70003
 * (or 70002 when empty) for anything that is not a TLSSigAPIv2 document.
 */
export function decodeUserSig(userSig: string): UserSigFields {
  if (userSig.length === 0) throw new UserSigError(CODE.USERSIG_EMPTY, 'UserSig is empty');
  if (!USERSIG_ALPHABET.test(userSig)) throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig has characters outside its alphabet');
  const b64 = userSig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
  const compressed = Buffer.from(b64, 'base64');
  let json: string;
  let consumed: number;
  try {
    // `info: true` also returns the engine, whose bytesWritten tells how much input zlib used.
    const out = inflateSync(compressed, { maxOutputLength: MAX_INFLATED_BYTES, info: true } as ZlibOptions) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    json = out.buffer.toString('utf8');
    consumed = out.engine.bytesWritten;
  } catch {
    throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig is not zlib data (truncated?)');
  }
  // zlib stops at the end of its stream and ignores what follows: refuse junk after it.
  if (consumed !== compressed.length) throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig has data after its zlib stream');
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig does not contain JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig does not contain a JSON object');
  }
  const d = doc as Record<string, unknown>;
  const identifier = d['TLS.identifier'];
  const sdkappid = d['TLS.sdkappid'];
  const time = d['TLS.time'];
  const expire = d['TLS.expire'];
  const sig = d['TLS.sig'];
  const userbuf = d['TLS.userbuf'];
  const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (d['TLS.ver'] !== '2.0') throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig TLS.ver is not "2.0"');
  if (typeof identifier !== 'string' || !isUint(sdkappid) || !isUint(time) || !isUint(expire) || typeof sig !== 'string') {
    throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig lacks a required TLS field');
  }
  if (userbuf !== undefined && typeof userbuf !== 'string') {
    throw new UserSigError(CODE.USERSIG_UNPARSABLE, 'UserSig TLS.userbuf is not a string');
  }
  const fields: UserSigFields = { identifier, sdkappid, time, expire, sig };
  if (typeof userbuf === 'string') fields.userbuf = Buffer.from(userbuf, 'base64');
  return fields;
}

export interface VerifyOptions {
  sdkAppId: number;
  key: string;
  userID: string;
  /** Current time in ms; default Date.now(). */
  now?: number;
}

/**
 * Verify a UserSig for (sdkAppId, userID). Returns the decoded fields; throws
 * {@link UserSigError} with 70003 / 70014 / 70013 / 70009 / 70001.
 *
 * The signature is checked before expiry so that a forged UserSig never learns more than
 * "bad signature"; the HMAC comparison is constant-time.
 */
export function verifyUserSig(userSig: string, opts: VerifyOptions): UserSigFields {
  const fields = decodeUserSig(userSig);
  if (fields.sdkappid !== opts.sdkAppId) {
    throw new UserSigError(CODE.USERSIG_SDKAPPID_MISMATCH, `UserSig was issued for another SDKAppID (${fields.sdkappid})`);
  }
  if (fields.identifier !== opts.userID) {
    throw new UserSigError(CODE.USERSIG_USERID_MISMATCH, 'UserSig was issued for another userID');
  }
  const expected = Buffer.from(hmacBase64(opts.key, signedContent(fields)), 'utf8');
  const given = Buffer.from(fields.sig, 'utf8');
  // timingSafeEqual needs equal lengths; compare against a same-length buffer so the
  // time taken does not depend on where the first difference is.
  const same = given.length === expected.length ? timingSafeEqual(given, expected) : (timingSafeEqual(expected, expected), false);
  if (!same) throw new UserSigError(CODE.USERSIG_BAD_SIGNATURE, 'UserSig signature does not verify');
  const nowSec = Math.floor((opts.now ?? Date.now()) / 1000);
  if (nowSec > fields.time + fields.expire) throw new UserSigError(CODE.USERSIG_EXPIRED, 'UserSig expired');
  return fields;
}

/** When a verified UserSig stops being valid, in ms since epoch. */
export function userSigExpiresAt(fields: Pick<UserSigFields, 'time' | 'expire'>): number {
  return (fields.time + fields.expire + 1) * 1000;
}
