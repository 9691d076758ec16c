// Bench harness, loaded after a build that defines the global `TabChat` (the real drop-in
// build or the direct-WebSocket baseline). bench/browser-bench.ts drives it through
// `window.b`. A page may set `window.benchCreateOptions` (leader.html: the transport) before
// loading it; every `TabChat.create` gets those options. Every timestamp is `performance.timeOrigin + performance.now()` (ms since the
// epoch, sub-ms resolution), comparable with Node's value of the same expression.
(function () {
  'use strict';
  function now() { return performance.timeOrigin + performance.now(); }
  /** sdkAppId → {chat, readyWait, kickWait, kicks, notReady, net: [{state, at}]}. */
  var chats = {};
  var pageOptions = window.benchCreateOptions || {};
  function waiter() {
    var w = {};
    w.promise = new Promise(function (resolve) { w.resolve = resolve; });
    return w;
  }
  function entry(id) {
    var e = chats[id];
    if (!e) throw new Error('no chat for SDKAppID ' + id);
    return e;
  }
  var b = {
    now: now,
    errors: [],
    /** TabChat.create + listeners that timestamp SDK_READY, KICKED_OUT, SDK_NOT_READY and NET_STATE_CHANGE. */
    create: function (sdkAppId, extra) {
      var options = Object.assign({ SDKAppID: sdkAppId }, pageOptions, extra || {});
      var chat = TabChat.create(options);
      var e = { chat: chat, readyWait: waiter(), kickWait: waiter(), kicks: 0, notReady: 0, net: [] };
      chats[sdkAppId] = e;
      chat.on(TabChat.EVENT.SDK_READY, function () { e.readyWait.resolve(now()); });
      chat.on(TabChat.EVENT.KICKED_OUT, function () { e.kicks++; e.kickWait.resolve(now()); });
      chat.on(TabChat.EVENT.SDK_NOT_READY, function () { e.notReady++; });
      chat.on(TabChat.EVENT.NET_STATE_CHANGE, function (event) { e.net.push({ state: event.data.state, at: now() }); });
      chat.on(TabChat.EVENT.ERROR, function (event) { b.errors.push(event.data); });
      return true;
    },
    /**
     * login() → SDK_READY: {t0 (just before login()), resolved (login promise), ready (SDK_READY)}.
     * `create` (optional) creates the chat in the same task first (a new tab's first call),
     * unless `attach` already created it.
     */
    login: function (sdkAppId, userID, userSig, create) {
      if (create && !chats[sdkAppId]) b.create(sdkAppId, create);
      var e = entry(sdkAppId);
      e.readyWait = waiter();
      e.kickWait = waiter();
      var t0 = now();
      return e.chat.login({ userID: userID, userSig: userSig }).then(function () {
        var resolved = now();
        return e.readyWait.promise.then(function (ready) { return { t0: t0, resolved: resolved, ready: ready }; });
      }, function (err) {
        return { error: { code: err && err.code, message: err && err.message } };
      });
    },
    /** Time of the next (or last, if it already happened) KICKED_OUT of the chat. */
    kicked: function (sdkAppId) { return entry(sdkAppId).kickWait.promise; },
    isReady: function (sdkAppId) { return entry(sdkAppId).chat.isReady(); },
    /** What the chat went through since the page opened: KICKED_OUT and SDK_NOT_READY counts, NET_STATE_CHANGE log. */
    history: function (sdkAppId) {
      var e = entry(sdkAppId);
      return { ready: e.chat.isReady(), kicks: e.kicks, notReady: e.notReady, net: e.net.slice() };
    },
    /**
     * Leader page only: whether this page holds the leader lock (`tabchat:leader:<build>`).
     * The page finds its own Web Locks client id by holding a lock of its own, then compares.
     */
    isLeader: function () {
      if (!navigator.locks) return Promise.resolve(false);
      var self = 'bench-self-' + Math.random().toString(36).slice(2);
      return navigator.locks.request(self, function () {
        return navigator.locks.query().then(function (state) {
          var held = state.held || [];
          var mine = held.filter(function (l) { return l.name === self; })[0];
          return held.some(function (l) { return l.name.indexOf('tabchat:leader:') === 0 && mine && l.clientId === mine.clientId; });
        });
      });
    },
    workerState: function () { return TabChat.getWorkerState ? TabChat.getWorkerState() : null; },
    /** Send a text as chat `sdkAppId`; resolves when stored. */
    sendText: function (sdkAppId, to, text) {
      var chat = entry(sdkAppId).chat;
      return chat.sendMessage(chat.createTextMessage({ to: to, conversationType: 'C2C', payload: { text: text } })).then(function () { return true; });
    },
    /** getConversationList() right now: {t0, listed (resolved), count}. */
    conversations: function (sdkAppId) {
      var t0 = now();
      return entry(sdkAppId).chat.getConversationList().then(function (res) {
        return { t0: t0, listed: now(), count: res.data.conversationList.length };
      });
    },
    /**
     * Attach this page to its hub (SharedWorker connect or leader election, tab lock, register,
     * one getState); ms taken. A page with its own create options (the leader page) creates the
     * chat of `sdkAppId` first in the same task: `getWorkerState()` alone would pick the default
     * transport, and the chat picks the page's.
     */
    attach: function (sdkAppId) {
      var t0 = now();
      if (pageOptions.transport) b.create(sdkAppId);
      return TabChat.getWorkerState().then(function () { return now() - t0; });
    },
  };
  // Worker errors are invisible to Playwright: surface them (the bench counts them). One page
  // of the context listens at a time (the holder of a Web Lock; the next page in its queue
  // takes over when it closes): the hub mirrors every log line on this channel, and N
  // listening tabs would each be woken by every line, which no real deployment does.
  function watchDiag() {
    var diag = new BroadcastChannel('tabchat-diag');
    diag.onmessage = function (event) {
      if (event.data && event.data.level === 'error') b.errors.push({ worker: event.data.text });
    };
  }
  try {
    if (navigator.locks) navigator.locks.request('bench-diag-listener', function () { watchDiag(); return new Promise(function () {}); });
    else watchDiag();
  } catch (err) { /* no BroadcastChannel */ }
  window.b = b;
})();
