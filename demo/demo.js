// The tabchat demo page. One chat per tab (TabChat.create, tabs: 'separate'), its state and
// events shown live, the user's instances in every browser (REST query_online_status), C2C
// text messages, and admin controls (REST set_login_settings, kick, get_stats).
//
// Everything goes through the public API of /tabchat.js and the REST API. UserSigs come from
// the demo-only, insecure /dev/usersig endpoint (server option devUserSig: true); a real
// app gets them from its own backend. No framework, no build step.
const params = new URLSearchParams(location.search);
const SDKAppID = Number(params.get('sdkappid') ?? 1400000001);
const ADMIN = params.get('admin') ?? 'administrator';
/** Tab mode (docs/guide.md): 'separate' (default, one login per tab) or 'shared' (?tabs=shared). */
const TABS = params.get('tabs') === 'shared' ? 'shared' : 'separate';
const { EVENT, TYPES } = TabChat;
const $ = (id) => document.getElementById(id);

/** Not-ready reasons (docs/client-api.md, "The not-ready gate"). */
const REASONS = {
  2024: 'not logged in yet',
  3000: 'logging in…',
  3001: 'the login failed or the session was lost',
  3002: 'kicked out (multipleDevice): a login on another platform broke the login policy',
  3003: 'kicked out (multipleAccount): a newer login of this user on this platform went over the instance limit',
  3004: 'kicked out (userSigExpired): the UserSig expired',
  3005: 'logged out',
  3006: 'kicked out (REST_API_Kick): an admin kicked this user',
};
const KICK_REASON = {
  [TYPES.KICKED_OUT_MULT_ACCOUNT]: 3003,
  [TYPES.KICKED_OUT_MULT_DEVICE]: 3002,
  [TYPES.KICKED_OUT_USERSIG_EXPIRED]: 3004,
  [TYPES.KICKED_OUT_REST_API]: 3006,
};

const ui = {
  /** Current not-ready reason (null when ready) and extra detail (e.g. the login error). */
  reason: 2024,
  detail: '',
  /** Server instance id of this tab's login, and where it came from. */
  instId: null,
  instIdSource: '',
  /** This tab's login: {label (a + the server's login number), n (place among the live logins on its platform, oldest first), total}. */
  order: null,
  /** Last order label seen while logged in (shown after a kick: "was a1"). */
  lastLabel: '',
  net: TYPES.NET_STATE_DISCONNECTED,
  /** Whether this tab got a NET_STATE_CHANGE at all. */
  netSeen: false,
  /** The next SDK_NOT_READY is explained by: 'kick' (KICKED_OUT came first) or 'logout'. */
  expect: null,
  lastError: '',
  destroyed: false,
  busy: false,
  /** Server settings as last read. */
  settings: null,
  /** The admin form was edited and not applied: do not overwrite it from the server. */
  settingsDirty: false,
};

let chat = null;
try {
  chat = TabChat.create({ SDKAppID, tabs: TABS });
} catch (err) {
  console.error('tabchat demo: TabChat.create failed', err);
}

// ------------------------------------------------------------------ event log

function log(name, text = '', tone = '') {
  const li = document.createElement('li');
  if (tone) li.className = `ev-${tone}`;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const b = document.createElement('b');
  b.textContent = name;
  li.append(time, ' ', b);
  if (text) li.append(' ', text);
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 200) list.lastElementChild.remove();
}

// ------------------------------------------------------------------ rendering

function currentUser() {
  return (chat && chat.getLoginUser()) || $('user').value.trim() || 'alice';
}

function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

