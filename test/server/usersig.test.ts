/**
 * UserSig (TLSSigAPIv2): the reference SDK's published test vector, generate → verify, and every
 * failure code. Pure functions, no server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, inflateSync } from 'node:zlib';
import { CODE } from '../../src/protocol/codes.js';
import {
  DEFAULT_EXPIRE_SECONDS,
  UserSigError,
  decodeUserSig,
  generateUserSig,
  hmacBase64,
  signedContent,
  userSigExpiresAt,
  verifyUserSig,
} from '../../server/usersig.js';

// ---- the reference test vector (tencent-chat-reference.md §4) ----
const V = {
  sdkappid: 1400000000,
  key: '5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e',
  identifier: 'xiaojun',
  time: 1700000000,
  expire: 15552000,
  content: 'TLS.identifier:xiaojun\nTLS.sdkappid:1400000000\nTLS.time:1700000000\nTLS.expire:15552000\n',
  sig: 'LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4=',
  sigWithUserbuf: 'QjT201xPkXk/aM1e+y0vakZb0K2iPrFue++0s5y6bFM=',
  fullUserSig:
    'eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSCgswUJStDEwMogMikVhRkFqUCxU1NTY3goiWZuSAxc1S1xZnpQJN9yhzNU-Q9y83Tg4vzirPLwqqcXAL8nZ1dkkr9nMtN3D3KQ5wNkjILtJ1MbJVqAa3HMfI_',
} as const;

/** Encode a document the way any TLSSigAPIv2 generator does (zlib, base64, substitutions). */
function encodeDoc(doc: unknown, level = 6): string {
  const json = typeof doc === 'string' ? doc : JSON.stringify(doc);
  return encodeBytes(deflateSync(Buffer.from(json, 'utf8'), { level }));
}
function encodeBytes(bytes: Buffer): string {
  return bytes.toString('base64').replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}
/** The JSON document inside a UserSig. */
function docOf(userSig: string): Record<string, unknown> {
  const b64 = userSig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
  return JSON.parse(inflateSync(Buffer.from(b64, 'base64')).toString('utf8')) as Record<string, unknown>;
}
/** A valid document for the vector, in python field order. */
function vectorDoc(): Record<string, unknown> {
  return {
    'TLS.ver': '2.0',
    'TLS.identifier': V.identifier,
    'TLS.sdkappid': V.sdkappid,
    'TLS.expire': V.expire,
    'TLS.time': V.time,
    'TLS.sig': V.sig,
  };
}
const AT_VECTOR_TIME = V.time * 1000 + 500;
const verifyVector = (userSig: string, over: Partial<{ sdkAppId: number; key: string; userID: string; now: number }> = {}) =>
  verifyUserSig(userSig, { sdkAppId: V.sdkappid, key: V.key, userID: V.identifier, now: AT_VECTOR_TIME, ...over });

/** Assert that `fn` throws a UserSigError with `code`. */
function throwsCode(fn: () => unknown, code: number, what: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof UserSigError, `${what}: expected a UserSigError, got ${String(err)}`);
      assert.equal(err.code, code, `${what}: code (message: ${err.message})`);
      return true;
    },
    what,
  );
}

test('test vector: the signed content and both HMACs (without and with userbuf)', () => {
  const fields = { identifier: V.identifier, sdkappid: V.sdkappid, time: V.time, expire: V.expire };
  assert.equal(signedContent(fields), V.content);
  assert.equal(hmacBase64(V.key, V.content), V.sig);
  const withBuf = signedContent({ ...fields, userbuf: Buffer.from('abc') });
  assert.equal(withBuf, V.content + 'TLS.userbuf:YWJj\n');
  assert.equal(hmacBase64(V.key, withBuf), V.sigWithUserbuf);
});

test('test vector: the given full UserSig decodes to the vector fields', () => {
  const f = decodeUserSig(V.fullUserSig);
  assert.deepEqual(
    { identifier: f.identifier, sdkappid: f.sdkappid, time: f.time, expire: f.expire, sig: f.sig, userbuf: f.userbuf },
    { identifier: V.identifier, sdkappid: V.sdkappid, time: V.time, expire: V.expire, sig: V.sig, userbuf: undefined },
  );
});

test('test vector: the full UserSig verifies at a fixed now, through its last valid second, then 70001', () => {
  assert.equal(verifyVector(V.fullUserSig).identifier, V.identifier);
  const lastSecond = (V.time + V.expire) * 1000;
  assert.equal(verifyVector(V.fullUserSig, { now: lastSecond + 999 }).time, V.time);
  throwsCode(() => verifyVector(V.fullUserSig, { now: lastSecond + 1000 }), CODE.USERSIG_EXPIRED, 'one second after expiry');
  assert.equal(userSigExpiresAt(decodeUserSig(V.fullUserSig)), lastSecond + 1000);
});

