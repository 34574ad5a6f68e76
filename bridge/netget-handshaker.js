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
      if (!opts.endpoint) throw new NetgetError("bad_endpoint", "netget: connect needs an endpoint URL");
      this.endpoint = endpointFrom(opts.endpoint);
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
      this._listeners = { open: [], close: [], error: [] };
      var self = this;
      this._ready = new Promise(function (resolve, reject) {
        self._readyResolve = resolve;
        self._readyReject = reject;
      });
      this._ready.catch(function () {}); // rejection is reported to whoever awaits
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
      if (this._ws) {
        var ws = this._ws;
        this._ws = null;
        this.welcome = null;
        ws.close(1000, "closed");
        this._emit("close", { code: 1000, reason: "closed", reconnecting: false });
      }
    }

    _start() {
      if (this._started || this._closed) return;
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
          if (st) {
            this._settle(st, err);
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
      this._rejectAll(new NetgetError("disconnected",
        "netget: connection to the bridge closed (" + ev.code + ")"), true);
      // Watches outlive the connection: what they showed is unknown now,
      // and the next welcome subscribes them again, with a fresh snapshot.
      this._watches.forEach(function (w) { w.sent = false; w.drop("disconnected"); });
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

    _emit(event, arg) {
      this._listeners[event].slice().forEach(function (fn) {
        try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
      });
    }
  }

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
    client.connect = connect;
    client.NetgetError = NetgetError;
    root.netget = client;
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