function render() {
  const ready = !!chat && chat.isReady();
  const status = $('status');
  status.dataset.ready = String(ready);
  status.dataset.reason = ready ? '' : String(ui.reason);
  $('ready').textContent = ready ? 'ready' : 'not ready';
  if (ready) {
    $('reason-line').hidden = true;
  } else {
    $('reason-line').hidden = false;
    $('reason-code').textContent = String(ui.reason);
    let text = REASONS[ui.reason] ?? 'unknown reason';
    if (ui.detail) text += ` — ${ui.detail}`;
    if (ui.reason >= 3002 && ui.reason !== 3005 && ui.lastLabel) text += ` (this tab was ${ui.lastLabel})`;
    $('reason-text').textContent = text;
  }
  const tag = $('order-tag');
  tag.hidden = !(ready && ui.order);
  tag.textContent = ready && ui.order ? ui.order.label : '';

  // A tab that logs in while another tab's login already opened the shared socket gets no
  // NET_STATE_CHANGE (the socket did not change); say so instead of showing a stale state.
  const inferred = ready && !ui.netSeen;
  const net = inferred ? TYPES.NET_STATE_CONNECTED : ui.net;
  $('net').textContent = net;
  $('net-note').textContent = inferred ? '(the shared socket was already open)' : '';
  $('net').dataset.state = net;
  const user = chat ? chat.getLoginUser() : '';
  $('login-user').textContent = user || '—';
  $('inst-id').textContent = ready && ui.instId != null ? `${ui.instId}${ui.instIdSource ? ` (${ui.instIdSource})` : ''}` : '—';
  if (ready && ui.order) {
    const { label, n, total, platform } = ui.order;
    const place = n === 1 ? (total === 1 ? 'the only' : 'the oldest') : `the ${ordinal(n)}`;
    let text = `${label}: ${user}'s ${ordinal(Number(label.slice(1)))} login; ${place} of ${total} live ${platform} login${total === 1 ? '' : 's'}`;
    const max = ui.settings?.MaxInstancesPerPlatform;
    if (n === 1 && max !== undefined && total >= max) text += '; the next login over the limit kicks this tab';
    $('order').textContent = text;
  } else {
    $('order').textContent = '—';
  }
  if (!ready) $('server-time').textContent = '—';

  $('login').disabled = ui.destroyed || ui.busy;
  $('user').readOnly = ui.destroyed;
  $('logout').disabled = ui.destroyed || ui.busy || !user;
  $('destroy').disabled = ui.destroyed;
  $('send').disabled = !ready;
  if (ready && $('msg-note').dataset.kind === 'login') setMsgNote('', '');
  if (!ready && !$('msg-note').dataset.kind) setMsgNote('Log in to send. Messages to you arrive in every tab logged in as you.', 'login');

  $('inst-user').textContent = currentUser();
  const state = ready ? `ready${ui.order ? ` · ${ui.order.label}` : ''}` : ui.reason >= 3002 && ui.reason !== 3005 ? 'kicked' : 'not ready';
  document.title = `${state} · ${user || $('user').value.trim() || '—'} — tabchat demo`;
}

function tickServerTime() {
  if (chat && chat.isReady()) $('server-time').textContent = `${new Date(chat.getServerTime()).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
setInterval(tickServerTime, 1000);

// ------------------------------------------------------------------ UserSigs and REST

/** A UserSig from the demo-only /dev/usersig endpoint (insecure: it signs for anyone). */
async function devUserSig(userID) {
  const res = await fetch(`/dev/usersig?sdkappid=${SDKAppID}&userID=${encodeURIComponent(userID)}`);
  const body = await res.json().catch(() => ({ message: `HTTP ${res.status}` }));
  if (!res.ok) {
    const hint = res.status === 404 && body.code === undefined ? ' (is devUserSig enabled on the server?)' : '';
    throw Object.assign(new Error(`${body.message ?? 'cannot get a UserSig'}${hint}`), { code: body.code ?? res.status });
  }
  return body.userSig;
}

let adminSig = null;
/** The admin's UserSig, fetched once from /dev/usersig and cached (REST calls may reuse it). */
function adminUserSig() {
  if (!adminSig) adminSig = devUserSig(ADMIN).catch((err) => { adminSig = null; throw err; });
  return adminSig;
}

/** POST /v4/<command> as the admin; rejects {code, message} unless ErrorCode is 0. */
async function rest(command, body, retried = false) {
  const usersig = await adminUserSig();
  const q = new URLSearchParams({
    sdkappid: String(SDKAppID), identifier: ADMIN, usersig,
    random: String(Math.floor(Math.random() * 4294967295)), contenttype: 'json',
  });
  const res = await fetch(`/v4/${command}?${q}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reply = await res.json();
  if (reply.ErrorCode !== 0) {
    // A cached admin UserSig that expired or was revoked (REST kick of the admin): get a new one once.
    if (!retried && (reply.ErrorCode === 70001 || reply.ErrorCode === 70052)) {
      adminSig = null;
      return rest(command, body, true);
    }
    throw Object.assign(new Error(reply.ErrorInfo), { code: reply.ErrorCode });
  }
  return reply;
}

