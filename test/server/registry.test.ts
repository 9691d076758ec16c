/**
 * Registry unit tests: the login-policy table over the 7 platforms, the per-platform limit
 * (oldest first), resume order, REST revocation and tombstones. No sockets: owners are
 * recording fakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PLATFORMS, type KickType, type Platform } from '../../src/protocol/frames.js';
import type { AppConfig, LoginPolicy } from '../../server/config.js';
import { Registry, policyConflicts, type InstanceOwner } from '../../server/registry.js';
import { until } from '../helpers/raw-client.js';

/**
 * Expected conflicts, written out by hand from the login policies of docs/reference-behaviour.md
 * and docs/protocol.md (not derived from the implementation). Row = incoming login's platform,
 * column = existing instance's platform, in PLATFORMS order: Web Android iPhone iPad Windows
 * Mac Linux. "x" = kicked.
 */
const TABLE: Record<LoginPolicy, string[]> = {
  multi: [
    '. . . . . . .', // Web
    '. . . . . . .', // Android
    '. . . . . . .', // iPhone
    '. . . . . . .', // iPad
    '. . . . . . .', // Windows
    '. . . . . . .', // Mac
    '. . . . . . .', // Linux
  ],
  single: [
    '. x x x x x x',
    'x . x x x x x',
    'x x . x x x x',
    'x x x . x x x',
    'x x x x . x x',
    'x x x x x . x',
    'x x x x x x .',
  ],
  dual: [
    '. . . . . . .', // Web coexists with everything
    '. . x x x x x',
    '. x . x x x x',
    '. x x . x x x',
    '. x x x . x x',
    '. x x x x . x',
    '. x x x x x .',
  ],
  triple: [
    '. . . . . . .',
    '. . x x . . .', // mobile kicks mobile
    '. x . x . . .',
    '. x x . . . .',
    '. . . . . x x', // desktop kicks desktop
    '. . . . x . x',
    '. . . . x x .',
  ],
};

test('policyConflicts: the full table for single / dual / triple / multi over the 7 platforms', () => {
  assert.deepEqual([...PLATFORMS], ['Web', 'Android', 'iPhone', 'iPad', 'Windows', 'Mac', 'Linux']);
  for (const policy of Object.keys(TABLE) as LoginPolicy[]) {
    const rows = TABLE[policy];
    assert.equal(rows.length, 7);
    PLATFORMS.forEach((incoming, r) => {
      const cells = rows[r]!.split(' ');
      assert.equal(cells.length, 7);
      PLATFORMS.forEach((existing, c) => {
        assert.equal(policyConflicts(policy, incoming, existing), cells[c] === 'x', `${policy}: ${incoming} login vs existing ${existing}`);
      });
    });
  }
});

class FakeOwner implements InstanceOwner {
  readonly kicks: Array<{ instId: number; type: KickType }> = [];
  readonly forgotten: number[] = [];
  constructor(readonly name: string) {}
  deliverKick(instId: number, type: KickType): void {
    this.kicks.push({ instId, type });
  }
  forget(instId: number): void {
    this.forgotten.push(instId);
  }
}

function app(over: Partial<AppConfig> = {}): AppConfig {
  return {
    sdkAppId: 1400000001,
    secretKey: 'k',
    adminIdentifier: 'administrator',
    maxInstancesPerPlatform: 1,
    loginPolicy: 'multi',
    allowedOrigins: ['*'],
    enabled: true,
    ...over,
  };
}
const FAR = Date.now() + 3_600_000;

test('limit 2: a3 kicks a1 (the oldest) with multipleAccount; a2 untouched; returned kicks match', () => {
  const reg = new Registry(10_000);
  const a = app({ maxInstancesPerPlatform: 2 });
  const [o1, o2, o3] = [new FakeOwner('1'), new FakeOwner('2'), new FakeOwner('3')];
  const a1 = reg.login(a, 'alice', 'Web', FAR, o1);
  const a2 = reg.login(a, 'alice', 'Web', FAR, o2);
  assert.deepEqual([a1.kicked, a2.kicked], [[], []]);
  const a3 = reg.login(a, 'alice', 'Web', FAR, o3);
  assert.deepEqual(a3.kicked, [{ instId: a1.inst.instId, type: 'multipleAccount' }]);
  assert.deepEqual(o1.kicks, [{ instId: a1.inst.instId, type: 'multipleAccount' }]);
  assert.deepEqual([o2.kicks, o3.kicks], [[], []]);
  assert.deepEqual(reg.instancesOf(a.sdkAppId, 'alice').map((i) => i.instId), [a2.inst.instId, a3.inst.instId]);
  assert.equal(reg.get(a1.inst.instId), undefined);
  // Another user and another platform are separate.
  reg.login(a, 'bob', 'Web', FAR, o1);
  reg.login(a, 'alice', 'Android', FAR, o1);
  assert.equal(reg.size, 4);
  assert.deepEqual(reg.countByPlatform(), new Map<Platform, number>([['Web', 3], ['Android', 1]]));
});

