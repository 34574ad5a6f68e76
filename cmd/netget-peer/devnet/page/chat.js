// The devnet page's chat panel: a channel to ChatService through the
// handshaker (netget.connect), WebSocket-shaped. Every page in the room
// gets every message; a closed channel is reopened after a pause.
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);
  const names = ["ada", "alan", "grace", "linus", "barbara", "ken", "radia", "dennis"];
  $("#chatname").value = names[Math.floor(Math.random() * names.length)] + "-" + Math.floor(Math.random() * 100);
  let ch = null;

  function log(text, cls) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    $("#chatlog").append(li);
    $("#chatlog").scrollTop = $("#chatlog").scrollHeight;
  }

  function state(kind, text) {
    $("#chatstate").className = "badge " + kind;
    $("#chatstate").textContent = text;
  }

  async function join() {
    state("connecting", "joining…");
    try {
      ch = await netget.connect("ChatService", { where: { room: "lobby" } });
    } catch (e) {
      state("closed", e.code);
      log("could not join: " + e.code + ": " + e.message, "system");
      setTimeout(join, 3000);
      return;
    }
    window.devnetChat = ch; // for the browser test
    state("open", "in the lobby");
    $("#chatpeer").textContent = "provider " + ch.peer;
    log("joined the lobby through " + ch.peer.slice(0, 8) + "…", "system");
    ch.onmessage = (ev) => log(typeof ev.data === "string" ? ev.data : "(" + ev.data.byteLength + " bytes)");
    ch.onclose = (ev) => {
      state("closed", "closed " + ev.code);
      log("channel closed: " + ev.code + " " + ev.reason, "system");
      ch = null;
      setTimeout(join, 2000);
    };
  }

  $("#chatform").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("#chatmsg").value.trim();
    if (!text || !ch || ch.readyState !== 1) return;
    ch.send($("#chatname").value + ": " + text);
    $("#chatmsg").value = "";
  });

  netget.ready.then(join, (e) => state("closed", e.code));
})();
