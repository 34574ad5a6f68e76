// The devnet page: watches (or, on a bridge without the watch feature,
// finds) through the handshaker (window.netget, loaded by its own <script>
// tag as a user's page would), so the providers table follows the network
// live, and shows the devnet's state from /devnet.json. Plain JavaScript,
// no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const short = (id) => (id ? id.slice(0, 8) + "…" + id.slice(-6) : "?");
let state = null; // latest /devnet.json
let search = null; // AbortController of the find in flight
let live = null; // stop() of the watch in flight
const MAX_CHANGES = 8; // changes listed under the table

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function setConn(kind, text) {
  const b = $("#conn");
  b.className = "badge " + kind;
  b.textContent = text;
}

// health says what the registries think of a provider: healthy while every
// registry that holds its records is happy with it.
function health(peer) {
  if (!state) return ["checking", "…"];
  const node = state.nodes.find((n) => n.peer === peer);
  if (node && node.state !== "running") return [node.state === "withdrawn" ? "withdrawn" : "crashed", node.state];
  const views = state.registries.flatMap((r) => r.providers.filter((p) => p.peer === peer));
  if (views.length === 0) return ["checking", "unknown"];
  if (views.every((v) => v.healthy)) return ["healthy", "healthy"];
  return ["unhealthy", "unhealthy"];
}

function meta(m) {
  return el("div", {}, ...Object.keys(m || {}).sort().map((k) => el("span", { class: "kv", text: k + "=" + m[k] })));
}

// addResult shows one verified provider: when says when the page got it,
// the frame which path found it and when, at the peer.
function addResult(rec, frame, when) {
  const [cls, text] = health(rec.peer);
  const row = el("tr", { "data-peer": rec.peer },
    el("td", {}, el("code", { text: short(rec.peer), title: rec.peer })),
    el("td", {}, ...rec.addrs.map((a) => el("div", {}, el("code", { text: a })))),
    el("td", {}, meta(rec.meta)),
    el("td", {}, el("span", { class: "badge " + cls, text })),
    el("td", {}, el("div", { text: when }),
      el("div", { class: "muted small", text: "via " + (frame.source || "?") + ", " + (frame.elapsed_ms || 0).toFixed(2) + " ms at the peer" })));
  $("#results tbody").append(row);
  $("#results").hidden = false;
}

function removeRow(peer) {
  for (const row of document.querySelectorAll("#results tbody tr")) {
    if (row.dataset.peer === peer) row.remove();
  }
}

// change lists one add or remove under the table, newest first.
function change(kind, peer, text) {
  const li = el("li", { class: kind }, el("span", { class: "muted", text: new Date().toLocaleTimeString() + " " }),
    el("strong", { text: kind === "add" ? "+ " : "− " }), el("code", { text: short(peer), title: peer }), " " + text);
  $("#changes").prepend(li);
  while ($("#changes").children.length > MAX_CHANGES) $("#changes").lastChild.remove();
}

// show follows name: live with a watch when the bridge has the feature,
// else with one find.
function show(name) {
  if (search) search.abort();
  if (live) live();
  search = live = null;
  $("#results tbody").replaceChildren();
  $("#results").hidden = true;
  $("#changes").replaceChildren();
  const features = (netget.welcome && netget.welcome.features) || [];
  if (features.includes("watch")) watch(name);
  else find(name);
}

function watch(name) {
  $("#status").textContent = "Watching " + name + "…";
  const t0 = performance.now();
  const status = () => {
    const n = document.querySelectorAll("#results tbody tr").length;
    $("#results").hidden = n === 0;
    $("#status").textContent = n + " live provider" + (n === 1 ? "" : "s") + " of " + name +
      " · the list follows them as they come and go";
  };
  let first = true;
  live = netget.watch(name, {
    onAdd: (rec, frame) => {
      const known = !!document.querySelector(`#results tbody tr[data-peer="${rec.peer}"]`);
      removeRow(rec.peer);
      addResult(rec, frame, first ? (performance.now() - t0).toFixed(1) + " ms" : "at " + new Date().toLocaleTimeString());
      if (!known && !first) change("add", rec.peer, "provides " + name);
      status();
    },
    onRemove: (peer, reason) => {
      removeRow(peer);
      change("remove", peer, reason);
      status();
    },
    onError: (err) => { $("#status").textContent = "Watch failed: " + err.code + " " + err.message; },
  });
  // Rows of the snapshot say how long it took; later ones when they came.
  setTimeout(() => { first = false; }, 1000);
}

async function find(name) {
  search = new AbortController();
  $("#status").textContent = "Finding " + name + "…";
  const t0 = performance.now();
  try {
    const n = await netget.findStream(name, (rec, frame) => addResult(rec, frame, (performance.now() - t0).toFixed(1) + " ms"),
      { signal: search.signal, timeout: 5000 });
    $("#status").textContent = n + " verified provider" + (n === 1 ? "" : "s") + " of " + name + " in " +
      (performance.now() - t0).toFixed(1) + " ms";
  } catch (err) {
    if (err.code === "cancelled") return;
    $("#status").textContent = err.code === "not_found" || err.code === "timeout"
      ? "No provider of " + name + " right now (" + err.code + ")."
      : "Find failed: " + (err.code || "") + " " + err.message;
  }
}

function renderState() {
  $("#netname").textContent = state.network + (state.churn ? " · churn on" : "");
  $("#registries").replaceChildren(...state.registries.map((r) => el("li", {},
    el("div", { class: "row" }, el("code", { text: short(r.peer), title: r.peer }), el("span", { class: "muted", text: r.records + " records" })),
    el("div", {}, el("code", { class: "muted", text: (r.addrs[0] || "") + "/p2p/" + short(r.peer) })),
    el("div", { class: "muted", text: r.providers.filter((p) => p.healthy).length + " healthy, " +
      r.providers.filter((p) => !p.healthy).length + " unhealthy providers" }))));
  $("#nodes").replaceChildren(...state.nodes.map((n) => {
    const [cls, text] = health(n.peer);
    return el("li", {},
      el("div", { class: "row" }, el("strong", { text: n.service }), el("span", { class: "badge " + cls, text })),
      el("div", {}, el("code", { class: "muted", text: short(n.peer), title: n.peer })),
      meta(n.meta));
  }));
  const services = [...new Set(state.nodes.map((n) => n.service))].sort();
  $("#chips").replaceChildren(...services.map((s) => {
    const b = el("button", { class: "chip", type: "button", text: s });
    b.onclick = () => { $("#name").value = s; show(s); };
    return b;
  }));
  // Keep the health column of shown results current.
  for (const row of document.querySelectorAll("#results tbody tr")) {
    const [cls, text] = health(row.dataset.peer);
    const badge = row.querySelector(".badge");
    badge.className = "badge " + cls;
    badge.textContent = text;
  }
}

async function poll() {
  try {
    const r = await fetch("/devnet.json", { cache: "no-store" });
    if (r.ok) {
      state = await r.json();
      renderState();
    }
  } catch (_) { /* the devnet is stopping; the connection badge says so */ }
}

netget.on("open", () => setConn("open", "connected"));
netget.on("close", (e) => setConn(e.reconnecting ? "connecting" : "closed", e.reconnecting ? "reconnecting…" : "disconnected"));
netget.on("error", (e) => setConn("closed", "error: " + e.code));
$("#search").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("#name").value.trim();
  if (name) show(name);
});
netget.ready.then(() => {
  setConn("open", "connected");
  show($("#name").value.trim()); // show something at once
}, (e) => setConn("closed", "refused: " + e.code));
poll();
setInterval(poll, 2000);