test('login order numbers each user\'s logins 1, 2, 3 …, also across a kick of the last instance; restarts once the user has none', () => {
  const reg = new Registry(10_000);
  const a = app({ maxInstancesPerPlatform: 1 });
  const [o1, o2, o3] = [new FakeOwner('1'), new FakeOwner('2'), new FakeOwner('3')];
  const a1 = reg.login(a, 'alice', 'Web', FAR, o1);
  const b1 = reg.login(a, 'bob', 'Web', FAR, o1);
  const a2 = reg.login(a, 'alice', 'Web', FAR, o2); // kicks a1, the user's only instance
  assert.deepEqual(a2.kicked, [{ instId: a1.inst.instId, type: 'multipleAccount' }]);
  const a3 = reg.login(a, 'alice', 'Android', FAR, o3);
  assert.deepEqual([a1.inst.loginSeq, a2.inst.loginSeq, a3.inst.loginSeq, b1.inst.loginSeq], [1, 2, 3, 1]);
  assert.equal(reg.logout(a2.inst.instId, o2), true);
  assert.equal(reg.logout(a3.inst.instId, o3), true);
  assert.equal(reg.login(a, 'alice', 'Web', FAR, o1).inst.loginSeq, 1, 'numbering restarts once alice had no instance');
});

test('limit 3 with a lowered setting: one login kicks as many oldest instances as needed', () => {
  const reg = new Registry(10_000);
  const a = app({ maxInstancesPerPlatform: 3 });
  const owner = new FakeOwner('o');
  const ids = [1, 2, 3].map(() => reg.login(a, 'u', 'Android', FAR, owner).inst.instId);
  a.maxInstancesPerPlatform = 1;
  const next = reg.login(a, 'u', 'Android', FAR, owner);
  assert.deepEqual(next.kicked, ids.map((instId) => ({ instId, type: 'multipleAccount' })));
  assert.deepEqual(reg.instancesOf(a.sdkAppId, 'u').map((i) => i.instId), [next.inst.instId]);
});

test('policy kicks come before the limit, and both are reported', () => {
  const reg = new Registry(10_000);
  const a = app({ loginPolicy: 'single' });
  const o = new FakeOwner('o');
  const web = reg.login(a, 'u', 'Web', FAR, o).inst;
  const mac = reg.login(a, 'u', 'Mac', FAR, o);
  assert.deepEqual(mac.kicked, [{ instId: web.instId, type: 'multipleDevice' }]);
  const mac2 = reg.login(a, 'u', 'Mac', FAR, o);
  assert.deepEqual(mac2.kicked, [{ instId: mac.inst.instId, type: 'multipleAccount' }]);
});

test('resume keeps login order: the resumed oldest instance is still kicked first', () => {
  const reg = new Registry(10_000);
  const a = app({ maxInstancesPerPlatform: 2 });
  const [o1, o2, o3, o4] = [new FakeOwner('1'), new FakeOwner('2'), new FakeOwner('3'), new FakeOwner('4')];
  const a1 = reg.login(a, 'alice', 'Web', FAR, o1).inst;
  const a2 = reg.login(a, 'alice', 'Web', FAR, o2).inst;
  reg.detachOwner(o1, [a1.instId]);
  assert.equal(reg.get(a1.instId)?.owner, null);
  const resumed = reg.resume(a1.instId, a1.token, o4);
  assert.ok(resumed.ok);
  assert.equal(reg.get(a1.instId)?.owner, o4);
  assert.equal(reg.get(a1.instId)?.detachTimer, null, 'detach timer cleared');
  const a3 = reg.login(a, 'alice', 'Web', FAR, o3);
  assert.deepEqual(a3.kicked, [{ instId: a1.instId, type: 'multipleAccount' }]);
  assert.deepEqual(o4.kicks, [{ instId: a1.instId, type: 'multipleAccount' }], 'kick goes to the new owner');
  assert.deepEqual(o1.kicks, []);
  assert.ok(reg.get(a2.instId));
});

