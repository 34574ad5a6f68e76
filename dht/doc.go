// Package dht owns netget's Kademlia DHT for one network: the protocol
// prefix, the DHT mode, the record validator, provide / find / withdraw,
// republishing, the registry protocol every node serves, the record store
// (in memory or on disk) and a registry's health monitor, which owns the
// records it checks.
//
// # One DHT per network
//
// A Node runs go-libp2p-kad-dht with ProtocolPrefix "/netget/<network>", so
// /netget/development/kad/1.0.0 and /netget/production/kad/1.0.0 never talk
// to each other, and with netget's validator as the only one: no IPFS
// defaults ("pk", "ipns"), no public bootstrap peers. The network is also
// inside every signed record, so a record carried across networks by other
// means is still refused (record.ErrWrongNetwork).
//
// # Two paths: the registries and the DHT
//
// A node's registries (AddRegistry; the CLI adds the bootstrap peers it
// joined through) are the fast path: it is connected to them already, so
// one round trip of the registry protocol (proto.go) stores or lists a
// service's records. The DHT is the path that works without them and keeps
// the network open to any kad-dht client.
//
// Publish seals a record (seq = issue time in microseconds, strictly
// increasing per node), pushes it to every connected registry and, once
// they have answered, walks the DHT to the peers closest to the service
// CID, giving each a kad-dht provider record (ADD_PROVIDER) and the signed
// record (registry put, or kad PUT_VALUE to a peer that does not speak the
// registry protocol): kad-dht's classic provide assembled from its exported
// parts (GetClosestPeers, ProtocolMessenger), so one walk places both
// records on the same peers, and the signed record lands in their DHT
// value store under /netget/<cid>/<peer>. Publish returns as soon as the
// record is findable: when one registry took it, or, without registries,
// when the walk is done; the rest goes on in the background (Settle waits
// for it). When no registry and no peer of the walk took the record,
// Publish fails with ErrNotPublished rather than report a record nobody can
// find. TTLs and metadata pass record.ValidateTTL (1s to 24h) and
// record.ValidateMeta, the rule every layer shares. Provide republishes at
// half the TTL, never more often than MinRepublishInterval, until its
// context ends: kad-dht republishes nothing by itself. Withdraw publishes a signed tombstone and waits for
// every copy; it outlives the record it replaces.
//
// Find asks each connected registry for the service's records and, once
// they have answered (or after Config.WalkHedge), takes the DHT path. The
// peers closest to the service hold its records, so it first asks the
// NearAsks connected DHT servers nearest the service in its routing table
// (one round trip, no dial, no walk: most finds end here); once they have
// answered (or after the same hedge) it runs kad-dht's provider walk,
// asking each peer the walk queries for the records it holds and, for a
// provider whose record none of them had, the provider itself, then the
// DHT value store. Every
// record is verified with record.Validator whatever path brought it;
// identical envelopes are verified once per search; per peer the highest
// seq wins and a valid tombstone stops that peer. Results stream as soon as
// they verify, at most one per peer, each saying which path brought it
// (Result.Source), and the search is bounded by a timeout. FindOptions
// .DHTOnly and Config.DisableFastPath turn the fast path off.
//
// A find ends when its answer is complete, not when the walk's last dial
// gives up: a node killed a moment ago stays in its neighbours' routing
// tables, and a QUIC dial to it waits out go-libp2p's whole dial timeout
// (5 s on a local network). So, with the fast path, once something was
// streamed, no list request or fetch is in flight and every peer the walk
// queried has answered, a walk that waits only for dials to peers this
// node is not connected to is ended and those dials cancelled (the
// registries, which every provider pushes to, already answered). On the
// DHT path alone the walk runs to its end, each of its dials, and each
// provider fetch's, bounded by Config.WalkDialTimeout (default 2 s).
//
// The registry protocol's handler logs a bad request at info level; a
// stream the requester resets or closes (as every finder does once it has
// its answer), one left idle for StreamIdleTimeout, or one whose
// connection goes, is normal and logged at debug level.
//
// # The record store
//
// A node keeps the verified records it holds in the datastore kad-dht's
// value store uses, under kad-dht's own keys, so a DHT GET_VALUE and a
// registry list serve the same bytes and nothing is stored twice. Every
// write, whatever its path (registry put, DHT PUT_VALUE, the node's own
// publish), goes through one store that decides by seq, and an index per
// service and peer sits beside it in memory, since kad-dht's value store
// cannot list one service's records. Config.Datastore makes it persistent:
// OpenDatastore opens Pebble (maintained, crash-safe, group commit; chosen
// over the unmaintained goleveldb) with synced writes, and a restarted node
// verifies and serves every unexpired record it held before, with nothing
// re-provided. Expired records are deleted every SweepInterval.
//
// Beside the store, a verified-record cache (VerifiedCacheSize entries, by
// the SHA-256 of the envelope; record.Validator.Cache) means the same bytes
// are verified once per node, on write or read, whichever comes first: a
// record a node holds answers its own finds without a second Ed25519
// verification, and so does a record every holder returns. The time-bound
// checks (expiry, issued-at) still run on every read.
//
// # Health
//
// With Config.Health set (registries), the node pings each provider it
// holds a live record for every Interval, at most Concurrency at a time and
// never twice at once; after Failures consecutive failures it stops serving
// the provider's records (list, GET_VALUE, its own finds), serves them again
// when a check succeeds or the provider republishes, and deletes them after
// DeregisterAfter, like Consul's deregister_critical_service_after.
//
// # Readiness and metrics
//
// Providing or finding with an empty routing table fails inside kad-dht
// ("failed to find any peer in table"), so both wait on Ready, bounded by
// their own deadline, and fail with ErrNotReady if the node never joined.
// Config.Registerer receives Prometheus metrics: records accepted and
// rejected by reason, finds and time to first result, results by path,
// health checks by outcome, providers healthy and unhealthy, records held.
package dht