// ------------------------------------------------------------------ other tabs of the demo

const demoChannel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`tabchat-demo:${SDKAppID}`) : null;
/** Tell the demo's other tabs that something changed, so they refresh now rather than at the next poll. */
function announce(what) {
  demoChannel?.postMessage({ what });
}
if (demoChannel) {
  demoChannel.onmessage = (event) => {
    if (event.data?.what === 'settings') ui.settingsDirty = false;
    refreshSoon();
  };
}

// Worker diagnostics (docs/architecture.md, "Diagnostics"): the SharedWorker has no console
// a page can see, so it mirrors warnings and errors on this channel.
if (typeof BroadcastChannel === 'function') {
  const diag = new BroadcastChannel('tabchat-diag');
  diag.onmessage = (event) => {
    const d = event.data;
    if (!d || (d.level !== 'warn' && d.level !== 'error')) return;
    log(`worker ${d.level}`, d.text, d.level === 'error' ? 'bad' : 'warn');
    if (d.level === 'error') console.error(`[tabchat-worker] ${d.text}`);
  };
}

// ------------------------------------------------------------------ instances, stats, worker

let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer !== null) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refresh();
  }, 30);
}

function formatAge(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function cell(tr, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  tr.append(td);
  return td;
}

let instancesQuery = 0;
async function refreshInstances() {
  const query = ++instancesQuery;
  const userID = currentUser();
  let detail;
  try {
    const r = await rest('openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
    detail = (r.QueryResult?.[0]?.Detail ?? []).filter((d) => d.Status !== 'Offline');
  } catch (err) {
    if (query !== instancesQuery) return;
    const tr = document.createElement('tr');
    cell(tr, `cannot query: ${err.code} ${err.message}`).colSpan = 5;
    $('instances').replaceChildren(tr);
    return;
  }
  if (query !== instancesQuery) return;
  const ready = chat && chat.isReady();
  const perPlatform = {};
  for (const d of detail) perPlatform[d.Platform] = (perPlatform[d.Platform] ?? 0) + 1;
  const seen = {};
  const rows = detail.map((d) => {
    const n = (seen[d.Platform] = (seen[d.Platform] ?? 0) + 1);
    // LoginOrder: the server's number for this login among the user's logins (a1 = first).
    return { ...d, n, total: perPlatform[d.Platform], label: `a${d.LoginOrder ?? n}` };
  });
  // No instanceID in the login response (older servers): take the newest instance on Web.
  if (ready && ui.instId == null) {
    const newest = rows.filter((r) => r.Platform === 'Web').sort((a, b) => b.InstId - a.InstId)[0];
    if (newest) {
      ui.instId = newest.InstId;
      ui.instIdSource = 'from query_online_status';
    }
  }
  const mine = ready ? rows.find((r) => r.InstId === ui.instId) : undefined;
  ui.order = mine ? { label: mine.label, n: mine.n, total: mine.total, platform: mine.Platform } : null;
  if (mine) ui.lastLabel = mine.label;
  const now = Date.now() / 1000;
  const trs = rows.map((r) => {
    const tr = document.createElement('tr');
    if (r === mine) tr.className = 'mine';
    const order = cell(tr, r.label, 'order');
    if (r === mine) {
      const you = document.createElement('span');
      you.className = 'tag';
      you.textContent = 'this tab';
      order.append(' ', you);
    }
    cell(tr, String(r.InstId));
    cell(tr, r.Platform);
    cell(tr, r.Connected === false ? 'no (resume window)' : 'yes');
    cell(tr, r.LoginTime ? formatAge(now - r.LoginTime) : '—');
    return tr;
  });
  if (trs.length === 0) {
    const tr = document.createElement('tr');
    cell(tr, `${userID} is offline`).colSpan = 5;
    trs.push(tr);
  }
  $('instances').replaceChildren(...trs);
  $('inst-updated').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  render();
}

function syncSettingsForm(settings) {
  if (ui.settingsDirty) return;
  const radio = document.querySelector(`input[name="max"][value="${settings.MaxInstancesPerPlatform}"]`);
  if (radio) radio.checked = true;
  else for (const r of document.querySelectorAll('input[name="max"]')) r.checked = false;
  $('policy').value = settings.LoginPolicy;
}

async function refreshStats() {
  try {
    const s = await rest('tabchat_admin/get_stats', {});
    ui.settings = { MaxInstancesPerPlatform: s.MaxInstancesPerPlatform, LoginPolicy: s.LoginPolicy };
    syncSettingsForm(ui.settings);
    $('stat-node').textContent = s.Node;
    $('stat-conns').textContent = String(s.Connections);
    const platforms = Object.entries(s.Instances ?? {}).filter(([, n]) => n > 0).map(([p, n]) => `${p} ${n}`);
    $('stat-insts').textContent = `${s.InstancesTotal}${platforms.length ? ` (${platforms.join(', ')})` : ''}`;
    $('stat-settings').textContent = `at most ${s.MaxInstancesPerPlatform} per platform, policy ${s.LoginPolicy}`;
  } catch (err) {
    $('stat-node').textContent = `cannot read stats: ${err.code} ${err.message}`;
  }
}

async function refreshWorker() {
  if (typeof TabChat.getWorkerState !== 'function') return;
  try {
    const w = await TabChat.getWorkerState();
    const tabs = w.tabs?.length ?? 0;
    $('worker').textContent = `${w.sockets} WebSocket${w.sockets === 1 ? '' : 's'} shared by ${tabs} tab${tabs === 1 ? '' : 's'}`;
  } catch {
    $('worker').textContent = '—';
  }
}

async function refresh() {
  await Promise.all([refreshStats(), refreshWorker()]);
  await refreshInstances();
}

// ------------------------------------------------------------------ chat events

if (chat) {
  chat.on(EVENT.SDK_READY, () => {
    ui.reason = null;
    ui.detail = '';
    log('SDK_READY', `logged in as ${chat.getLoginUser()}`, 'good');
    render();
    tickServerTime();
    announce('ready');
    refreshSoon();
  });
  chat.on(EVENT.KICKED_OUT, (event) => {
    ui.reason = KICK_REASON[event.data.type] ?? 3001;
    ui.detail = '';
    ui.expect = 'kick';
    log('KICKED_OUT', `type=${event.data.type}`, 'bad');
  });
  chat.on(EVENT.SDK_NOT_READY, () => {
    if (ui.expect === 'logout') ui.reason = 3005;
    else if (ui.expect !== 'kick') {
      ui.reason = 3001;
      ui.detail = ui.lastError ? `session lost: ${ui.lastError}` : 'session lost';
    }
    ui.expect = null;
    ui.order = null;
    ui.instId = null;
    log('SDK_NOT_READY', `reason ${ui.reason}: ${REASONS[ui.reason] ?? ''}`, 'bad');
    render();
    announce('not-ready');
    refreshSoon();
  });
  chat.on(EVENT.NET_STATE_CHANGE, (event) => {
    ui.net = event.data.state;
    ui.netSeen = true;
    log('NET_STATE_CHANGE', event.data.state);
    render();
    refreshSoon();
  });
  chat.on(EVENT.ERROR, (event) => {
    ui.lastError = `${event.data.code} ${event.data.message}`;
    log('ERROR', ui.lastError, 'bad');
  });
  if (typeof chat.getConversationList === 'function') {
    chat.on(EVENT.CONVERSATION_LIST_UPDATED, (event) => renderConversations(event.data));
    chat.on(EVENT.TOTAL_UNREAD_MESSAGE_COUNT_UPDATED, (event) => {
      log('TOTAL_UNREAD_MESSAGE_COUNT_UPDATED', String(event.data));
      renderTotal(event.data);
    });
    chat.on(EVENT.MESSAGE_READ_BY_PEER, (event) => log('MESSAGE_READ_BY_PEER', event.data.map((m) => m.conversationID).join(', ')));
    chat.on(EVENT.SDK_READY, () => renderTotal(chat.getTotalUnreadMessageCount()));
    chat.on(EVENT.SDK_NOT_READY, () => {
      renderConversations([]);
      renderTotal(0);
    });
  }
  if (EVENT.MESSAGE_RECEIVED) {
    chat.on(EVENT.MESSAGE_RECEIVED, (event) => {
      const list = Array.isArray(event.data) ? event.data : [];
      for (const m of list) {
        log('MESSAGE_RECEIVED', `${m.from} → ${m.to}: ${m.payload?.text ?? ''}`);
        addMessage({
          flow: m.flow, from: m.from, to: m.to, text: m.payload?.text ?? '', time: m.time,
          status: m.flow === 'out' ? 'sent from another tab or device' : 'received',
        });
      }
    });
  }
}

// ------------------------------------------------------------------ conversations

/** Peer of the open history pane and the cursor of its next (older) page. */
const history = { peer: '', next: '', done: true };

function renderTotal(total) {
  const badge = $('total-unread');
  badge.textContent = String(total);
  badge.hidden = !(total > 0);
}

function renderConversations(list) {
  const ul = $('conversations');
  ul.replaceChildren();
  if (list.length === 0) {
    const li = document.createElement('li');
    li.className = 'hint';
    li.textContent = 'No conversations yet.';
    ul.append(li);
  }
  for (const c of list) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'conversation secondary';
    button.dataset.conversationId = c.conversationID;
    button.textContent = `${c.userProfile.userID}: ${c.lastMessage.messageForShow}`;
    if (c.unreadCount > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = String(c.unreadCount);
      badge.setAttribute('aria-label', `${c.unreadCount} unread`);
      button.append(' ', badge);
    }
    button.addEventListener('click', () => void openHistory(c.userProfile.userID));
    li.append(button);
    ul.append(li);
  }
  if (history.peer && list.some((c) => c.userProfile.userID === history.peer && c.unreadCount > 0)) void openHistory(history.peer);
}

/** Show the newest page of the conversation with `peer` and mark it read (every tab and device). */
async function openHistory(peer, older = false) {
  if (!chat?.isReady()) return;
  const conversationID = `C2C${peer}`;
  try {
    const options = older && history.next ? { conversationID, nextReqMessageID: history.next } : { conversationID };
    const res = await chat.getMessageList(options);
    if (!older) {
      $('history').replaceChildren();
      history.peer = peer;
    }
    const items = res.data.messageList.map((m) => {
      const li = document.createElement('li');
      li.className = m.flow === 'out' ? 'out' : 'in';
      li.textContent = `${m.from}: ${m.payload.text}${m.flow === 'out' && m.isPeerRead ? ' ✓ read' : ''}`;
      return li;
    });
    $('history').prepend(...items);
    history.next = res.data.nextReqMessageID;
    history.done = res.data.isCompleted;
    $('history-peer').textContent = peer;
    $('history-h').hidden = false;
    $('history-more').hidden = history.done;
    await chat.setMessageRead({ conversationID }).catch(() => undefined);
  } catch (err) {
    log('ERROR', `${err.code} ${err.message}`, 'bad');
  }
}

$('history-more')?.addEventListener('click', () => void openHistory(history.peer, true));

// ------------------------------------------------------------------ login, logout, destroy

function setBusy(busy) {
  ui.busy = busy;
  render();
}

async function login(userID) {
  if (!chat || ui.busy) return;
  setBusy(true);
  try {
    const current = chat.getLoginUser();
    if (current && current !== userID) {
      ui.expect = 'logout';
      await chat.logout();
      log('logout()', `resolved (switching from ${current} to ${userID})`);
    }
    ui.reason = 3000;
    ui.detail = '';
    render();
    const res = await chat.login({ userID, userSig: await devUserSig(userID) });
    if (res.data.repeatLogin) {
      log('login()', `resolved: already logged in (repeatLogin): ${res.data.errorInfo}`);
    } else {
      ui.instId = typeof res.data.instanceID === 'number' ? res.data.instanceID : null;
      ui.instIdSource = '';
      log('login()', `resolved, instanceID ${res.data.instanceID ?? '(not in the response)'}`);
    }
  } catch (err) {
    if (err.code !== 2025) {
      ui.reason = 3001;
      ui.detail = `login failed: ${err.code ?? ''} ${err.message}`.trim();
    }
    log('login()', `rejected: ${err.code ?? ''} ${err.message}`, 'bad');
  } finally {
    setBusy(false);
    refreshSoon();
  }
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const userID = $('user').value.trim();
  if (!userID) return;
  userChanged();
  login(userID);
});

