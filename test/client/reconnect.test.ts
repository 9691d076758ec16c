/**
 * Connection loss as applications see it: NET_STATE_CHANGE transitions, silent resume
 * inside the resume window, silent re-login after it, and kicks that happened while the
 * connection was down.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, harness, until, type Harness, type Recorder } from './util.js';

function lifecycle(rec: Recorder): string[] {
  return rec.names().filter((n) => n !== EVENT.NET_STATE_CHANGE);
}
function netStates(rec: Recorder): string[] {
  return rec.events.filter((e) => e.name === EVENT.NET_STATE_CHANGE).map((e) => (e.data as { state: string }).state);
}
async function waitNet(rec: Recorder, states: string[]): Promise<void> {
  await until(() => netStates(rec).length >= states.length, 5000, `net states ${states.join(',')}; got ${netStates(rec).join(',')}`);
  assert.deepEqual(netStates(rec), states);
}
/** Wait until every instance of `userID` is attached to a connection again. */
async function allConnected(h: Harness, userID: string, count: number): Promise<Array<{ InstId: number }>> {
  const detail = await until(
    async () => {
      const detail = await h.online(userID);
      return detail.length === count && detail.every((d) => d.Connected) ? detail : null;
    },
    5000,
    `${count} connected instances of ${userID}`,
  );
  return detail!; // until() only returns a truthy value
}

describe('NET_STATE_CHANGE', () => {
  test('reports transitions only: connecting, connected, (drop) connecting, connected, (logout) disconnected', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    await chat.login({ userID: 'alice', userSig: h.server.sig('alice') });
    await waitNet(rec, ['connecting', 'connected']);
    h.server.dropConnections();
    await waitNet(rec, ['connecting', 'connected', 'connecting', 'connected']);
    await chat.logout();
    await waitNet(rec, ['connecting', 'connected', 'connecting', 'connected', 'disconnected']);
  });

  test('a kick of the last instance closes the socket: KICKED_OUT, SDK_NOT_READY, then disconnected', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    await chat.login({ userID: 'alice', userSig: h.server.sig('alice') });
    await waitNet(rec, ['connecting', 'connected']);
    await h.server.rest('im_open_login_svc/kick', { UserID: 'alice' });
    await waitNet(rec, ['connecting', 'connected', 'disconnected']);
    assert.deepEqual(rec.names().filter((n) => n !== EVENT.SDK_READY), [
      EVENT.NET_STATE_CHANGE,
      EVENT.NET_STATE_CHANGE,
      EVENT.KICKED_OUT,
      EVENT.SDK_NOT_READY,
      EVENT.NET_STATE_CHANGE,
    ]);
    await until(() => h.server.server.context.connections.size === 0, 5000, 'the server holds no connection');
  });
});

describe('resume', () => {
  test('within the window: silent, same instances, nobody kicked', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    a1.rec.clear();
    a2.rec.clear();
    h.server.dropConnections();
    await waitNet(a1.rec, ['connecting', 'connected']);
    await waitNet(a2.rec, ['connecting', 'connected']);
    const detail = await allConnected(h, 'alice', 2);
    assert.deepEqual(detail.map((d) => d.InstId).sort(), [a1.instanceID, a2.instanceID].sort());
    assert.deepEqual(lifecycle(a1.rec), []);
    assert.deepEqual(lifecycle(a2.rec), []);
    assert.equal(a1.chat.isReady(), true);
    assert.equal(a2.chat.isReady(), true);
    assert.equal(typeof a1.chat.getServerTime(), 'number');
  });

  test('after the window: a silent re-login with the stored UserSig (new instance id, no events)', async (t) => {
    const h = await harness(t, {}, { resumeWindowMs: 100 });
    const a1 = await h.ready('alice');
    a1.rec.clear();
    h.server.dropConnections();
    await waitNet(a1.rec, ['connecting', 'connected']);
    const [detail] = await allConnected(h, 'alice', 1);
    assert.notEqual(detail!.InstId, a1.instanceID);
    assert.deepEqual(lifecycle(a1.rec), []);
    assert.equal(a1.chat.isReady(), true);
  });

  test('kicked while detached: reported on resume (KICKED_OUT then SDK_NOT_READY), never back', async (t) => {
    const h = await harness(t);
    const a1 = await h.ready('alice');
    a1.rec.clear();
    h.server.dropConnections();
    const a2 = await h.ready('alice'); // kicks the detached a1 (limit 1)
    await a1.rec.waitFor(EVENT.SDK_NOT_READY);
    assert.deepEqual(lifecycle(a1.rec), [EVENT.KICKED_OUT, EVENT.SDK_NOT_READY]);
    assert.deepEqual(a1.rec.events.find((e) => e.name === EVENT.KICKED_OUT)?.data, { type: 'multipleAccount' });
    assert.equal(a1.chat.isReady(), false);
    assert.deepEqual(lifecycle(a2.rec), [EVENT.SDK_READY]);
    assert.deepEqual((await h.online('alice')).map((d) => d.InstId), [a2.instanceID]);
  });

  test('REST kick while disconnected past the window: the re-login is refused and reported as REST_API_Kick', async (t) => {
    const h = await harness(t, {}, { resumeWindowMs: 100 });
    const a1 = await h.ready('alice', { userSig: h.server.sig('alice', { time: Math.floor(Date.now() / 1000) - 5 }) });
    a1.rec.clear();
    h.server.dropConnections();
    // Let the resume window pass first, so the client's resume gets 9005 and its re-login 70052.
    await until(async () => (await h.online('alice')).length === 0, 5000, 'detached instance expired');
    await h.server.rest('im_open_login_svc/kick', { UserID: 'alice' });
    await a1.rec.waitFor(EVENT.SDK_NOT_READY);
    assert.deepEqual(lifecycle(a1.rec), [EVENT.KICKED_OUT, EVENT.SDK_NOT_READY]);
    assert.deepEqual(a1.rec.events.find((e) => e.name === EVENT.KICKED_OUT)?.data, { type: 'REST_API_Kick' });
    assert.deepEqual(await h.online('alice'), []);
  });

  test('logout while disconnected resolves at once and is not resumed', async (t) => {
    const h = await harness(t);
    const a1 = await h.ready('alice');
    a1.rec.clear();
    h.server.dropConnections();
    await waitNet(a1.rec, ['connecting']);
    assert.deepEqual(await a1.chat.logout(), { code: 0, data: {} });
    await waitNet(a1.rec, ['connecting', 'disconnected']);
    assert.deepEqual(lifecycle(a1.rec), [EVENT.SDK_NOT_READY]);
  });
});
