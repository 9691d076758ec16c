// Bench harness, loaded after a build that defines the global `TabChat` (the real drop-in
// build or the direct-WebSocket baseline). bench/browser-bench.ts drives it through
// `window.b`. Every timestamp is `performance.timeOrigin + performance.now()` (ms since the
// epoch, sub-ms resolution), comparable with Node's value of the same expression.
(function () {
  'use strict';
  function now() { return performance.timeOrigin + performance.now(); }
  /** sdkAppId → {chat, ready: [times], kicked: [times], errors: [...], waiters}. */
  var chats = {};
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
    /** TabChat.create + listeners that timestamp SDK_READY and KICKED_OUT. */
    create: function (sdkAppId, extra) {
      var options = Object.assign({ SDKAppID: sdkAppId }, extra || {});
      var chat = TabChat.create(options);
      var e = { chat: chat, readyWait: waiter(), kickWait: waiter(), kicks: 0 };
      chats[sdkAppId] = e;
      chat.on(TabChat.EVENT.SDK_READY, function () { e.readyWait.resolve(now()); });
      chat.on(TabChat.EVENT.KICKED_OUT, function () { e.kicks++; e.kickWait.resolve(now()); });
      chat.on(TabChat.EVENT.ERROR, function (event) { b.errors.push(event.data); });
      return true;
    },
    /**
     * login() → SDK_READY: {t0 (just before login()), resolved (login promise), ready (SDK_READY)}.
     * `create` (optional) creates the chat in the same task first (a new tab's first call).
     */
    login: function (sdkAppId, userID, userSig, create) {
      if (create) b.create(sdkAppId, create);
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
    workerState: function () { return TabChat.getWorkerState ? TabChat.getWorkerState() : null; },
    /** Worker build only: attach this page to the worker (SharedWorker connect, tab lock, register, one getState); ms taken. */
    attach: function () {
      var t0 = now();
      return TabChat.getWorkerState().then(function () { return now() - t0; });
    },
  };
  // Worker errors are invisible to Playwright: surface them (the bench counts them).
  try {
    var diag = new BroadcastChannel('tabchat-diag');
    diag.onmessage = function (event) {
      if (event.data && event.data.level === 'error') b.errors.push({ worker: event.data.text });
    };
  } catch (err) { /* no BroadcastChannel */ }
  window.b = b;
})();