$('logout').addEventListener('click', async () => {
  if (!chat) return;
  try {
    ui.expect = 'logout';
    await chat.logout();
    log('logout()', 'resolved');
  } catch (err) {
    ui.expect = null;
    log('logout()', `rejected: ${err.code} ${err.message}`, 'bad');
  }
  render();
  refreshSoon();
});

$('destroy').addEventListener('click', async () => {
  if (!chat) return;
  ui.expect = 'logout';
  try {
    await chat.destroy();
    log('destroy()', 'resolved: reload the page to start again');
  } catch (err) {
    log('destroy()', `rejected: ${err.code} ${err.message} (cleaned up anyway); reload the page to start again`);
  }
  ui.expect = null;
  ui.destroyed = true;
  ui.reason = 3005;
  ui.detail = 'this chat was destroyed: reload the page to start again';
  render();
  refreshSoon();
});

$('open-tab').addEventListener('click', () => {
  const url = new URL(location.href);
  url.searchParams.set('user', currentUser());
  url.searchParams.set('autologin', '1');
  window.open(url, '_blank');
});

function userChanged() {
  const userID = $('user').value.trim();
  if (!userID) return;
  $('kick-user').value = userID;
  if ($('msg-to').value.trim() === '' || $('msg-to').value.trim() === userID) $('msg-to').value = userID === 'bob' ? 'alice' : 'bob';
  render();
  if (!chat || !chat.getLoginUser()) refreshSoon();
}
$('user').addEventListener('change', userChanged);

