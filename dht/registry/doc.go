// Package registry is netget's registry protocol,
// /netget/<network>/registry/1.0.0, on the wire: the protocol ID, its
// message codec, a Client (List, Push) that keeps idle streams per peer for
// reuse, a Handler that serves the protocol over a small Holder interface
// (list the records held for a service; accept one record), and the
// per-peer Limiter that bounds each remote peer's requests (dht/channel
// bounds channel opens per peer with it too).
//
// It knows nothing of the DHT or the record store: package dht builds a
// Client and a Handler for its Node, and its Holder is the node's store
// and write path. Records travel as signed envelopes and are verified by
// whoever receives them, never here.
//
// # Choices made here
//
//   - One request at a time per stream, several per stream over its life:
//     opening a stream costs about as much as an exchange (kad-dht does
//     the same with its own streams).
//   - Strict decoding: unknown fields, trailing data, a list with a record
//     or a put with a CID reset the stream (ErrBadMessage), as does a peer
//     over its request rate; a stream the requester resets, closes or
//     leaves idle is normal and logged at debug level.
//   - The Limiter never hands a peer a fresh bucket it has not earned: a
//     full table evicts only a bucket that has refilled, else newcomers
//     share one overflow bucket.
package registry