test('generateUserSig reproduces the vector (document fields and sig), with and without userbuf', () => {
  const plain = generateUserSig({ sdkAppId: V.sdkappid, key: V.key, identifier: V.identifier, time: V.time, expire: V.expire });
  assert.match(plain, /^[A-Za-z0-9*\-_]+$/, 'UserSig alphabet');
  assert.deepEqual(docOf(plain), { ...vectorDoc() });
  assert.deepEqual(decodeUserSig(plain), decodeUserSig(V.fullUserSig));

  const withBuf = generateUserSig({ sdkAppId: V.sdkappid, key: V.key, identifier: V.identifier, time: V.time, expire: V.expire, userbuf: Buffer.from('abc') });
  const doc = docOf(withBuf);
  assert.equal(doc['TLS.userbuf'], 'YWJj');
  assert.equal(doc['TLS.sig'], V.sigWithUserbuf);
  const f = verifyVector(withBuf);
  assert.equal(f.userbuf?.toString('utf8'), 'abc');
});

test('UserSigs of other generators verify: any field order, whitespace and zlib level', () => {
  // C++ order, pretty-printed, best speed; Go style: no compression at all.
  const cppOrder = JSON.stringify(
    { 'TLS.ver': '2.0', 'TLS.sdkappid': V.sdkappid, 'TLS.identifier': V.identifier, 'TLS.time': V.time, 'TLS.expire': V.expire, 'TLS.sig': V.sig },
    null,
    4,
  );
  assert.equal(verifyVector(encodeDoc(cppOrder, 1)).identifier, V.identifier);
  assert.equal(verifyVector(encodeDoc(vectorDoc(), 0)).identifier, V.identifier);
  assert.equal(verifyVector(encodeDoc(vectorDoc(), 9)).identifier, V.identifier);
});

test('generate → verify round trip with defaults (now, 180 days)', () => {
  const key = 'another key, used as raw bytes';
  const before = Math.floor(Date.now() / 1000);
  const userSig = generateUserSig({ sdkAppId: 1400000123, key, identifier: 'user with spaces ✓' });
  const f = verifyUserSig(userSig, { sdkAppId: 1400000123, key, userID: 'user with spaces ✓' });
  assert.equal(f.expire, DEFAULT_EXPIRE_SECONDS);
  assert.equal(DEFAULT_EXPIRE_SECONDS, 15552000);
  assert.ok(f.time >= before && f.time <= Math.floor(Date.now() / 1000), 'time is now');
  assert.equal(userSigExpiresAt(f), (f.time + f.expire + 1) * 1000);
  assert.equal(userSigExpiresAt({ time: 10, expire: 5 }), 16_000);
});

test('70002: empty UserSig', () => {
  throwsCode(() => decodeUserSig(''), CODE.USERSIG_EMPTY, 'decode empty');
  throwsCode(() => verifyVector(''), CODE.USERSIG_EMPTY, 'verify empty');
});

test('70003: garbage, truncated, bad alphabet, zip bomb, non-JSON, non-object, missing or mistyped fields', () => {
  const cases: Array<[string, string]> = [
    ['plain text with spaces', 'hello world'],
    ['valid alphabet, not zlib', 'abcdefgh'],
    ['truncated', V.fullUserSig.slice(0, V.fullUserSig.length - 12)],
    ['truncated to half', V.fullUserSig.slice(0, V.fullUserSig.length / 2)],
    ['raw base64 "+" (not substituted)', V.fullUserSig.replace(/\*/g, '+').replace(/-/g, '/') + '+'],
    ['raw base64 "/"', 'eJyr/' + V.fullUserSig.slice(5)],
    ['raw base64 "="', V.fullUserSig.replace(/_$/, '=')],
    ['non-ASCII', V.fullUserSig + 'é'],
    ['junk after the padding', V.fullUserSig + 'AAAA'],
    ['text after the padding', V.fullUserSig + 'garbage'],
    ['too much padding', V.fullUserSig + '____'],
    ['padding in the middle', V.fullUserSig.slice(0, 40) + '_' + V.fullUserSig.slice(40)],
    ['junk after the zlib stream', V.fullUserSig.slice(0, -1) + 'AAAA'],
    ['a second UserSig appended', V.fullUserSig.slice(0, -1) + V.fullUserSig],
    ['zip bomb (1 MiB of spaces)', encodeBytes(deflateSync(Buffer.alloc(1 << 20, 0x20), { level: 9 }))],
    ['zip bomb (huge JSON string)', encodeDoc(`{"TLS.ver":"2.0","pad":"${'x'.repeat(1 << 20)}"}`, 9)],
    ['not JSON', encodeDoc('TLS.identifier:xiaojun', 6)],
    ['JSON array', encodeDoc([vectorDoc()])],
    ['JSON null', encodeDoc('null')],
    ['JSON string', encodeDoc('"eJy"')],
    ['empty object', encodeDoc({})],
    ['TLS.ver 1.0', encodeDoc({ ...vectorDoc(), 'TLS.ver': '1.0' })],
    ['TLS.ver as number', encodeDoc({ ...vectorDoc(), 'TLS.ver': 2 })],
    ['sdkappid as string', encodeDoc({ ...vectorDoc(), 'TLS.sdkappid': String(V.sdkappid) })],
    ['time negative', encodeDoc({ ...vectorDoc(), 'TLS.time': -1 })],
    ['time fractional', encodeDoc({ ...vectorDoc(), 'TLS.time': 1700000000.5 })],
    ['expire as string', encodeDoc({ ...vectorDoc(), 'TLS.expire': '15552000' })],
    ['identifier as number', encodeDoc({ ...vectorDoc(), 'TLS.identifier': 7 })],
    ['sig as number', encodeDoc({ ...vectorDoc(), 'TLS.sig': 7 })],
    ['userbuf as number', encodeDoc({ ...vectorDoc(), 'TLS.userbuf': 7 })],
  ];
  for (const field of ['TLS.ver', 'TLS.identifier', 'TLS.sdkappid', 'TLS.time', 'TLS.expire', 'TLS.sig']) {
    const doc = vectorDoc();
    delete doc[field];
    cases.push([`missing ${field}`, encodeDoc(doc)]);
  }
  for (const [what, userSig] of cases) {
    const started = performance.now();
    throwsCode(() => verifyVector(userSig), CODE.USERSIG_UNPARSABLE, what);
    assert.ok(performance.now() - started < 500, `${what}: refused quickly`);
  }
});