// ------------------------------------------------------------------ messages

function setMsgNote(text, kind) {
  $('msg-note').textContent = text;
  $('msg-note').dataset.kind = kind;
}

function addMessage({ flow, from, to, text, time, status }) {
  const li = document.createElement('li');
  li.className = `msg msg-${flow}`;
  const meta = document.createElement('p');
  meta.className = 'meta';
  const who = document.createElement('span');
  who.textContent = `${from} → ${to}`;
  const when = document.createElement('time');
  when.textContent = new Date((time ? time * 1000 : Date.now())).toLocaleTimeString();
  const st = document.createElement('span');
  st.className = 'msg-status';
  st.textContent = status;
  meta.append(who, ' · ', when, ' · ', st);
  const body = document.createElement('p');
  body.className = 'text';
  body.textContent = text;
  li.append(meta, body);
  $('messages').prepend(li);
  while ($('messages').children.length > 100) $('messages').lastElementChild.remove();
  return st;
}

const canMessage = !!chat && typeof chat.createTextMessage === 'function';
if (!canMessage) {
  $('msg-unavailable').hidden = false;
  $('msg-body').hidden = true;
}

$('msg-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!canMessage || !chat.isReady()) return;
  const to = $('msg-to').value.trim();
  const text = $('msg-text').value;
  if (!to || !text) return;
  let message;
  try {
    message = chat.createTextMessage({ to, conversationType: TYPES.CONV_C2C, payload: { text } });
  } catch (err) {
    setMsgNote(`Cannot create the message: ${err.message}`, 'error');
    return;
  }
  const status = addMessage({ flow: 'out', from: chat.getLoginUser(), to, text, status: 'sending…' });
  $('msg-text').value = '';
  try {
    const res = await chat.sendMessage(message);
    status.textContent = 'sent';
    status.title = `message ID ${res.data.message.ID}`;
    log('sendMessage()', `resolved: ${to} got "${text}"`);
    setMsgNote('', '');
  } catch (err) {
    status.textContent = `failed: ${err.code}`;
    status.classList.add('bad');
    setMsgNote(`Send failed with ${err.code}: ${err.message}`, 'error');
    log('sendMessage()', `rejected: ${err.code} ${err.message}`, 'bad');
  }
});

