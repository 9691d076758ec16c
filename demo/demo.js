// The tabchat demo: one chat per tab, state and events shown live, the user's instances
// across browsers, and admin controls. Everything goes through the public API of tabchat.js
// and the REST API; UserSigs come from the demo-only /dev/usersig endpoint.
const params = new URLSearchParams(location.search);
const SDKAppID = Number(params.get('sdkappid') ?? 1400000001);
const { EVENT, TYPES } = TabChat;
const $ = (id) => document.getElementById(id);

const REASONS = {
  2024: 'not logged in', 3000: 'logging in', 3001: 'login failed', 3002: 'kicked: multi-device',
  3003: 'kicked: instance limit', 3004: 'kicked: UserSig expired', 3005: 'logged out', 3006: 'kicked: REST API',
};
const KICK_REASON = {
  [TYPES.KICKED_OUT_MULT_ACCOUNT]: 3003, [TYPES.KICKED_OUT_MULT_DEVICE]: 3002,
  [TYPES.KICKED_OUT_USERSIG_EXPIRED]: 3004, [TYPES.KICKED_OUT_REST_API]: 3006,
};

let reason = 2024;
let timeTimer = null;
const chat = TabChat.create({ SDKAppID });

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('log').prepend(li);
}

function render() {
  const ready = chat.isReady();
  $('ready').textContent = ready ? 'ready' : 'not ready';
  $('ready').dataset.ready = String(ready);
  $('reason').textContent = ready ? '—' : `${reason} (${REASONS[reason] ?? 'unknown'})`;
  $('login-user').textContent = chat.getLoginUser() || '—';
  clearInterval(timeTimer);
  if (ready) {
    const tick = () => ($('server-time').textContent = new Date(chat.getServerTime()).toISOString());
    tick();
    timeTimer = setInterval(tick, 1000);
  } else {
    $('server-time').textContent = '—';
  }
}

chat.on(EVENT.SDK_READY, () => { log('SDK_READY'); render(); });
chat.on(EVENT.SDK_NOT_READY, () => { log(`SDK_NOT_READY (${REASONS[reason] ?? reason})`); render(); });
chat.on(EVENT.KICKED_OUT, (e) => { reason = KICK_REASON[e.data.type] ?? reason; log(`KICKED_OUT type=${e.data.type}`); });
chat.on(EVENT.NET_STATE_CHANGE, (e) => { $('net').textContent = e.data.state; log(`NET_STATE_CHANGE ${e.data.state}`); });
chat.on(EVENT.ERROR, (e) => log(`ERROR ${e.data.code} ${e.data.message}`));
if (EVENT.MESSAGE_RECEIVED) chat.on(EVENT.MESSAGE_RECEIVED, (e) => {
  for (const m of e.data) log(`MESSAGE_RECEIVED from ${m.from}: ${m.payload?.text ?? ''}`);
});

async function devUserSig(userID) {
  const res = await fetch(`/dev/usersig?sdkappid=${SDKAppID}&userID=${encodeURIComponent(userID)}`);
  const body = await res.json();
  if (!res.ok) throw Object.assign(new Error(body.message), { code: body.code });
  return body.userSig;
}

async function rest(command, body) {
  const usersig = await devUserSig('administrator');
  const q = new URLSearchParams({ sdkappid: String(SDKAppID), identifier: 'administrator', usersig, random: String(Math.floor(Math.random() * 4294967295)), contenttype: 'json' });
  const res = await fetch(`/v4/${command}?${q}`, { method: 'POST', body: JSON.stringify(body) });
  const reply = await res.json();
  if (reply.ErrorCode !== 0) throw Object.assign(new Error(reply.ErrorInfo), { code: reply.ErrorCode });
  return reply;
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const userID = $('user').value.trim();
  $('inst-user').textContent = userID;
  $('kick-user').value = userID;
  try {
    if (chat.getLoginUser() && chat.getLoginUser() !== userID) await chat.logout();
    reason = 3000;
    render();
    const res = await chat.login({ userID, userSig: await devUserSig(userID) });
    log(res.data.repeatLogin ? `login: already logged in (repeatLogin)` : `login resolved`);
  } catch (err) {
    if (err.code && err.code !== 2025) reason = 3001;
    log(`login failed: ${err.code} ${err.message}`);
  }
  render();
  refreshInstances();
});

$('logout').addEventListener('click', async () => {
  try {
    reason = 3005;
    await chat.logout();
    log('logout resolved');
  } catch (err) {
    log(`logout: ${err.code} ${err.message}`);
  }
  render();
  refreshInstances();
});

$('destroy').addEventListener('click', async () => {
  try {
    await chat.destroy();
    log('destroyed: reload the page to start again');
  } catch (err) {
    log(`destroy: ${err.code} ${err.message} (cleaned up anyway)`);
  }
  for (const el of document.querySelectorAll('#login-form button')) if (el.id !== 'open-tab') el.disabled = true;
  render();
});

$('open-tab').addEventListener('click', () => {
  const url = new URL(location.href);
  url.searchParams.set('user', $('user').value.trim());
  url.searchParams.set('autologin', '1');
  window.open(url, '_blank');
});

$('settings-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const r = await rest('tabchat_admin/set_login_settings', { MaxInstancesPerPlatform: Number($('max').value), LoginPolicy: $('policy').value });
    log(`settings: max ${r.MaxInstancesPerPlatform} per platform, policy ${r.LoginPolicy}`);
  } catch (err) {
    log(`settings failed: ${err.code} ${err.message}`);
  }
  refreshStats();
});

$('kick-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    await rest('im_open_login_svc/kick', { UserID: $('kick-user').value.trim() });
    log(`REST kick of ${$('kick-user').value.trim()} sent`);
  } catch (err) {
    log(`kick failed: ${err.code} ${err.message}`);
  }
  refreshInstances();
});

async function refreshInstances() {
  const userID = $('inst-user').textContent;
  try {
    const r = await rest('openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
    const detail = r.QueryResult[0]?.Detail ?? [];
    const rows = detail.map((d) => {
      const tr = document.createElement('tr');
      const age = d.LoginTime ? `${Math.max(0, Math.round(Date.now() / 1000 - d.LoginTime))} s` : '—';
      for (const v of [d.InstId, d.Platform, d.Connected === false ? 'no (resume window)' : 'yes', age]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      tr.innerHTML = '<td colspan="4">offline</td>';
      rows.push(tr);
    }
    $('instances').replaceChildren(...rows);
  } catch (err) {
    $('instances').innerHTML = `<tr><td colspan="4"></td></tr>`;
    $('instances').querySelector('td').textContent = `cannot query: ${err.code} ${err.message}`;
  }
}

async function refreshStats() {
  try {
    const s = await rest('tabchat_admin/get_stats', {});
    $('max').value = s.MaxInstancesPerPlatform;
    $('policy').value = s.LoginPolicy;
    $('stats').textContent = `Server ${s.Node}: ${s.Connections} WebSocket connection(s), ${s.InstancesTotal} instance(s) online.`;
  } catch (err) {
    $('stats').textContent = `cannot read stats: ${err.code} ${err.message}`;
  }
}

if (params.get('user')) $('user').value = params.get('user');
$('inst-user').textContent = $('user').value;
$('kick-user').value = $('user').value;
render();
refreshStats();
refreshInstances();
setInterval(() => { refreshInstances(); refreshStats(); }, 2000);
if (params.get('autologin') === '1') $('login-form').requestSubmit();
