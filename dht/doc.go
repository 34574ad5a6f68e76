// Package dht owns netget's Kademlia DHT for one network: the protocol
// prefix, the DHT mode, the record validator, provide / find / withdraw,
// republishing, the registry protocol every node serves, the record store
// (dht/store; in memory or on disk) and a registry's health monitor, which owns the
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
// one round trip of the registry protocol (dht/registry) stores or lists a
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
// Find first streams the live records for the service that the node
// already holds in its own store (Source local: no round trip, no wait on
// a hedge; a find whose Limit they fill asks nothing), then asks each
// connected registry for the service's records and, once they have
// answered (or after the hedge), takes the DHT path. The peers closest to
// the service hold its records, so it asks the three connected DHT
// servers nearest the service in its routing table (one round trip, no
// dial: most finds end here) and, once they have answered or after a 5 ms
// head start (nearHeadStart), runs kad-dht's provider walk beside them, asking each peer an answer of the walk named
// for the records it holds (the walk's seeds, the routing table's
// nearest, are not asked beyond those three) as the walk starts dialling
// it, or queries it when already connected, and, for a provider whose
// record none of them had, the provider itself, then the DHT value store.
// A list to a peer the walk dials does not wait for the new connection's
// identify exchange (registry.Client.ListDialling proposes the protocol
// with the request), so it is answered a round trip before kad-dht's own
// query to that peer. Waiting for the nearest
// peers before walking cost a near miss a whole round trip: the DHT
// path's slowest finds were that round trip plus a walk two deep
// (BenchmarkLatency's hop histogram). The hedge adapts to the node's
// measured round trip (the smoothed RTT of its registries' answers plus
// four deviations, as TCP's retransmission timeout; before the first,
// their round trip as kad-dht recorded it; DHT peers' answers are left
// out, since any of them can be slow on purpose): the DHT path waits for
// the registries up to Config.WalkHedge (50 ms) or, where round trips
// are slower, up to that timeout (at most MaxWalkHedge), since a fixed 50 ms under a
// 100 ms RTT started the DHT path before any registry could answer, for
// several times the requests per find and no earlier result
// (BenchmarkLatency). Every
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
// its answer), one left idle for 30 s, or one whose
// connection goes, is normal and logged at debug level.
//
// # The record store
//
// The verified records a node holds, their per-service index, the quotas
// that bound them, the datastore view kad-dht writes through, OpenDatastore
// (Pebble) and the verified-record cache live in dht/store; its doc says
// how. The Node gives the store its health verdicts through a small
// interface (store.Verdicts), so the store never reaches back into dht.
//
// # Health
//
// With Config.Health set (registries), the node checks (libp2p ping) each
// provider it holds a live record for, and serves a provider's records
// (list, GET_VALUE, its own finds) only once a check has passed: a record
// never checked is not served. The verdicts live in one place (verdicts.go)
// that the store asks (store.Verdicts); lists put healthy providers first, longest known
// first, so Sybil records cannot push a provider that has been answering
// for hours out of a finder's first results. Choices made here:
//
//   - A registry-protocol put that the record's own peer sends is a passed
//     check (verdicts.vouch): its request and the answer it waits for are a
//     round trip on the connection a check would ping. The provider is
//     healthy, served and announced to watchers as the record is stored,
//     with no check due for an Interval.
//   - Any other record (DHT PUT_VALUE, sync, a forward, a third party's
//     put) makes its new provider checked at once, and a registry answers
//     such a push only when that check is done (bounded by Timeout), so an
//     honest provider is served when its publish returns either way.
//     Every record passes the address policy (admit) first.
//   - After Failures consecutive failures a provider is unhealthy; after
//     DeregisterAfter its records are deleted, and its verdict is kept as
//     long again. A new record never changes a verdict, unless its
//     provider puts it itself: it brings the next check forward, at most
//     once per Interval per provider, so re-signing (or Sybils pushing a
//     victim's records) does not get a failing provider served again.
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
// # Hostile peers: provider records, request rates, allow-lists
//
// kad-dht's provider manager would keep every ADD_PROVIDER from anyone for
// 48 h (one peer flooding random keys grew a node by hundreds of MiB).
// kad-dht v0.42 takes no custom ProviderStore, so the node gives it a
// provider datastore that bounds what it writes (providers.go): each
// remote peer spends a token per record it stores or refreshes
// (Config.ProviderRate, ProviderBurst), holds at most ProvidersPerPeer
// records, and the node holds at most MaxProviderRecords in all; when
// full, a newcomer's record evicts one of the peer holding the most, so
// Sybils crowd out each other before an honest provider with one record.
// kad-dht stores only records whose provider is the peer that sent them,
// so every limit is per sending peer. Records live ProviderLifetime (25h:
// record.MaxTTL plus slack). The node's own provider records are exempt.
// Refused writes are dropped from kad-dht's batch and counted in
// netget_provider_records_total{outcome="refused",reason}. One caveat of
// kad-dht's design remains: a refused record can sit in its write buffer
// (at most 256 entries) or its cache of recently read keys until the next
// flush or eviction.
//
// Registry-protocol requests are rate-limited per remote peer
// (RequestRate, RequestBurst; registry.Limiter, which also bounds provider
// records per peer) in a table of at most 4,096 peers; when it
// is full, only a bucket that has refilled completely is forgotten, and
// newcomers share one overflow bucket meanwhile, so no peer ever gets a
// fresh bucket by cycling identities. A paged list (a request with a
// cursor) walks a whole service in peer-ID order, at most Config.ListPage
// records (default 100) and registry.PageBytes a page, from the store's
// Page; a list without one stays what a find sends, the best 32.
//
// Config.Allow closes a network to the providers it lists (for every
// service, or per service): it is part of record.Validator, so every
// write (registry put, DHT PUT_VALUE, a datastore reloaded at start) and
// every read by a find refuses anyone else's record with
// record.ErrNotAllowed, counted like any other rejection.
//
// # Watch
//
// Node.Watch streams a service's live provider set. As a registry, a node
// serves the watch protocol (registry.WatchProtocol; watch_hub.go,
// watch_serve.go): a snapshot of what it holds for the service, then one
// message per change. It learns of changes from one hook, the store's
// OnChange (every write, and every record leaving the index: expired,
// evicted, deregistered), plus the health monitor's verdicts and a timer
// at the earliest expiry of a served record; nothing polls. The hub keeps,
// per watched service, what its watchers were told of each provider
// (served, withdrawn, unhealthy, pending) and turns a change into one
// message, encoded once and queued (a shared pointer) for every watcher.
// Choices made here:
//
//   - Bounded: WatchLimits.PerPeer watches per remote peer, Max in all
//     (one more gets a drop saying why: ErrWatcherQuota,
//     ErrTooManyWatchers), and Queue messages waiting per watcher; a
//     watcher whose queue is full is dropped ("slow watcher") rather than
//     buffered, and resubscribes with a fresh snapshot.
//   - A snapshot names a provider's state only; its writer reads the
//     envelope the store holds when it writes, so a snapshot of a big
//     service costs the watcher's queue one entry.
//   - Watch requests count against the registry protocol's per-peer
//     request rate (the same Limiter).
//   - Cheap to hold: a served watch is two goroutines (its writer, and a
//     one-byte read that notices the stream end), a queue that is a slice
//     grown on demand and let go when drained, and a write deadline
//     re-armed only when half of it is gone: about 14 KiB of registry
//     heap a watch beyond the ~37 KiB its peer's idle connection costs
//     (BenchmarkWatch, watchers in a child process).
//   - One way, one hop: a change reaches a watcher 0.5 RTT after the
//     registry accepts it, plus the fan-out; 1,000 watchers hear within
//     2× the round trip at RTT 100 ms (BenchmarkWatchLatency, mocknet),
//     not at 20 ms where their 1,000 checks share the registry's cores.
//   - A registry-protocol put applies its change (watchHub.flush) in its
//     own goroutine as soon as the record is stored, before it answers;
//     the hub's goroutine applies everything else (DHT writes, verdicts,
//     expiry). Changes are applied as the store's state, so either may
//     take any batch.
//
// As a watcher (watch.go, watch_follow.go, watch_merge.go), a node runs
// one watch per service, shared by every caller: a reader per registry
// (KnownRegistries, connected or not, so a registry that restarts comes
// back) that verifies every record and tombstone (a stream with 16 that
// fail is reset), and a merger that keeps per provider the highest seq and
// the registries serving it. A provider leaves the set when no registry
// serves it any more, or at once for a valid tombstone. A registry's
// stream that ends is opened again with backoff (100 ms to 5 s, with
// network.WithForceDirectDial: the swarm's own dial backoff would keep a
// restarted registry out for seconds), and its new snapshot reconciles:
// providers it no longer names are removed (expired or deregistered),
// those it names as pending keep their place. A registry (its health
// monitor runs) also reads its own hub, in process (localWatch), with its
// own watches exempt from PerPeer (it runs one per service). Without
// registries (or with
// DisableFastPath) a Find on the DHT path every WatchPollInterval is the
// snapshot instead. Each caller has its own channel fed by its own
// goroutine from a set of changed providers (one entry each), so a caller
// that does not read holds up nobody and is brought up to date with each
// provider's latest state when it reads again. While a watch has a
// complete snapshot, Find yields its set first (SourceWatch), before any
// network ask.
//
// # Readiness and metrics
//
// Providing or finding with an empty routing table fails inside kad-dht
// ("failed to find any peer in table"), so both wait on Ready, bounded by
// their own deadline, and fail with ErrNotReady if the node never joined.
// Config.Registerer receives Prometheus metrics: records accepted and
// rejected by reason, finds and time to first result, results by path,
// health checks by outcome, providers healthy and unhealthy, records held,
// provider records accepted and refused by reason.
//
// # Registries in concert
//
// Registries of a network are peers, not a cluster with a leader; like
// Serf's push-pull and Dynamo's anti-entropy they converge by themselves
// (Config.Sync, RegistrySync; sync.go, forward.go, reconcile.go):
//
//   - Finding each other: a registry whose sync is on serves the sync
//     protocol, /netget/<network>/sync/1.0.0, and its sync peers are the
//     connected peers whose identify reports that protocol. Chosen over a
//     provider record under a well-known key because registries already
//     connect to each other (they bootstrap from each other and are each
//     other's DHT servers), identify tells at once and for free, and a
//     provider record would need a walk and its own republishing; the
//     price is that a registry syncs only with registries it is connected
//     to (list them with --bootstrap). Connections to sync peers are
//     protected from trimming.
//   - Push: every record a registry stores that it did not hold (a
//     registry put from a provider, a DHT PUT_VALUE, a forward) is queued
//     for every sync peer but the one it came from, and each peer's
//     forwarder sends what queued in one forward (at most
//     registry.MaxForward records), so a record reaches every connected
//     registry one round trip after it landed. A record that is not new
//     where it arrives (older seq, or the very envelope held) stops
//     there: a record crosses each link at most once in each direction. A
//     full queue (Sync.ForwardQueue) drops, and reconciliation repairs.
//   - Anti-entropy: every Sync.Interval, and at once with a sync peer
//     newly connected, a registry asks each sync peer in turn for its
//     digest (registry.Digest: 256 buckets of the key-hash space, each a
//     count and an XOR of per-record hashes of (service, peer, seq),
//     3 KiB) and pulls only the ranges whose buckets differ, telling the
//     peer what it holds there (16 bytes a record) so the peer sends only
//     what it lacks or holds older. Runs of differing buckets are pulled
//     as one range, so an empty registry pulls everything in full-sized
//     responses: about 1.34 times the records' bytes (base64 in JSON).
//     One round is bounded by Sync.MaxRecords and Sync.MaxBytes; what one
//     peer's pulls receive is bounded by Sync.PeerRate (bytes a second,
//     the response waits for its tokens), and sync requests by the same
//     per-peer request rate as the registry protocol.
//   - Bounded like a push: whatever sync brings goes through the one write
//     path (acceptFresh: record.Validator, then store.Store.Add and its
//     quotas per signing key, per service and in bytes), so a registry
//     never takes from a peer registry what it would refuse from a
//     provider. kad-dht does not say who sent a PUT_VALUE, and a registry
//     cannot know who first sent a record it forwards, so synced records,
//     like DHT writes, have no source (Limits.PerSource bounds pushes from
//     an address, not what registries relay). A forged record is refused
//     at the first registry and never forwarded.
//   - Health stays local: tombstones and records of providers a registry
//     found unhealthy sync like any others; each registry checks and
//     serves (or hides) the providers it holds by its own checks, so a
//     synced record is served once this registry's first check passed.
//     A registry that deregistered a provider may get its records back
//     from a peer that still holds them; it deletes them again after its
//     DeregisterAfter, since its verdict is remembered.
//
// # Sub-packages
//
// dht/store is the record store: the verified records in the datastore
// kad-dht's value store uses and their index per service and peer
// (Store), its quotas (Limits, sources), the view kad-dht writes through
// (View), the Pebble datastore (Open) and the verified-record cache. It
// imports record only; it asks the Node's health verdicts through the
// store.Verdicts interface (storeverdicts.go) and takes the validator and
// a metrics counter, never the Node. dht re-exports the sentinels its API
// returns (ErrKeyQuota, ErrSourceQuota, ErrStoreFull, ErrDatastore) and
// StoreLimits (an alias of store.Limits).
//
// dht/registry is the registry protocol on the wire: protocol ID, codec,
// the client (List, Push) with its stream pool, the handler over a small
// Holder interface (serve.go is the Node's side) and the per-peer
// limiter; the sync protocol between registries (digest, pull,
// forward: SyncClient, SyncHandler over a Replica, reconcile.go is the
// Node's side); and the watch protocol's messages, codec and watcher
// side (OpenWatch). It imports nothing of netget's; dht imports it, never the
// other way. Find yields results to a callback (Node.Find), the contract
// bridge.Finder shares.
//
// dht/channel is the channel protocol, /netget/<network>/channel/1.0.0:
// channels between peers once one has found the other (Conn, the
// provider's Server with its handlers, filters and limits, relays to ws://
// and tcp:// targets). It imports record, never dht; the root package
// wires it to a node (Node.Handle, Dial, Connect).
package dht
