// Package control owns the daemon's local control API: the Unix socket it
// listens on, its versioned HTTP + JSON routes, the daemon's persistence
// of the services it provides (services.json: saved before a provide,
// restored on the next start), and the Client the CLI talks to it with.
// It depends on two interfaces, not on the types behind them: Node (the
// finding, providing and channel opening a *netget.Node does: the
// republish loops are the node's) and Registrar (the registries a *netget.Node keeps). The
// server routes requests and maps the node's Go errors to API errors in
// one place (publishError).
//
// # Socket
//
// The socket is <data-dir>/control.sock, mode 0600: only the data dir's
// owner reaches it, and that is the API's only access control. Listen
// binds it in a fresh 0700 directory, chmods it and renames it into place,
// so it is never reachable with looser permissions, and replaces a stale
// socket a killed daemon left (the caller holds the data dir's lock, so
// nobody else serves it). A Client finds no daemon (ErrNoDaemon) when the
// socket is absent or refuses connections; the CLI then falls back to a
// node of its own.
//
// Neither end trusts the other blindly. Before sending a request, the
// Client checks the socket file (p2p.CheckSocket: owned by the current user
// or root, writable by no one else, not a symlink) and the uid of the
// process serving it, as the kernel reports it (SO_PEERCRED on Linux,
// LOCAL_PEERCRED on macOS and FreeBSD); any other owner or server is
// ErrUntrustedSocket, never "no daemon", so a socket another user planted
// can neither answer a find nor make the CLI quietly fall back. The server
// likewise closes, unanswered, connections from other users, should the
// socket's mode ever be loosened. services.json is read only if the data
// dir's owner (or root) owns it, no one else can write it and it is no
// symlink (p2p.ReadTrustedFile), else ErrServicesFile: otherwise another
// user could have services provided under this node's key.
//
// # Routes
//
// Bodies are JSON objects of at most MaxBodySize bytes; unknown fields are
// refused. Durations are Go duration strings ("10m"). Provide and
// unprovide answer with the signed record's payload (record.Service's
// JSON); a find streams the view of each record found (record.View).
// Fields are only added; anything else gets new /v2 routes.
//
//	GET  /v1/status
//	  200 {"peer":"12D3Koo…","network":"development","dht_mode":"server",
//	       "addrs":["/ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…"],"routing_table":3,
//	       "registries":["12D3Koo…"],"stored_records":4,
//	       "services":[{"name":"DatabaseService","meta":{"region":"eu"},"ttl":"1h0m0s",
//	                    "seq":1718000000000000,"published_at":"…","expires_at":"…"}],
//	       "data_dir":"/home/u/.netget","version":"…","started_at":"…",
//	       "reachability":"private","relays":["12D3KooR…"],
//	       "relay_addrs":["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooR…/p2p-circuit"]}
//
// "reachability" is "public", "private" or "unknown" (AutoNAT has not
// decided); "relays" and "relay_addrs" are the relays (registries) a
// private node holds a slot on and its circuit addresses through them,
// empty otherwise.
//
// A registry serves the control socket too, and its status adds "sync",
// what its sync with the other registries has done (absent on a node that
// does not sync):
//
//	"sync":{"peers":["12D3KooB…"],"last_round":"2026-12-01T10:00:30Z",
//	        "last_fetched":10,"last_bytes":9731,"rounds":3,"fetched":10,
//	        "forwarded":4,"received":2,"refused":0}
//
// "last_error" is set when the last reconciliation failed with a peer.
//
//	POST /v1/provide {"name":"DatabaseService","meta":{"region":"eu"},"ttl":"1h"}
//	  200 {"service":{"v":1,"network":"development","name":"DatabaseService","peer":"12D3Koo…",
//	       "addrs":[…],"meta":{"region":"eu"},"seq":…,"issued_at":"…","expires_at":"…"}}
//
//	POST /v1/unprovide {"name":"DatabaseService"}
//	  200 {"service":{…,"withdrawn":true},"was_provided":true}
//
//	POST /v1/find {"name":"DatabaseService","limit":0,"timeout":"10s"}
//	  200 application/x-ndjson, one line per verified provider as it
//	      verifies, then "done"; a stream without "done" broke off:
//	  {"type":"result","record":{"peer":"12D3Koo…","service":"DatabaseService",
//	   "network":"development","addrs":[…],"meta":{…},"seq":…,"issued_at":"…",
//	   "expires_at":"…"},"source":"registry","elapsed_ms":0.42}
//	  {"type":"done","found":1}
//
// A found record has one JSON shape everywhere, record.View: this stream,
// find --json and the bridge's result frames. Decision (issue 14): the
// find stream's "record" changed from the signed payload (record.Service,
// with "name" and "v") to the view in place, on /v1, as a documented
// break: the route is local-only and its one client, the CLI of the same
// build, changed with it. From now on fields are only added, and anything
// else gets /v2 routes.
//
//	GET  /v1/registries
//	  200 {"registries":[{"peer":"12D3Koo…","addrs":["/ip4/10.0.0.7/tcp/4001"],"connected":true}]}
//
//	POST /v1/registries/add {"addr":"/ip4/10.0.0.8/tcp/4001/p2p/12D3Koo…"}
//	  200 {"peer":"12D3Koo…","registries":[…]}   (the registries afterwards)
//	  400 bad_registry (no /p2p/, not a registry, this node), 502 unreachable
//
//	POST /v1/registries/remove {"peer":"12D3Koo…"}
//	  200 {"peer":"12D3Koo…","registries":[…]}
//	  404 unknown_registry
//
//	POST /v1/connect {"service":"ChatService","where":{"region":"eu"},"token":"…","timeout":"10s"}
//	     (with Connection: Upgrade, Upgrade: netget-channel)
//	  101 Netget-Peer: 12D3Koo…, Netget-Mode: messages, Netget-Max-Message: 1048576
//	      then the connection carries the channel's frames (dht/channel's
//	      PROTOCOL.md, section 2) until either side closes
//	  403 channel_refused (the message carries the provider's code:
//	      "channel refused: forbidden: …"), 404 no_channels
//
// Connect finds the service and opens the channel as netget.Node.Connect
// does, then relays between the client's connection and the channel
// (channel.Splice; Client.Connect returns the client's end,
// channel.NewLocal): messages, end of input and close codes pass as they
// are, and a channel the provider broke breaks the connection.
//
// The registry routes exist when Config.Registries is set (the daemon sets
// its netget.Node): adding connects, protects the connection, pushes the
// node's own records and keeps the address in registries.json (bounded by
// PublishTimeout); removing stops the fast path to it at once. Nothing is
// kept when adding fails.
//
// Provide returns once the first publication has landed (or failed, or
// not landed within Config.PublishTimeout: then the service is not
// provided) and the daemon republishes at half the TTL from then on.
// Providing a name again (names compare case-insensitively) replaces the
// node's loop with the new metadata and TTL. Unprovide stops the loop and
// publishes the signed tombstone, also for a name this daemon does not
// provide (a record from an earlier run). Provides and unprovides change
// the set one at a time, so the last one wins. Any request may carry
// "network"; a daemon on another network answers 409 wrong_network.
//
// # Errors
//
// Every failure is {"code":"…","message":"…"} with an HTTP status; the
// codes (CodeBadRequest …) are stable, the messages are for people:
//
//	400 {"code":"invalid_name","message":"invalid service name: \"a b\": only A-Z, …"}
//
// # Shutdown
//
// When Serve's context ends, in-flight requests end (a find stream without
// "done") and Serve returns; the daemon then closes its node, which stops
// the provide loops and withdraws each service that published, as
// Consul's agent deregisters its services when it leaves (the server
// itself withdraws nothing, so nothing is withdrawn twice). services.json
// keeps them: the next start provides them again (netget.Node.ProvideLater).
package control
