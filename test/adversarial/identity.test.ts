/**
 * Who and from where (issue items 9 and 10): userIDs must be well-formed text without
 * control, line-separator or bidi characters wherever they enter (login, REST, dev UserSig,
 * C2C `to`); an instance cannot be resumed from a connection whose page origin its app
 * does not allow, so nothing can be sent from there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CODE } from '../../src/protocol/codes.js';
import { isUserID } from '../../src/protocol/frames.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer } from '../helpers/server.js';
import { onlineIds } from '../server/util.js';

const BAD = ['sur2\ud800', '\udc00x', 'a\u0000b', 'tab\there', 'new\nline', 'del\u007f', 'c1\u0085', 'ls\u2028', 'ps\u2029', 'rlo\u202eevil', 'iso\u2066x', 'lrm\u200e'];
const GOOD = ['alice', 'user_01-x', 'ユーザー', 'emoji😀', 'a b', 'Zoë'];

test('the userID rule', () => {
  for (const id of BAD) assert.equal(isUserID(id), false, JSON.stringify(id));
  for (const id of GOOD) assert.equal(isUserID(id), true, id);
});

test('ill-formed userIDs are refused everywhere they enter: login (9010), REST (70402, 60015), dev UserSig (9010), C2C to (9021)', async (t) => {
  const ts = await startTestServer({}, { devUserSig: true });
  t.after(() => ts.close());
  const c = await RawClient.connect(ts.wsUrl);
  for (const id of BAD) {
    const r = await c.login(ts.sdkAppId, id, ts.sig(id));
    assert.equal(r.code, CODE.INVALID_PARAMETER, `login ${JSON.stringify(id)}: ${JSON.stringify(r)}`);
    assert.equal((await ts.rest('im_open_login_svc/kick', { UserID: id })).ErrorCode, CODE.REST_INVALID_PARAMS, `kick ${JSON.stringify(id)}`);
    const q = await ts.rest('openim/query_online_status', { To_Account: [id, 'alice'] });
    assert.equal(q.ErrorList[0].ErrorCode, CODE.REST_ACCOUNT_NOT_STRING, `online ${JSON.stringify(id)}`);
    // A lone surrogate cannot travel in a URL (it is not UTF-8): the server sees U+FFFD then.
    if (!/[\ud800-\udfff]/.test(id)) {
      const dev = await fetch(`${ts.httpUrl}/dev/usersig?sdkappid=${ts.sdkAppId}&userID=${encodeURIComponent(id)}`);
      assert.equal(dev.status, 400, `dev usersig ${JSON.stringify(id)}`);
      assert.equal(((await dev.json()) as { code: number }).code, CODE.INVALID_PARAMETER);
    }
  }
  const me = await c.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  for (const id of BAD) {
    const r = await c.request({ type: 'send', instId: me.data.instId, clientMsgId: `m${Math.random()}`, to: id, text: 'hi' });
    assert.equal(r.code, CODE.MSG_INVALID_RECIPIENT, `to ${JSON.stringify(id)}`);
  }
  for (const id of GOOD) assert.equal((await c.login(ts.sdkAppId, id, ts.sig(id))).ok, true, id);
  c.close();
});

test('origin on resume: a foreign-origin connection cannot take an instance over (2801), nor send from it', async (t) => {
  const good = 'https://good.example';
  const ts = await startTestServer({ allowedOrigins: [good] }, { resumeWindowMs: 30_000 });
  t.after(() => ts.close());
  const owner = await RawClient.connect(ts.wsUrl, { origin: good });
  const login = await owner.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  assert.equal(login.ok, true);
  const { instId, token } = login.data;
  const foreign = await RawClient.connect(ts.wsUrl, { origin: 'https://evil.example' });
  const resumed = await foreign.request({ type: 'resume', instId, token });
  assert.equal(resumed.ok, false);
  assert.equal(resumed.code, CODE.NETWORK_TIMEOUT);
  assert.match(resumed.message, /origin/);
  const sent = await foreign.request({ type: 'send', instId, clientMsgId: 'x1', to: 'bob', text: 'from evil' });
  assert.equal(sent.ok, false);
  assert.equal(sent.code, CODE.USER_NOT_LOGGED_IN);
  // The instance stayed with its owner, who still sends.
  assert.deepEqual(await onlineIds(ts, 'alice'), [instId]);
  assert.equal((await owner.request({ type: 'send', instId, clientMsgId: 'ok1', to: 'bob', text: 'hi' })).ok, true);
  // Also after the owner dropped: the foreign page still cannot resume it; a good page can.
  owner.terminate();
  await owner.waitClosed();
  assert.equal((await foreign.request({ type: 'resume', instId, token })).code, CODE.NETWORK_TIMEOUT);
  const back = await RawClient.connect(ts.wsUrl, { origin: good });
  assert.equal((await back.request({ type: 'resume', instId, token })).ok, true);
  foreign.close();
  back.close();
});
