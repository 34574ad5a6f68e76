// Package dht owns netget's Kademlia DHT for one network: the protocol
// prefix, the DHT mode, the record validator, provide / find / withdraw,
// republishing, and the registry protocol every node serves for the
// records it holds.
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
// # Provide
//
// Publish seals a record (seq = issue time in microseconds, strictly
// increasing per node) and, concurrently, puts it in the DHT value store
// under /netget/<cid>/<peer> and announces the node as a provider of the
// service CID. Provide republishes at half the TTL until its context ends:
// kad-dht republishes nothing by itself. Withdraw publishes a signed
// tombstone that outlives the record it replaces.
//
// # Find
//
// Find walks the DHT for providers of the service CID and, for each new
// provider, fetches the provider's own record over the registry protocol
// (one round trip, usually on a connection the walk already opened),
// falling back to the DHT value store. Every record is verified with
// record.Validator whatever path it came by; a valid tombstone stops the
// search for that provider. Results stream as soon as they verify, at most
// one per peer, and the whole search is bounded by a timeout.
//
// # Readiness
//
// Providing or finding with an empty routing table fails inside kad-dht
// ("failed to find any peer in table"), so both wait on Ready, bounded by
// their own deadline, and fail with ErrNotReady if the node never joined.
//
// # Registry protocol
//
// See proto.go for /netget/<network>/registry/1.0.0 and an example exchange.
package dht
