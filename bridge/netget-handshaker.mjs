/*! netget handshaker as an ES module: the same client as
 * netget-handshaker.js, whose bridge is the one this module came from.
 *
 *   import netget, { connect } from "https://bridge.example/netget-handshaker.mjs";
 *   const records = await netget.find("DatabaseService");   // default client
 *   const ng = connect({ token: "…", network: "production" }); // your own
 *   for await (const ev of netget.watch("DatabaseService")) { … } // live: add / remove
 *   const ch = await connect("ChatService", { where: { room: "lobby" } }); // a channel
 *
 * The default client connects on first use. Installed from npm (not
 * loaded from a bridge) there is no default bridge: use
 * connect({ endpoint: "https://bridge.example" }). Protocol: PROTOCOL.md.
 */
import "./netget-handshaker.js";

const api = globalThis[Symbol.for("netget.handshaker")];
let endpoint = "";
try {
  endpoint = api.endpointFrom(import.meta.url);
} catch {
  // a file: or bundled copy: no bridge of its own
}

export const PROTOCOL_VERSION = api.PROTOCOL_VERSION;
export const NetgetError = api.NetgetError;
export const Channel = api.Channel;

const netget = api.connect({ endpoint, lazy: true });

// connect(opts) returns a new client; opts as in netget-handshaker.js
// (endpoint defaults to this module's bridge). connect(service, opts)
// opens a channel through the default client, as netget.connect does.
export function connect(service, opts) {
  if (typeof service === "string") return netget.connect(service, opts);
  return api.connect(Object.assign({ endpoint }, service));
}

// find and findStream through the default client.
export function find(name, opts) {
  return netget.find(name, opts);
}
export function findStream(name, onResult, opts) {
  return netget.findStream(name, onResult, opts);
}

export default netget;
