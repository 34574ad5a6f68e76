// Package bridge owns the WebSocket bridge that lets web pages find
// services on a netget network through one node, watch them live, and
// open channels to them: its HTTP endpoints, its JSON protocol (v1,
// PROTOCOL.md), the checks every session, find, watch and channel pass
// before reaching the node, and the embedded handshaker script pages load
// (with its TypeScript declarations and npm package.json). It depends on
// narrow interfaces, Finder, Watcher and Opener, never on the DHT; the
// root package adapts its node to them, so a browser only ever sees
// records the node verified and reaches only providers that accepted.
//
// # Endpoints
//
// A Server is an http.Handler (and can Serve a listener itself, over TLS
// when Config has a certificate):
//
//   - GET /netget-handshaker.js: the classic script; <script src> on it
//     sets window.netget, connected to the bridge it came from.
//   - GET /netget-handshaker.mjs: the same client as an ES module
//     (import netget, { connect } from ".../netget-handshaker.mjs").
//     Both are embedded, served as application/javascript with
//     Cache-Control max-age 300, an ETag (304 on revalidation) and
//     Access-Control-Allow-Origin *: the script is public.
//   - GET /ws: the WebSocket, subprotocol netget.v1, JSON text frames.
//   - GET /healthz: 200 {"status":"ok",…}, 503 once shutting down.
//   - anything else: Config.Extra (a devnet page at /, say), else 404.
//
// # Checks, in order
//
// At accept (Serve only): at most MaxOpenConnsPerAddr connections from the
// client's address and MaxOpenConns in all (fewer when the process's
// descriptor limit minus ReserveFDs is lower); one beyond is closed before
// any byte is read. The TLS handshake and request headers must arrive
// within HeaderTimeout. Before the upgrade: while the address is barred
// after wrong tokens, HTTP 429; at most MaxSessionsPerAddr sessions from
// the address (else HTTP 429) and MaxConns in all (else HTTP 503), each
// with Retry-After. After it, so that the page can read why, each refusal is
// an error frame without id followed by a close (1008 policy violation,
// 1002 protocol error, 1009 too big): the subprotocol must be netget.v1;
// the Host header must be an IP literal, localhost, a name in Hosts, or,
// with Hosts empty, any name over TLS (DNS rebinding); the Origin must be
// absent (not a browser), the same origin as Host, or match Origins,
// and never "null"; Filters at StageConnect; the first frame must be a
// hello within HelloTimeout, on this network, with the Token if one is
// set (a barred address gets rate_limited without its token being
// compared); Filters at StageHello. Then per frame: MaxFrameSize (too_large
// closes the session), FramesPerSecond / FrameBurst (rate_limited; the
// frame is dropped), and per find: the Services allowlist (forbidden), a
// unique id (bad_request), MaxInFlight (rate_limited), Filters at
// StageFind, MaxFinds bridge-wide (busy). Only then does a find reach the
// Finder. A session that sends no frame and runs no find for IdleTimeout
// gets an idle error and a close (1000). Every refusal is counted by
// Reason in Stats.
//
// # Fairness
//
// One client must not take the bridge from the others, nor the node's
// descriptors from libp2p. Every per-address limit counts by the same
// key (addrKey): an IPv4 address, or an IPv6 /64. Behind a reverse proxy
// every client has the proxy's address: raise the per-address limits, or
// count by a forwarded header in a Filter. Token guessing is slowed per
// address: the n-th wrong token in a row bars the address for
// TokenBackoff * 2^(n-1), at most MaxTokenBackoff; while barred, even the
// right token is refused (an attacker could otherwise guess during the
// bar), so a client behind the same address as a guesser waits too. The
// table of guessing addresses holds at most MaxTrackedAddrs; when full it
// forgets long-quiet addresses, then the one whose bar ends first.
// Tokens are at least MinTokenLen bytes. A client closed at accept gets
// no HTTP answer (it is cheaper than reading its request); the others get
// a status and Retry-After, or an error frame with a stable code.
//
// # Finds
//
// A find streams one result frame per verified provider as the Finder
// yields it, at most its limit (MaxResults by default and at most), within
// its timeout (FindTimeout by default, at most MaxFindTimeout). It ends
// with done {count} when it found at least one provider; with error
// not_found when the search ended empty, or timeout when its timeout
// passed empty; with done {cancelled: true} after the client's cancel.
// The bridge chooses the limit and the timeout and the Finder applies them
// (bridge.Finder is dht.Node.Find's own contract: results passed to a
// callback, one at a time), so nothing stands between the two layers but
// a conversion of each result.
// Several finds run at once on one connection. A find runs on the
// goroutine that read its frame; one that outlives a grace of 1 ms hands
// the read loop to a new goroutine (Stats.FindsMoved counts them), so the
// session's other frames (cancel, ping, more finds) wait at most that
// long behind a find, and a find that ends sooner (an answer in hand)
// costs no goroutine of its own. The session waits for every find when it
// ends. Result and done frames, one per provider and one per find, are
// encoded by hand (encode.go), byte for byte what Marshal writes, into one
// reused buffer per session, falling back to Marshal whenever a string
// needs JSON's escaping. A record's own JSON is kept for the next find
// that finds it (recordcache.go: at most Config.RecordCache records, each
// used only while the record still equals the copy kept with it). A find
// whose results reach its limit sends its last result and its done in one
// write (a cork on the connection Serve accepted, cork.go): the bridge
// knows the find is over without waiting for the Finder to return, so it
// ends the find first; nothing is held back. Find frames as the handshaker
// writes them are decoded by hand too (anything else takes the JSON path). Each session
// reads frames into one reused buffer (at most 1 KiB kept between
// frames). Writes are serialised by the session, and one timer per
// session bounds the write in progress to WriteTimeout (write.go): armed
// by the first write after a quiet spell and re-armed at the deadline of
// the write in progress when it fires, not reset around each write; reads
// and writes arm nothing per frame, since the session's end closes the
// connection. All of this came out of the profile of BenchmarkBridge (the
// README has the figures).
//
// # Channels
//
// With Config.Opener set, the welcome lists FeatureChannel and a page may
// open channels (channel.go, channel_read.go): open → opened or error,
// send / message (text, JSON) and binary WebSocket frames (binary, kind
// byte 0x01, id length, id, data), close both ways. Checks at open, in
// order: the Services allowlist (forbidden), a unique id (bad_request),
// MaxChannels per session (rate_limited), Filters at StageOpen,
// MaxChannelsTotal (busy); then the Opener, within OpenTimeout, gets the
// page's Origin as checked here, its token, peer and where. Per message:
// MaxMessageSize (too_large, and that channel closes 1009), then the
// session's ChannelBytesPerSecond budget, which pauses reading rather
// than dropping. Channel messages do not count in FramesPerSecond.
//
// Goroutines per channel: runChannel (the open, then the provider's
// messages to the page) and pumpOut (the page's messages to the provider,
// from a queue of 4); both end with the channel or the session, and the
// session waits for them. The session's read loop alone queues messages
// and closes a queue, so a channel's messages keep their order. Closing:
// the page's close drains the queue first, then closes the provider's
// side with the page's code; the provider's close or loss ends the
// channel with its code, or 1006; Shutdown sends a close (1001) for every
// open channel before the WebSocket's 1001.
//
// # Watches
//
// When the Finder given to New is also a Watcher, a watch frame follows a
// service's providers: a result frame for each provider now and each new
// or republished one, a removed frame for each that goes, until cancel
// (done {cancelled: true}). The bridge keeps, per watch, only the set of
// peers it showed (at most the watch's limit, capped by MaxResults): a
// removed names a shown peer only, and where turns an upsert that stops
// matching into removed "unmatched". Watches pass the Services allowlist,
// a unique id, MaxSessionWatches (rate_limited), Filters at StageWatch and
// MaxWatches bridge-wide (busy). Each runs in its own goroutine, which the
// Watcher drives through yield; a frame is written as the Watcher yields
// it, and a client that does not read it within WriteTimeout is
// disconnected (Reason slow), so nothing queues for a slow page: the
// Watcher's yield blocks at most WriteTimeout, then returns false.
//
// # Errors
//
// Error frames carry a stable Code and a message for humans. Messages
// echo only the client's own input or fixed text; internal causes (a
// Finder's error, a Filter's reason) go to the Logger, and the client
// sees "find failed" or "refused". A Filter chooses what the client sees
// by returning an *Error.
//
// # Lifecycle
//
// Shutdown stops the listeners, closes every WebSocket with 1001 (going
// away), cancels their finds and waits for them, bounded by its context;
// Close does the same at once. Both are idempotent. Goroutines: one per
// session (the HTTP server's; it runs the read loop until a find hands
// the loop over, then waits for the session's end), one more per find
// that outlived its grace (the one that took the read loop over; the
// goroutine that ran the find ends with it, unless it is the session's),
// one per watch, and one watchdog per session
// (idle timeout, and pings when PingInterval is set), two per open
// channel; all end with their session.
package bridge
