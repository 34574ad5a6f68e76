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
// for it). Provide
// republishes at half the TTL until its context ends: kad-dht republishes
// nothing by itself. Withdraw publishes a signed tombstone and waits for
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
// With Config.Health set (registries), the node checks (libp2p ping) each
// provider it holds a live record for, and serves a provider's records
// (list, GET_VALUE, its own finds) only once a check has passed: a record
// never checked is not served. The verdicts live in one place (verdicts.go)
// that the store asks; lists put healthy providers first, longest known
// first, so Sybil records cannot push a provider that has been answering
// for hours out of a finder's first results. Choices made here:
//
//   - A provider's first record is checked at once, and a registry answers
//     a push only when that check is done (bounded by Timeout), so an
//     honest provider is served when its publish returns.
//   - After Failures consecutive failures a provider is unhealthy; after
//     DeregisterAfter its records are deleted, and its verdict is kept as
//     long again. A new record never changes a verdict: it brings the next
//     check forward, at most once per Interval per provider, so re-signing
//     does not get a failing provider served again.
//   - Each provider has its own schedule (every Interval from its last
//     check), and checks run in three lanes with their own workers:
//     healthy providers (Concurrency), others the node is connected to,
//     and others it must dial (SuspectConcurrency each). Providers that
//     hold a check open until DialTimeout or Timeout (tarpits) only ever
//     delay each other.
//   - A check dials only the addresses of the provider's record (the
//     peerstore's others are cleared for it), each distinct address at
//     most once per Interval unless the peer found there is the one being
//     checked (learned from the security handshake's peer-ID mismatch),
//     and at most DialRate per second to one host; a check held back only
//     by that rate is retried later without a verdict.
//   - Health.Addrs: a registry on a public network (AddrsAuto: one of its
//     own addresses is public) refuses records without a public address
//     (ErrPrivateAddrs) and dials only public ones; AddrsAny for LANs and
//     loopback, AddrsPublic to insist.
//   - Verdicts are not persisted: after a restart every loaded record is
//     pending again and checked at once.
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