test('70014: sdkappid mismatch (checked before the signature)', () => {
  throwsCode(() => verifyVector(V.fullUserSig, { sdkAppId: 1400000001 }), CODE.USERSIG_SDKAPPID_MISMATCH, 'other app');
  throwsCode(() => verifyVector(V.fullUserSig, { sdkAppId: 1400000001, key: 'wrong' }), CODE.USERSIG_SDKAPPID_MISMATCH, 'other app and key');
});

test('70013: userID mismatch (checked before the signature)', () => {
  throwsCode(() => verifyVector(V.fullUserSig, { userID: 'xiaojun2' }), CODE.USERSIG_USERID_MISMATCH, 'other user');
  throwsCode(() => verifyVector(V.fullUserSig, { userID: 'XIAOJUN' }), CODE.USERSIG_USERID_MISMATCH, 'case differs');
  throwsCode(() => verifyVector(V.fullUserSig, { userID: 'xiaojun2', key: 'wrong' }), CODE.USERSIG_USERID_MISMATCH, 'other user and key');
});

test('70009: other key, tampered sig (same and different length), tampered fields, userbuf added', () => {
  throwsCode(() => verifyVector(V.fullUserSig, { key: V.key.toUpperCase() }), CODE.USERSIG_BAD_SIGNATURE, 'other key');
  // The key is raw bytes, not hex: the hex-decoded key must NOT verify.
  throwsCode(
    () => verifyVector(generateUserSig({ sdkAppId: V.sdkappid, key: Buffer.from(V.key, 'hex').toString('latin1'), identifier: V.identifier, time: V.time, expire: V.expire })),
    CODE.USERSIG_BAD_SIGNATURE,
    'hex-decoded key',
  );
  const flipped = V.sig.startsWith('L') ? 'M' + V.sig.slice(1) : 'L' + V.sig.slice(1);
  const tampered: Array<[string, Record<string, unknown>]> = [
    ['sig one char changed', { ...vectorDoc(), 'TLS.sig': flipped }],
    ['sig longer', { ...vectorDoc(), 'TLS.sig': V.sig + 'AAAA' }],
    ['sig shorter', { ...vectorDoc(), 'TLS.sig': V.sig.slice(0, 20) }],
    ['sig empty', { ...vectorDoc(), 'TLS.sig': '' }],
    ['sig of the userbuf variant', { ...vectorDoc(), 'TLS.sig': V.sigWithUserbuf }],
    ['expire extended', { ...vectorDoc(), 'TLS.expire': V.expire + 1 }],
    ['time moved', { ...vectorDoc(), 'TLS.time': V.time + 1 }],
    ['userbuf added', { ...vectorDoc(), 'TLS.userbuf': 'YWJj' }],
  ];
  for (const [what, doc] of tampered) throwsCode(() => verifyVector(encodeDoc(doc)), CODE.USERSIG_BAD_SIGNATURE, what);
});

test('70001: expired (but a bad signature is reported before expiry)', () => {
  const key = 'k';
  const now = Date.now();
  const nowSec = Math.floor(now / 1000);
  const old = generateUserSig({ sdkAppId: 1, key, identifier: 'u', time: nowSec - 100, expire: 10 });
  throwsCode(() => verifyUserSig(old, { sdkAppId: 1, key, userID: 'u', now }), CODE.USERSIG_EXPIRED, 'expired');
  throwsCode(() => verifyUserSig(old, { sdkAppId: 1, key: 'other', userID: 'u', now }), CODE.USERSIG_BAD_SIGNATURE, 'expired and forged');
  // expire 0: valid only within its issue second.
  const zero = generateUserSig({ sdkAppId: 1, key, identifier: 'u', time: nowSec, expire: 0 });
  assert.equal(verifyUserSig(zero, { sdkAppId: 1, key, userID: 'u', now: nowSec * 1000 + 999 }).expire, 0);
  throwsCode(() => verifyUserSig(zero, { sdkAppId: 1, key, userID: 'u', now: nowSec * 1000 + 1000 }), CODE.USERSIG_EXPIRED, 'expire 0, next second');
});
