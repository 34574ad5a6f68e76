// Package store owns a netget node's record store: the verified signed
// records it holds, kept in the datastore kad-dht's value store uses, with
// their index per service and peer (Store); the quotas that bound them per
// signing key, per source address prefix, per service and in bytes
// (Limits); the view of the datastore kad-dht writes through (View); the
// on-disk Pebble datastore (Open); and the verified-record cache its
// validator uses (Cache). It imports record, never dht: the Node's health
// verdicts reach it through the Verdicts interface, and the view takes the
// store, the validator and a counter function, not the Node.
//
// # The record store
//
// A node keeps the verified records it holds in the datastore kad-dht's
// value store uses, under kad-dht's own keys, so a DHT GET_VALUE and a
// registry list serve the same bytes and nothing is stored twice. Every
// write, whatever its path (registry put, DHT PUT_VALUE, the node's own
// publish), goes through one store that decides by seq, and an index per
// service and peer sits beside it in memory, since kad-dht's value store
// cannot list one service's records. The envelopes live only in the
// datastore; the index holds the few fields the store decides by (seq,
// expiry, a SHA-256 of the envelope, its source), not the addresses: a
// health check reads the due provider's from its newest record
// (Store.Addrs). A registry holds about 0.5-1 KiB of heap a record, index
// and health verdict together (BenchmarkRegistryScale).
// The node's Config.Datastore makes it persistent: Open opens Pebble
// (maintained, crash-safe, group commit; chosen over the unmaintained
// goleveldb) with synced writes and a 32 MiB memtable (Options,
// DefaultMemtableBytes; Pebble's own is 4 MiB): at a million records each
// flush merged into the loaded levels rewrites the same overlapping
// tables, so a larger one cut the table bytes a write costs about 3x. The
// store's lock is not held across the write, so concurrent puts share one
// fsync. A restarted node indexes every
// unexpired record it held without its signature check, so it serves at
// once, with nothing re-provided; the signatures are then checked in the
// background by as many workers as CPUs, a list checks a record it serves
// first, and GET_VALUE hides one until then; a record that fails is
// deleted. That is safe because only the node writes its datastore, and
// only records it verified; a record altered on disk is never served and
// is deleted once the background check reaches it. Start-up (Load, in
// load.go) reads the datastore in key order, straight from Pebble's
// iterator, in batches that as many workers as CPUs peek at (protowire for
// the two protobuf layers, only the payload's scalar fields, the peer ID
// decoded once, the service CID once per run of one service's records)
// and index a batch per lock; the background check (VerifyAll) reads in
// key order too. The on-disk format is kad-dht's own, unchanged. Sweep
// deletes expired records (the Node calls it every minute).
//
// A paged list (Page, in pages.go) walks a service's served records in
// the order of the providers' binary peer IDs, each page after the last
// provider the page before considered (keyset paging: a provider that
// stays is returned once, whatever joins or leaves between pages), cut at
// a record limit and a byte bound; a hot service's pages come from a kept
// sorted copy of its records (16 services and 32 MiB of envelopes at
// most), dropped with its kept list.
//
// A list picks the first providers of a service with a bounded heap, not a
// sort of all of them, and the store keeps the answer for the 64 services
// listed last (at most 32 records each), until a record of the service
// changes, a health verdict turns (Verdicts.Epoch) or a record it
// considered expires: a hot service's repeated lists read neither the
// index nor the datastore. Concurrent synced puts share one fsync through
// Pebble's group commit (its write-ahead log syncs every commit queued
// behind the one being synced), so the store adds no batcher of its own:
// with 64 writers at once a million-record registry takes 0.86-0.87 of
// the synced writes a second of a like-for-like floor (verify + synced put
// of the same bytes into the same datastore; BenchmarkRegistryScale).
//
// # Quotas
//
// No one peer can fill the store. Limits (the node's Config.Store) bound it
// per signing key (PerKey, 64: a provider's records over all services;
// ErrKeyQuota), per source (PerSource, 1024 records pushed from one /24
// IPv4 or /48 IPv6 prefix; ErrSourceQuota), per service (PerService,
// 1024) and in bytes (Bytes, 256 MiB: each record costs its envelope plus
// RecordOverhead for its index entry; ErrStoreFull). One function
// (Store.admitLocked) checks them for every write and for the records
// loaded at start-up; refusals are counted by reason in the node's
// metrics (the counter View and the Node's accept report to). A loopback
// address is a source of its own (127.0.0.1 and 127.0.0.2 count apart),
// so tests and local setups can run many nodes. kad-dht does not
// tell the datastore who sent a PUT_VALUE, so those records, like the
// node's own and those loaded at start-up, have no source: the key and
// byte quotas bound them. On a node that checks health (Verdicts says who
// is expendable), a full service or a full byte budget first evicts the
// records of
// providers that are unhealthy, then of those that never passed a check,
// before it refuses a newcomer; a provider that passed a check, and the
// node itself, are never evicted. Without health checks nothing is known
// of anyone, so a full store refuses.
//
// Beside the store, a verified-record cache (1,024 entries, by
// the SHA-256 of the envelope; record.Validator.Cache) means the same bytes
// are verified once per node, on write or read, whichever comes first: a
// record a node holds answers its own finds without a second Ed25519
// verification, and so does a record every holder returns. The time-bound
// checks (expiry, issued-at) still run on every read.
package store