// ------------------------------------------------------------------ admin

for (const input of document.querySelectorAll('#settings-form input, #settings-form select')) {
  input.addEventListener('change', () => { ui.settingsDirty = true; });
}

$('settings-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const checked = document.querySelector('input[name="max"]:checked');
  const body = { LoginPolicy: $('policy').value };
  if (checked) body.MaxInstancesPerPlatform = Number(checked.value);
  try {
    const r = await rest('tabchat_admin/set_login_settings', body);
    ui.settingsDirty = false;
    const text = `Applied: at most ${r.MaxInstancesPerPlatform} per platform, policy ${r.LoginPolicy}. The next login uses it.`;
    $('settings-result').textContent = text;
    log('admin', `login settings: at most ${r.MaxInstancesPerPlatform} per platform, policy ${r.LoginPolicy}`);
    announce('settings');
  } catch (err) {
    $('settings-result').textContent = `Failed: ${err.code} ${err.message}`;
    log('admin', `set_login_settings failed: ${err.code} ${err.message}`, 'bad');
  }
  refreshSoon();
});

$('kick-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const userID = $('kick-user').value.trim();
  if (!userID) return;
  try {
    await rest('im_open_login_svc/kick', { UserID: userID });
    $('kick-result').textContent = `Kicked every instance of ${userID}. Their older UserSigs are now refused (70052); the demo fetches a fresh one at the next login.`;
    log('admin', `REST kick of ${userID}`);
    announce('kick');
  } catch (err) {
    $('kick-result').textContent = `Kick failed: ${err.code} ${err.message}`;
    log('admin', `kick failed: ${err.code} ${err.message}`, 'bad');
  }
  refreshSoon();
});

$('clear-log').addEventListener('click', () => $('log').replaceChildren());

// ------------------------------------------------------------------ start

$('version').textContent = TabChat.VERSION;
$('tab-mode').textContent = TABS;
{
  const other = new URL(location.href);
  other.searchParams.delete('autologin');
  if (TABS === 'shared') other.searchParams.delete('tabs');
  else other.searchParams.set('tabs', 'shared');
  $('mode-link').href = other.href;
  $('mode-link').textContent = TABS === 'shared' ? 'switch to separate' : 'switch to shared';
}
$('app-id').textContent = String(SDKAppID);
if (params.get('user')) $('user').value = params.get('user');
userChanged();
if (!chat) {
  ui.destroyed = true;
  ui.reason = 3001;
  ui.detail = 'TabChat.create() failed: see the browser console';
}
render();
refresh();
setInterval(() => {
  if (document.visibilityState === 'visible') refresh();
}, 2000);
if (params.get('autologin') === '1' && chat) login($('user').value.trim());
