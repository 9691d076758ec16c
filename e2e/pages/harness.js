// Test harness loaded by the e2e pages after tabchat (global TabChat). Playwright drives it
// through `window.h`; every call returns plain data ({ok, value} | {ok: false, code, message}).
(function () {
  'use strict';
  var chats = {};
  var h = {
    /** Every event of every chat: {sdkAppId, name, data, at}. */
    events: [],
    /** Every line the worker mirrored on the diag channel. */
    diag: [],
    create: function (options) {
      try {
        var chat = TabChat.create(options);
        if (chat === null) return { ok: true, value: null };
        var id = Number(options.SDKAppID);
        var known = chats[id] === chat;
        chats[id] = chat;
        if (!known) {
          Object.keys(TabChat.EVENT).forEach(function (key) {
            var name = TabChat.EVENT[key];
            chat.on(name, function (event) {
              h.events.push({ sdkAppId: id, name: event.name, data: event.data === undefined ? null : JSON.parse(JSON.stringify(event.data)), at: Date.now(), ready: chat.isReady() });
              render();
            });
          });
        }
        return { ok: true, value: known ? 'same' : 'new' };
      } catch (err) {
        return fail(err);
      }
    },
    sig: function (sdkAppId, userID, expire) {
      var url = '/dev/usersig?sdkappid=' + sdkAppId + '&userID=' + encodeURIComponent(userID) + (expire ? '&expire=' + expire : '');
      return fetch(url).then(function (res) { return res.json(); }).then(function (body) { return body.userSig; });
    },
    login: function (sdkAppId, userID, options) {
      options = options || {};
      var chat = chats[sdkAppId];
      var sigPromise = options.userSig ? Promise.resolve(options.userSig) : h.sig(sdkAppId, userID, options.expire);
      return sigPromise.then(function (userSig) {
        return wrap(chat.login({ userID: userID, userSig: userSig }).then(function (res) {
          return { response: res, readyInThen: chat.isReady() };
        }));
      });
    },
    /** Two logins without waiting: the second must be refused with 2025. */
    doubleLogin: function (sdkAppId, userID) {
      var chat = chats[sdkAppId];
      return h.sig(sdkAppId, userID).then(function (userSig) {
        var first = wrap(chat.login({ userID: userID, userSig: userSig }));
        var second = wrap(chat.login({ userID: userID, userSig: userSig }));
        return Promise.all([first, second]);
      });
    },
    logout: function (sdkAppId) { return wrap(chats[sdkAppId].logout()); },
    destroy: function (sdkAppId) { return wrap(chats[sdkAppId].destroy()); },
    isReady: function (sdkAppId) { return chats[sdkAppId].isReady(); },
    loginUser: function (sdkAppId) { return chats[sdkAppId].getLoginUser(); },
    serverTime: function (sdkAppId) {
      var value = chats[sdkAppId].getServerTime();
      if (value && typeof value.then === 'function') return wrap(value);
      return { ok: true, value: value };
    },
    call: function (sdkAppId, method, args) {
      try {
        var result = chats[sdkAppId][method].apply(chats[sdkAppId], args || []);
        if (result && typeof result.then === 'function') return wrap(result);
        return { ok: true, value: result === undefined ? null : result };
      } catch (err) {
        return fail(err);
      }
    },
    workerState: function () { return wrap(TabChat.getWorkerState()); },
    names: function (sdkAppId) {
      return h.events.filter(function (e) { return e.sdkAppId === sdkAppId; }).map(function (e) { return e.name; });
    },
  };
  function fail(err) {
    return { ok: false, code: err && err.code, message: err && err.message, data: err && err.data, isError: err instanceof Error };
  }
  function wrap(promise) {
    return promise.then(function (value) { return { ok: true, value: value === undefined ? null : value }; }, fail);
  }
  function render() {
    var el = document.getElementById('state');
    if (el) el.textContent = JSON.stringify(h.events.map(function (e) { return e.sdkAppId + ' ' + e.name; }));
  }
  var diag = new BroadcastChannel('tabchat-diag');
  diag.onmessage = function (event) {
    h.diag.push(event.data);
    // Worker errors are invisible to Playwright: surface them as page errors so tests fail.
    if (event.data && event.data.level === 'error') console.error('[tabchat-worker] ' + event.data.text);
  };
  window.h = h;
  render();
})();