test('resume: wrong token fails without a kick type; a resume from another owner makes the old one forget', () => {
  const reg = new Registry(10_000);
  const a = app();
  const [o1, o2] = [new FakeOwner('1'), new FakeOwner('2')];
  const inst = reg.login(a, 'u', 'Web', FAR, o1).inst;
  assert.deepEqual(reg.resume(inst.instId, inst.token + 'x', o2), { ok: false });
  assert.deepEqual(reg.resume(inst.instId, 'short', o2), { ok: false });
  assert.deepEqual(reg.resume(999_999, inst.token, o2), { ok: false });
  const ok = reg.resume(inst.instId, inst.token, o2);
  assert.ok(ok.ok);
  assert.deepEqual(o1.forgotten, [inst.instId]);
  assert.equal(reg.logout(inst.instId, o1), false, 'old owner no longer holds it');
  assert.equal(reg.logout(inst.instId, o2), true);
  assert.equal(reg.size, 0);
});

test('a kicked instance leaves a tombstone that resume reports; a released one does not', async () => {
  const reg = new Registry(50);
  const a = app();
  const [o1, o2] = [new FakeOwner('1'), new FakeOwner('2')];
  const first = reg.login(a, 'u', 'Web', FAR, o1).inst;
  reg.detachOwner(o1, [first.instId]);
  reg.login(a, 'u', 'Web', FAR, o2);
  assert.deepEqual(o1.kicks, [], 'a detached instance gets no delivery');
  assert.deepEqual(reg.resume(first.instId, first.token, o1), { ok: false, kickType: 'multipleAccount' });
  // Released by the resume window: plain failure.
  const other = reg.login(a, 'v', 'Web', FAR, o1).inst;
  reg.detachOwner(o1, [other.instId]);
  await until(() => reg.get(other.instId) === undefined, 2000, 'resume window release');
  assert.deepEqual(reg.resume(other.instId, other.token, o2), { ok: false });
});

test('kickUser kicks every instance with REST_API_Kick and revokes UserSigs issued strictly before the kick second', () => {
  let now = 1_700_000_000_500;
  const reg = new Registry(10_000, {}, () => now);
  const a = app({ maxInstancesPerPlatform: 5 });
  const [o1, o2] = [new FakeOwner('1'), new FakeOwner('2')];
  const i1 = reg.login(a, 'u', 'Web', FAR, o1).inst;
  const i2 = reg.login(a, 'u', 'Android', FAR, o2).inst;
  const bob = reg.login(a, 'bob', 'Web', FAR, o2).inst;
  assert.equal(reg.isRevoked(a.sdkAppId, 'u', 0), false);
  const kicked = reg.kickUser(a.sdkAppId, 'u', 'REST_API_Kick');
  assert.deepEqual(kicked, [{ instId: i1.instId, type: 'REST_API_Kick' }, { instId: i2.instId, type: 'REST_API_Kick' }]);
  assert.deepEqual(o1.kicks, [{ instId: i1.instId, type: 'REST_API_Kick' }]);
  assert.deepEqual(o2.kicks, [{ instId: i2.instId, type: 'REST_API_Kick' }]);
  assert.ok(reg.get(bob.instId), 'other users stay');
  assert.equal(reg.isRevoked(a.sdkAppId, 'u', 1_699_999_999), true);
  assert.equal(reg.isRevoked(a.sdkAppId, 'u', 1_700_000_000), false, 'same second is not strictly earlier');
  assert.equal(reg.isRevoked(a.sdkAppId, 'bob', 1), false);
  assert.equal(reg.isRevoked(a.sdkAppId + 1, 'u', 1), false);
  now += 5000;
  assert.deepEqual(reg.kickUser(a.sdkAppId, 'nobody', 'REST_API_Kick'), []);
});

test('an already expired instance is kicked with userSigExpired right after login', async () => {
  const reg = new Registry(10_000);
  const o = new FakeOwner('o');
  const inst = reg.login(app(), 'u', 'Web', Date.now() - 1, o).inst;
  await until(() => o.kicks.length > 0, 2000, 'expiry kick');
  assert.deepEqual(o.kicks, [{ instId: inst.instId, type: 'userSigExpired' }]);
  assert.equal(reg.size, 0);
});

test('clear() releases everything', () => {
  const released: string[] = [];
  const reg = new Registry(10_000, { onRelease: (_i, why) => released.push(why) });
  const o = new FakeOwner('o');
  reg.login(app(), 'u', 'Web', FAR, o);
  reg.login(app(), 'v', 'Web', FAR, o);
  reg.clear();
  assert.equal(reg.size, 0);
  assert.deepEqual(released, ['shutdown', 'shutdown']);
  assert.deepEqual(o.kicks, []);
});
