/*! netget handshaker: find services on a netget network from a web page,
 * through a netget bridge. No dependencies. Protocol: bridge/PROTOCOL.md.
 *
 * Classic script (sets window.netget, connected to the bridge it came from):
 *   <script src="https://bridge.example/netget-handshaker.js"
 *           data-network="production" data-token="…"></script>
 *   const records = await netget.find("DatabaseService");
 *   const stop = netget.watch("DatabaseService", { onAdd, onRemove }); // live
 *   for await (const ev of netget.watch("DatabaseService")) { … }  // the same, iterated
 *
 * ES module (React and other module code):
 *   import netget, { connect } from "https://bridge.example/netget-handshaker.mjs";
 *
 * Channels (shaped like a WebSocket):
 *   const ch = await netget.connect("ChatService", { where: { room: "lobby" } });
 *   ch.onmessage = (ev) => console.log(ev.data);
 *   ch.send("hello");
 *
 * Attributes: data-endpoint (bridge URL, default: this script's origin),
 * data-network (refuse a bridge on another network), data-token.
 */
(function (root) {
  "use strict";

  var PROTOCOL_VERSION = 1;
  var SUBPROTOCOL = "netget.v1";
  var WS_PATH = "/ws";
  // Session-level error codes after which reconnecting cannot help.
  var FATAL = { forbidden: true, bad_request: true, too_large: true };
  var RETRY_MIN_MS = 500;
  var RETRY_MAX_MS = 30000;
  var TIMEOUT_GRACE_MS = 5000;
  var DEFAULT_TIMEOUT_MS = 10000;

  // NetgetError is every error the handshaker rejects with; code is the
  // bridge's error code (not_found, timeout, forbidden, …) or one of the
  // handshaker's own: disconnected, closed, cancelled, bad_endpoint.
  class NetgetError extends Error {
    constructor(code, message) {
      super(message);
      this.name = code === "cancelled" ? "AbortError" : "NetgetError";
      this.code = code;
    }
  }

  // endpointFrom turns a bridge URL (http(s)://host[/…] or ws(s)://host[/ws])
  // into the WebSocket endpoint URL.
  function endpointFrom(base) {
    var u = new URL(base, typeof location !== "undefined" ? location.href : undefined);
    if (u.protocol === "http:") u.protocol = "ws:";
    if (u.protocol === "https:") u.protocol = "wss:";
    if (u.protocol !== "ws:" && u.protocol !== "wss:") {
      throw new NetgetError("bad_endpoint", "bridge endpoint must be an http(s) or ws(s) URL: " + base);
    }
    if (u.pathname !== WS_PATH) u.pathname = WS_PATH;
    u.search = "";
    u.hash = "";
    return u.href;
  }

  class Client {
    // opts: endpoint (required), network, token, client, lazy (connect on
    // first use instead of now).
    constructor(opts) {
      if (!opts.endpoint && !opts.lazy) throw new NetgetError("bad_endpoint", "netget: connect needs an endpoint URL");
      this.endpoint = opts.endpoint ? endpointFrom(opts.endpoint) : "";
      this.network = opts.network || "";
      this.token = opts.token || "";
      this.client = opts.client || "netget-handshaker/" + PROTOCOL_VERSION;
      this.welcome = null; // the last welcome frame while connected
      this._ws = null;
      this._started = false;
      this._closed = false;
      this._fatal = null;
      this._attempt = 0;
      this._retry = null;
      this._nextId = 1;
      this._finds = new Map(); // id → find state
      this._watches = new Map(); // id → watch state
      this._channels = new Map(); // id → Channel, opening or open
      this._listeners = { open: [], close: [], error: [] };
      var self = this;
      this._ready = new Promise(function (resolve, reject) {
        self._readyResolve = resolve;
        self._readyReject = reject;
      });
      this._ready.catch(function () {}); // rejection is reported to whoever awaits
      if (!this.endpoint) {
        // Loaded from a bundle, not from a bridge: every call says so.
        this._fatal = new NetgetError("bad_endpoint",
          "netget: this copy was not loaded from a bridge; use connect({ endpoint: \"https://bridge.example\" })");
        this._readyReject(this._fatal);
      }
      if (!opts.lazy) this._start();
    }

    // ready resolves with the first welcome frame, or rejects when the
    // bridge refuses the session for good or close() is called first.
    get ready() {
      this._start();
      return this._ready;
    }

    get version() {
      return PROTOCOL_VERSION;
    }

    // on subscribes fn to "open" (welcome frame), "close" ({code, reason,
    // reconnecting, delay}) or "error" (NetgetError); returns an unsubscribe.
    on(event, fn) {
      var list = this._listeners[event];
      if (!list) throw new TypeError("netget: unknown event " + event);
      list.push(fn);
      var self = this;
      return function () { self.off(event, fn); };
    }

    off(event, fn) {
      var list = this._listeners[event] || [];
      var i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    }

    // find resolves with the records of every verified provider of name
    // found before the search ended; it rejects with a NetgetError (code
    // not_found or timeout when there is none). opts: limit, timeout (ms),
    // signal (AbortSignal).
    find(name, opts) {
      var records = [];
      return this.findStream(name, function (rec) { records.push(rec); }, opts)
        .then(function () { return records; });
    }

    // findStream calls onResult(record, frame) for each provider as soon as
    // the bridge has verified it, and resolves with their count when the
    // search ends. Same options and errors as find.
    findStream(name, onResult, opts) {
      opts = opts || {};
      this._start();
      var self = this;
      return new Promise(function (resolve, reject) {
        if (self._closed || self._fatal) {
          reject(self._fatal || new NetgetError("closed", "netget: closed"));
          return;
        }
        var id = "f" + self._nextId++;
        var st = { id: id, name: String(name), opts: opts, onResult: onResult, resolve: resolve,
          reject: reject, count: 0, sent: false, timer: null, onAbort: null };
        if (opts.signal) {
          if (opts.signal.aborted) {
            reject(new NetgetError("cancelled", "netget: find cancelled"));
            return;
          }
          st.onAbort = function () { self._abort(st); };
          opts.signal.addEventListener("abort", st.onAbort);
        }
        var ms = (opts.timeout || (self.welcome && self.welcome.limits.find_timeout_ms) || DEFAULT_TIMEOUT_MS);
        st.timer = setTimeout(function () {
          self._settle(st, new NetgetError("timeout", "netget: no answer for " + st.name + " within " + ms + " ms"));
        }, ms + TIMEOUT_GRACE_MS);
        self._finds.set(id, st);
        if (self.welcome) self._sendFind(st);
      });
    }

    // connect(service, opts) opens a channel to a provider of service and
    // resolves with a Channel (shaped like a WebSocket) once it accepted;
    // it rejects with a NetgetError (forbidden, unavailable, not_found,
    // timeout, rate_limited, busy, …). opts: where ({key: value} the
    // provider's metadata must hold), peer (a peer ID), token (the
    // provider's channel token), timeout (ms), signal (AbortSignal).
    // connect(opts) with an object instead makes another client, as the
    // module-level connect does.
    connect(service, opts) {
      if (typeof service !== "string") return connect(service);
      opts = opts || {};
      this._start();
      var self = this;
      return new Promise(function (resolve, reject) {
        if (self._closed || self._fatal) {
          reject(self._fatal || new NetgetError("closed", "netget: closed"));
          return;
        }
        if (opts.signal && opts.signal.aborted) {
          reject(new NetgetError("cancelled", "netget: connect cancelled"));
          return;
        }
        var ch = new Channel(self, "c" + self._nextId++, service, opts, resolve, reject);
        self._channels.set(ch._id, ch);
        if (self.welcome) self._sendOpen(ch);
      });
    }

    // watch follows the verified providers of name until stopped: it calls
    // opts.onAdd(record, frame) for each provider there is and each that
    // appears or republishes, opts.onRemove(peer, reason) for each that
    // goes (withdrawn, expired, unhealthy, deregistered, unmatched, or
    // disconnected: the connection to the bridge dropped; the watch
    // resubscribes on its own after reconnecting), and opts.onError(err)
    // if the watch ends with an error. opts.where ({key: value}) shows only
    // providers with that metadata; opts.limit bounds how many at once.
    // It returns stop(), which is also async-iterable:
    //   for await (const ev of netget.watch("X")) // {type: "add", peer, record} or {type: "remove", peer, reason}
    // Leaving the loop stops the watch.
    watch(name, opts) {
      opts = opts || {};
      this._start();
      var st = new Watch(this, "w" + this._nextId++, String(name), opts);
      if (this._closed || this._fatal) {
        var err = this._fatal || new NetgetError("closed", "netget: closed");
        setTimeout(function () { st.end(err); });
      } else {
        this._watches.set(st.id, st);
        if (this.welcome) this._sendWatch(st);
      }
      var stop = function () { st.stop(); };
      stop[Symbol.asyncIterator] = function () { return st.iterate(); };
      stop.id = st.id;
      return stop;
    }

    // close ends the session for good and rejects pending finds.
    close() {
      if (this._closed) return;
      this._closed = true;
      clearTimeout(this._retry);
      var err = new NetgetError("closed", "netget: closed");
      this._readyReject(err);
      this._rejectAll(err, false);
      this._endWatches(err);
      this._dropChannels(1000, "closed", err);
      if (this._ws) {
        var ws = this._ws;
        this._ws = null;
        this.welcome = null;
        ws.close(1000, "closed");
        this._emit("close", { code: 1000, reason: "closed", reconnecting: false });
      }
    }

    _start() {
      if (this._started || this._closed || !this.endpoint) return;
      this._started = true;
      this._connect();
    }

    _connect() {
      var ws;
      try {
        ws = new WebSocket(this.endpoint, SUBPROTOCOL);
      } catch (e) {
        this._giveUp(new NetgetError("bad_endpoint", "netget: cannot open " + this.endpoint + ": " + e.message));
        return;
      }
      var self = this;
      this._ws = ws;
      ws.binaryType = "arraybuffer"; // binary channel messages
      ws.onopen = function () {
        var hello = { type: "hello", version: PROTOCOL_VERSION, client: self.client };
        if (self.token) hello.token = self.token;
        if (self.network) hello.network = self.network;
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = function (ev) { if (ws === self._ws) self._onFrame(ev.data); };
      ws.onclose = function (ev) { if (ws === self._ws) self._onClose(ev); };
    }

    _onFrame(data) {
      if (typeof data !== "string") {
        this._onBinary(data);
        return;
      }
      var f;
      try {
        f = JSON.parse(data);
      } catch (e) {
        return; // the bridge only sends JSON; ignore anything else
      }
      var st = f.id ? this._finds.get(f.id) : null;
      var wst = f.id && !st ? this._watches.get(f.id) : null;
      if (wst) {
        this._onWatchFrame(wst, f);
        return;
      }
      switch (f.type) {
        case "welcome":
          this.welcome = f;
          this._attempt = 0;
          this._readyResolve(f);
          this._emit("open", f);
          var self = this;
          this._finds.forEach(function (s) { if (!s.sent) self._sendFind(s); });
          this._watches.forEach(function (w) { if (!w.sent) self._sendWatch(w); });
          this._channels.forEach(function (c) { if (!c._sent) self._sendOpen(c); });
          break;
        case "opened":
        case "message":
        case "close":
          var ch = f.id ? this._channels.get(f.id) : null;
          if (ch) ch._onFrame(f);
          break;
        case "result":
          if (st) {
            st.count++;
            try { st.onResult(f.record, f); } catch (e) { setTimeout(function () { throw e; }); }
          }
          break;
        case "done":
          if (st) this._settle(st, null);
          break;
        case "error":
          var err = new NetgetError(f.code, f.message);
          var chan = f.id ? this._channels.get(f.id) : null;
          if (st) {
            this._settle(st, err);
          } else if (chan) {
            chan._onError(err);
          } else if (!f.id) {
            if (FATAL[f.code]) this._fatal = err;
            this._emit("error", err);
          }
          break;
      }
    }

    _onClose(ev) {
      this._ws = null;
      this.welcome = null;
      if (this._closed) return;
      if (this._fatal) {
        this._giveUp(this._fatal, ev);
        return;
      }
      // Finds sent on this connection are lost with it; queued ones wait.
      var lost = new NetgetError("disconnected", "netget: connection to the bridge closed (" + ev.code + ")");
      this._rejectAll(lost, true);
      // Watches outlive the connection: what they showed is unknown now,
      // and the next welcome subscribes them again, with a fresh snapshot.
      this._watches.forEach(function (w) { w.sent = false; w.drop("disconnected"); });
      // So are channels: they close (1006), opens not yet sent wait.
      this._dropChannels(1006, "connection to the bridge lost", lost, true);
      var base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, this._attempt++));
      var delay = Math.round(base / 2 + Math.random() * base / 2);
      this._emit("close", { code: ev.code, reason: ev.reason, reconnecting: true, delay: delay });
      var self = this;
      this._retry = setTimeout(function () { self._connect(); }, delay);
    }

    _giveUp(err, ev) {
      this._closed = true;
      this._readyReject(err);
      this._rejectAll(err, false);
      this._endWatches(err);
      this._dropChannels(ev ? ev.code : 1006, "connection to the bridge lost", err);
      this._emit("close", { code: ev ? ev.code : 0, reason: ev ? ev.reason : "", reconnecting: false });
    }

    _sendFind(st) {
      // A socket that is closing loses what is sent: keep the find queued
      // for the next welcome instead.
      if (!this._ws || this._ws.readyState !== 1) return;
      var f = { type: "find", id: st.id, service: st.name };
      if (st.opts.limit) f.limit = st.opts.limit;
      if (st.opts.timeout) f.timeout_ms = st.opts.timeout;
      st.sent = true;
      this._ws.send(JSON.stringify(f));
    }

    _sendWatch(st) {
      if (!this._ws || this._ws.readyState !== 1) return;
      var f = { type: "watch", id: st.id, service: st.name };
      if (st.opts.where) f.where = st.opts.where;
      if (st.opts.limit) f.limit = st.opts.limit;
      st.sent = true;
      this._ws.send(JSON.stringify(f));
    }

    _onWatchFrame(st, f) {
      switch (f.type) {
        case "result":
          st.add(f.record, f);
          break;
        case "removed":
          st.remove(f.peer, f.reason);
          break;
        case "done": // the bridge's node stopped watching
          st.end(null);
          break;
        case "error":
          st.end(new NetgetError(f.code, f.message));
          break;
      }
    }

    _endWatches(err) {
      Array.from(this._watches.values()).forEach(function (w) { w.end(err); });
    }

    _abort(st) {
      if (st.sent && this._ws && this.welcome) {
        this._ws.send(JSON.stringify({ type: "cancel", id: st.id }));
      }
      this._settle(st, new NetgetError("cancelled", "netget: find cancelled"));
    }

    // _settle ends a find: resolved with its count, or rejected with err.
    _settle(st, err) {
      if (!this._finds.delete(st.id)) return;
      clearTimeout(st.timer);
      if (st.onAbort) st.opts.signal.removeEventListener("abort", st.onAbort);
      if (err) {
        if (err.code === "timeout" && st.sent && this._ws && this.welcome) {
          this._ws.send(JSON.stringify({ type: "cancel", id: st.id }));
        }
        st.reject(err);
      } else {
        st.resolve(st.count);
      }
    }

    _rejectAll(err, sentOnly) {
      var self = this;
      Array.from(this._finds.values()).forEach(function (st) {
        if (!sentOnly || st.sent) self._settle(st, err);
      });
    }

    _sendOpen(ch) {
      if (!this._ws || this._ws.readyState !== 1) return;
      var f = { type: "open", id: ch._id, service: ch.service };
      var o = ch._opts;
      if (o.peer) f.peer = String(o.peer);
      if (o.where) f.where = o.where;
      if (o.token) f.token = String(o.token);
      ch._sent = true;
      this._ws.send(JSON.stringify(f));
    }

    // _onBinary handles a binary frame: kind 0x01, id length, id, data.
    _onBinary(buf) {
      var b = new Uint8Array(buf);
      if (b.length < 2 || b[0] !== 1 || b.length < 2 + b[1]) return;
      var id = String.fromCharCode.apply(null, b.subarray(2, 2 + b[1]));
      var ch = this._channels.get(id);
      if (ch) ch._onMessage(buf.slice(2 + b[1]));
    }

    // _dropChannels closes every channel with code: a pending open
    // rejects with err; sentOnly keeps opens not yet sent queued.
    _dropChannels(code, reason, err, sentOnly) {
      Array.from(this._channels.values()).forEach(function (ch) {
        if (!sentOnly || ch._sent) ch._ended(code, reason, err, false);
      });
    }

    _emit(event, arg) {
      this._listeners[event].slice().forEach(function (fn) {
        try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
      });
    }
  }

  // A base class with addEventListener and dispatchEvent: the platform's
  // EventTarget where there is one (browsers, Node 15+).
  var Base = typeof EventTarget === "function" ? EventTarget : class {
    constructor() { this._l = {}; }
    addEventListener(t, fn) { (this._l[t] = this._l[t] || []).push(fn); }
    removeEventListener(t, fn) { var l = this._l[t] || []; var i = l.indexOf(fn); if (i >= 0) l.splice(i, 1); }
    dispatchEvent(ev) {
      var self = this;
      (this._l[ev.type] || []).slice().forEach(function (fn) { fn.call(self, ev); });
      return true;
    }
  };

  function makeEvent(type, props) {
    var ev;
    if (type === "message" && typeof MessageEvent === "function") {
      ev = new MessageEvent("message", { data: props.data });
    } else if (type === "close" && typeof CloseEvent === "function") {
      ev = new CloseEvent("close", { code: props.code, reason: props.reason, wasClean: props.wasClean });
    } else {
      ev = typeof Event === "function" ? new Event(type) : { type: type };
      Object.keys(props).forEach(function (k) { Object.defineProperty(ev, k, { value: props[k], enumerable: true }); });
    }
    return ev;
  }

  var textEncoder = typeof TextEncoder === "function" ? new TextEncoder() : null;

  // Channel is one channel to a provider, shaped like a WebSocket:
  // readyState, send, close, onopen / onmessage / onerror / onclose and
  // addEventListener; plus peer and record (the provider's verified
  // record), and async iteration over message data. Binary messages
  // arrive as ArrayBuffers.
  class Channel extends Base {
    constructor(client, id, service, opts, resolve, reject) {
      super();
      this._client = client;
      this._id = id;
      this._opts = opts;
      this._resolve = resolve;
      this._reject = reject;
      this._sent = false;
      this._iters = [];
      this.service = service;
      this.readyState = Channel.CONNECTING;
      this.peer = null;
      this.record = null;
      this.protocol = "";
      this.extensions = "";
      this.binaryType = "arraybuffer";
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.onclose = null;
      var self = this;
      var ms = opts.timeout || DEFAULT_TIMEOUT_MS;
      this._timer = setTimeout(function () {
        self._fail(new NetgetError("timeout", "netget: " + service + " did not open within " + ms + " ms"));
      }, ms + TIMEOUT_GRACE_MS);
      if (opts.signal) {
        this._onAbort = function () { self._fail(new NetgetError("cancelled", "netget: connect cancelled")); };
        opts.signal.addEventListener("abort", this._onAbort);
      }
    }

    get url() { return this._client.endpoint + "#" + this.service; }

    // bufferedAmount is what the page's WebSocket to the bridge has not
    // sent yet, all channels together.
    get bufferedAmount() { return this._client._ws ? this._client._ws.bufferedAmount : 0; }

    // send passes a string (a text message) or an ArrayBuffer / typed array
    // (a binary message) to the provider. Throws while CONNECTING; does
    // nothing once closing, as a WebSocket.
    send(data) {
      if (this.readyState === Channel.CONNECTING) {
        throw new NetgetError("not_open", "netget: the channel is not open yet");
      }
      var ws = this._client._ws;
      if (this.readyState !== Channel.OPEN || !ws) return;
      if (typeof data === "string") {
        ws.send(JSON.stringify({ type: "send", id: this._id, data: data }));
        return;
      }
      var bytes;
      if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
      else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      else throw new TypeError("netget: send takes a string, an ArrayBuffer or a typed array");
      var id = this._id;
      var frame = new Uint8Array(2 + id.length + bytes.length);
      frame[0] = 1;
      frame[1] = id.length;
      for (var i = 0; i < id.length; i++) frame[2 + i] = id.charCodeAt(i);
      frame.set(bytes, 2 + id.length);
      ws.send(frame);
    }

    // close(code, reason) ends the channel: code 1000 (default) or
    // 3000-4999, reason at most 123 bytes, as a WebSocket's. The close
    // event follows once the bridge confirmed.
    close(code, reason) {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new NetgetError("bad_request", "netget: close code must be 1000 or 3000-4999");
      }
      if (reason !== undefined && textEncoder && textEncoder.encode(String(reason)).length > 123) {
        throw new NetgetError("bad_request", "netget: close reason is at most 123 bytes");
      }
      if (this.readyState >= Channel.CLOSING) return;
      this.readyState = Channel.CLOSING;
      var ws = this._client._ws;
      if (!this._sent || !ws || ws.readyState !== 1) {
        this._ended(code || 1000, reason || "", new NetgetError("cancelled", "netget: closed before it opened"), true);
        return;
      }
      var f = { type: "close", id: this._id };
      if (code) f.code = code;
      if (reason) f.reason = String(reason);
      ws.send(JSON.stringify(f));
    }

    // for await (const data of channel): each message's data, until it closes.
    [Symbol.asyncIterator]() {
      var self = this;
      var it = { buf: [], wait: null, done: self.readyState === Channel.CLOSED };
      this._iters.push(it);
      return {
        next: function () {
          if (it.buf.length) return Promise.resolve({ value: it.buf.shift(), done: false });
          if (it.done) return Promise.resolve({ value: undefined, done: true });
          return new Promise(function (resolve) { it.wait = resolve; });
        },
        return: function () {
          it.done = true;
          it.buf = [];
          self._iters = self._iters.filter(function (x) { return x !== it; });
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]: function () { return this; }
      };
    }

    _onFrame(f) {
      if (f.type === "opened" && this.readyState === Channel.CONNECTING) {
        this.readyState = Channel.OPEN;
        this.peer = f.peer;
        this.record = f.record;
        this._settleOpen(null);
        this._dispatch("open", {});
      } else if (f.type === "message") {
        this._onMessage(f.data);
      } else if (f.type === "close") {
        this._ended(f.code || 1000, f.reason || "", new NetgetError("closed", "netget: channel closed (" + f.code + ")"), true);
      }
    }

    _onMessage(data) {
      if (this.readyState !== Channel.OPEN && this.readyState !== Channel.CLOSING) return;
      this._iters.forEach(function (it) {
        if (it.wait) { var w = it.wait; it.wait = null; w({ value: data, done: false }); } else it.buf.push(data);
      });
      this._dispatch("message", { data: data });
    }

    // _onError: an error frame for this channel. Before opened, the open
    // failed; after, an error event (a close frame follows when it ends).
    _onError(err) {
      if (this.readyState === Channel.CONNECTING) {
        this._fail(err);
        return;
      }
      this._dispatch("error", { error: err, code: err.code, message: err.message });
    }

    _fail(err) {
      if (this.readyState === Channel.CONNECTING && this._sent) {
        var ws = this._client._ws;
        if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "close", id: this._id }));
      }
      this._ended(1006, err.message, err, false);
    }

    // _ended: the channel is over. A pending connect rejects with err;
    // an open channel gets its close event.
    _ended(code, reason, err, clean) {
      if (this.readyState === Channel.CLOSED) return;
      var wasOpen = this._resolve === null;
      this.readyState = Channel.CLOSED;
      this._client._channels.delete(this._id);
      this._settleOpen(err);
      this._iters.forEach(function (it) {
        it.done = true;
        if (it.wait) { var w = it.wait; it.wait = null; w({ value: undefined, done: true }); }
      });
      if (wasOpen) this._dispatch("close", { code: code, reason: reason, wasClean: clean });
    }

    _settleOpen(err) {
      if (!this._resolve) return;
      clearTimeout(this._timer);
      if (this._onAbort) this._opts.signal.removeEventListener("abort", this._onAbort);
      var resolve = this._resolve, reject = this._reject;
      this._resolve = this._reject = null;
      if (err) reject(err); else resolve(this);
    }

    _dispatch(type, props) {
      var ev = makeEvent(type, props);
      var fn = this["on" + type];
      if (typeof fn === "function") {
        try { fn.call(this, ev); } catch (e) { setTimeout(function () { throw e; }); }
      }
      this.dispatchEvent(ev);
    }
  }
  Channel.CONNECTING = 0;
  Channel.OPEN = 1;
  Channel.CLOSING = 2;
  Channel.CLOSED = 3;

  // connect(opts) makes a client; connect(service, opts) is the default
  // client's connect (see netget-handshaker.mjs) and needs one.
  // Watch is one netget.watch: what it has shown, its callbacks and its
  // iterators. Each iterator queues at most one event per peer (a newer
  // one replaces it; an add and a remove the loop never saw cancel out),
  // so a loop that lags holds no more than twice the providers shown.
  class Watch {
    constructor(client, id, name, opts) {
      this.client = client;
      this.id = id;
      this.name = name;
      this.opts = opts;
      this.sent = false;
      this.known = new Map(); // peer → record shown
      this.iters = [];
      this.ended = false;
      this.error = null;
    }

    add(record, frame) {
      this.known.set(record.peer, record);
      this._call(this.opts.onAdd, record, frame);
      this._push({ type: "add", peer: record.peer, record: record });
    }

    remove(peer, reason) {
      if (!this.known.delete(peer)) return;
      this._call(this.opts.onRemove, peer, reason);
      this._push({ type: "remove", peer: peer, reason: reason });
    }

    // drop removes every provider shown, with reason.
    drop(reason) {
      var self = this;
      Array.from(this.known.keys()).forEach(function (p) { self.remove(p, reason); });
    }

    // stop ends the watch at the page's wish: the bridge is told, loops end.
    stop() {
      var c = this.client;
      if (this.sent && c._ws && c.welcome && c._watches.has(this.id)) {
        c._ws.send(JSON.stringify({ type: "cancel", id: this.id }));
      }
      this.end(null);
    }

    // end forgets the watch; err (if any) goes to onError and the loops.
    end(err) {
      if (this.ended) return;
      this.ended = true;
      this.error = err;
      this.client._watches.delete(this.id);
      if (err) this._call(this.opts.onError, err);
      this.iters.forEach(function (it) { it.wake(); });
    }

    iterate() {
      var self = this;
      var it = { queue: new Map(), seen: new Set(), waiting: null };
      it.wake = function () {
        if (!it.waiting || (it.queue.size === 0 && !self.ended)) return;
        var w = it.waiting;
        it.waiting = null;
        self._next(it).then(w.resolve, w.reject);
      };
      this.iters.push(it);
      return {
        next: function () {
          return new Promise(function (resolve, reject) {
            if (it.queue.size > 0 || self.ended) {
              self._next(it).then(resolve, reject);
            } else {
              it.waiting = { resolve: resolve, reject: reject };
            }
          });
        },
        return: function () {
          self.stop();
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]: function () { return this; }
      };
    }

    _next(it) {
      var first = it.queue.entries().next();
      if (!first.done) {
        it.queue.delete(first.value[0]);
        var ev = first.value[1];
        if (ev.type === "add") it.seen.add(ev.peer); else it.seen.delete(ev.peer);
        return Promise.resolve({ value: ev, done: false });
      }
      var i = this.iters.indexOf(it);
      if (i >= 0) this.iters.splice(i, 1);
      return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }

    _push(ev) {
      this.iters.forEach(function (it) {
        it.queue.delete(ev.peer);
        if (ev.type === "add" || it.seen.has(ev.peer)) it.queue.set(ev.peer, ev);
        it.wake();
      });
    }

    _call(fn, a, b) {
      if (!fn) return;
      try { fn(a, b); } catch (e) { setTimeout(function () { throw e; }); }
    }
  }

  function connect(opts) {
    return new Client(opts || {});
  }

  var api = {
    PROTOCOL_VERSION: PROTOCOL_VERSION,
    SUBPROTOCOL: SUBPROTOCOL,
    NetgetError: NetgetError,
    Channel: Channel,
    connect: connect,
    endpointFrom: endpointFrom
  };
  // For the ES module wrapper (netget-handshaker.mjs), which imports this
  // file: a registry symbol, invisible to the page's globals.
  root[Symbol.for("netget.handshaker")] = api;
  if (typeof module === "object" && module && module.exports) {
    module.exports = api; // CommonJS bundlers
  }

  // Loaded by <script src>: connect to the bridge the script came from.
  var script = typeof document !== "undefined" ? document.currentScript : null;
  if (script && script.src && !(root.netget && root.netget.connect)) {
    var ds = script.dataset;
    var client = connect({ endpoint: ds.endpoint || script.src, network: ds.network, token: ds.token });
    client.NetgetError = NetgetError; // client.connect(opts) still makes another client
    root.netget = client;
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
