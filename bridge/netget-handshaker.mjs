/*! netget handshaker as an ES module: the same client as
 * netget-handshaker.js, whose bridge is the one this module came from.
 *
 *   import netget, { connect } from "https://bridge.example/netget-handshaker.mjs";
 *   const records = await netget.find("DatabaseService");   // default client
 *   const ng = connect({ token: "…", network: "production" }); // your own
 *   for await (const ev of netget.watch("DatabaseService")) { … } // live: add / remove
 *
 * The default client connects on first use. Protocol: bridge/PROTOCOL.md.
 */
import "./netget-handshaker.js";

const api = globalThis[Symbol.for("netget.handshaker")];
const endpoint = api.endpointFrom(import.meta.url);

export const PROTOCOL_VERSION = api.PROTOCOL_VERSION;
export const NetgetError = api.NetgetError;

// connect returns a new client; opts as in netget-handshaker.js (endpoint
// defaults to this module's bridge).
export function connect(opts) {
  return api.connect(Object.assign({ endpoint }, opts));
}

const netget = api.connect({ endpoint, lazy: true });
export default netget;
