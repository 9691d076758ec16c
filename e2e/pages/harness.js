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
    /** Sends started with startSend: {done, ok, code, message, value, msg}; `msg` is the Message object. */
    sends: [],
    /** createTextMessage({to, conversationType (default 'C2C'), payload: {text}}) + sendMessage; plain result. */
    send: function (sdkAppId, options) {
      try {
        var message = makeMessage(sdkAppId, options);
        return chats[sdkAppId].sendMessage(message).then(function (res) {
          return { ok: true, value: summary(res.data.message) };
        }, function (err) {
          var out = fail(err);
          out.data = err && err.data && err.data.message ? { message: summary(err.data.message) } : out.data;
          return out;
        });
      } catch (err) {
        return fail(err);
      }
    },
    /** Like send, without waiting: returns the index of the entry in h.sends. */
    startSend: function (sdkAppId, options) {
      var entry = { done: false, sdkAppId: sdkAppId };
      h.sends.push(entry);
      try {
        entry.msg = makeMessage(sdkAppId, options);
        track(entry, chats[sdkAppId].sendMessage(entry.msg));
      } catch (err) {
        Object.assign(entry, fail(err), { done: true });
      }
      return h.sends.length - 1;
    },
    /** startSend for each text, in one task (a burst); returns the indexes. */
    startSendMany: function (sdkAppId, to, texts) {
      return texts.map(function (text) { return h.startSend(sdkAppId, { to: to, text: text }); });
    },
    /** sendMessage() again with the Message object of h.sends[index]; returns the index of the new entry. */
    resend: function (index) {
      var first = h.sends[index];
      var entry = { done: false, sdkAppId: first.sdkAppId, msg: first.msg };
      h.sends.push(entry);
      track(entry, chats[first.sdkAppId].sendMessage(first.msg));
      return h.sends.length - 1;
    },
    /** Plain view of h.sends (without the Message objects). */
    sendResults: function () {
      return h.sends.map(function (e) {
        return { done: e.done, ok: e.ok, code: e.code, error: e.ok === false ? e.message : undefined, value: e.value, status: e.msg ? e.msg.status : null, isResend: e.msg ? e.msg.isResend : null };
      });
    },
    /** Every message MESSAGE_RECEIVED delivered to chat sdkAppId, in order. */
    received: function (sdkAppId) {
      var out = [];
      h.events.forEach(function (e) {
        if (e.sdkAppId === sdkAppId && e.name === TabChat.EVENT.MESSAGE_RECEIVED) {
          e.data.forEach(function (m) { out.push({ ID: m.ID, text: m.payload.text, flow: m.flow, from: m.from, to: m.to, sequence: m.sequence, conversationID: m.conversationID, status: m.status, time: m.time }); });
        }
      });
      return out;
    },
    /** The worker's durable outbox (IndexedDB tabchat-outbox), read-only: [{clientMsgId, from, to, text}]. */
    outbox: function () {
      return new Promise(function (resolve, reject) {
        var open = indexedDB.open('tabchat-outbox');
        open.onerror = function () { reject(open.error); };
        open.onsuccess = function () {
          var db = open.result;
          if (!db.objectStoreNames.contains('outbox')) { db.close(); resolve([]); return; }
          var request = db.transaction('outbox', 'readonly').objectStore('outbox').getAll();
          request.onerror = function () { db.close(); reject(request.error); };
          request.onsuccess = function () {
            db.close();
            resolve(request.result.map(function (e) { return { clientMsgId: e.clientMsgId, from: e.from, to: e.to, text: e.text }; }));
          };
        };
        // First open in this profile: nothing was ever queued. Do not create the store here.
        open.onupgradeneeded = function () { open.transaction.abort(); };
      }).catch(function (err) { return err && err.name === 'AbortError' ? [] : Promise.reject(err); });
    },
    names: function (sdkAppId) {
      return h.events.filter(function (e) { return e.sdkAppId === sdkAppId; }).map(function (e) { return e.name; });
    },
  };
  function makeMessage(sdkAppId, options) {
    return chats[sdkAppId].createTextMessage({ to: options.to, conversationType: options.conversationType || 'C2C', payload: { text: options.text } });
  }
  function summary(m) {
    return { ID: m.ID, text: m.payload.text, flow: m.flow, from: m.from, to: m.to, sequence: m.sequence, status: m.status, isResend: m.isResend, conversationID: m.conversationID };
  }
  function track(entry, promise) {
    promise.then(function (res) {
      Object.assign(entry, { done: true, ok: true, value: summary(res.data.message) });
    }, function (err) {
      Object.assign(entry, fail(err), { done: true, data: null });
    });
  }
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
