// Package registry is netget's registry protocol,
// /netget/<network>/registry/1.0.0, on the wire: the protocol ID, its
// message codec, a Client (List, ListPage, ListAll, Push) that keeps idle streams per peer for
// reuse, a Handler that serves the protocol over a small Holder interface
// (list the records held for a service; accept one record), and the
// per-peer Limiter that bounds each remote peer's requests (dht/channel
// bounds channel opens per peer with it too). Beside it, the watch
// protocol, /netget/<network>/watch/1.0.0 (watch.go): its messages
// (WatchMsg, strictly decoded by DecodeWatchMsg), the request reader a
// registry uses and the watcher's side (OpenWatch, WatchStream); the
// serving side is dht's, which owns the records and their changes.
//
// It also carries the sync protocol registries keep each other in step
// with, /netget/<network>/sync/1.0.0 (sync.go: digest, pull, forward): a
// SyncClient and a SyncHandler over a Replica (the records as sync sees
// them, and the write path of forwarded ones).
//
// It knows nothing of the DHT or the record store: package dht builds a
// Client and a Handler for its Node, and its Holder is the node's store
// and write path. Records travel as signed envelopes and are verified by
// whoever receives them, never here.
//
// # Choices made here
//
//   - ListDialling, the list a find's walk sends a peer it is dialling,
//     does not wait for the new connection's identify exchange: the
//     client proposes the protocol in the request's own write
//     (multistream-select's lazy handshake), a round trip sooner than
//     go-libp2p's host.NewStream, which waits for identify first; a peer
//     that does not speak the protocol fails it with ErrUnsupported.
//     Every other request opens its stream with host.NewStream: opening
//     them all that way lost finds on the 200-node loopback benchmark
//     (1 and 6 DHT-path misses of 100, against none), for a cause not
//     yet found.
//   - One request at a time per stream, several per stream over its life:
//     opening a stream costs about as much as an exchange (kad-dht does
//     the same with its own streams).
//   - A list without a cursor is what a find sends (the best MaxListLimit
//     records); a list with one pages through a whole service in peer-ID
//     order (keyset paging: no snapshot kept per walker, a provider that
//     stays is returned once). Responses to cursorless lists never carry
//     the new "next" field, since older requesters refuse unknown fields.
//     A bad cursor is answered "bad request" (ErrBadRequest), not reset:
//     the requester learns why.
//   - Strict decoding: unknown fields, trailing data, a list with a record
//     or a put with a CID reset the stream (ErrBadMessage), as does a peer
//     over its request rate; a stream the requester resets, closes or
//     leaves idle is normal and logged at debug level.
//   - The Limiter never hands a peer a fresh bucket it has not earned: a
//     full table evicts only a bucket that has refilled, else newcomers
//     share one overflow bucket. WaitN spends byte tokens (a sync pull's
//     response waits for them).
//   - Sync digests are a fixed 256 buckets of a 64-bit key hash (3 KiB):
//     enough for a store of a few hundred thousand records to differ in
//     few buckets after a few changes, without a Merkle tree to keep. A
//     pull's have list is binary (16 bytes a record), a response at most
//     PullBudget bytes of envelopes, resumable where it stopped.
package registry
