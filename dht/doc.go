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
// increasing per node) and walks the DHT once to the peers closest to the
// service CID. Each of them gets, concurrently, a kad-dht provider record
// (ADD_PROVIDER) and the signed record (registry-protocol put, verified and
// indexed by the receiver). This is kad-dht's classic provide assembled from
// its exported parts (GetClosestPeers, ProtocolMessenger), so one walk places
// both records on the same peers. The record also goes into the DHT value
// store under /netget/<cid>/<peer>, in the background, as a fallback.
// Provide republishes at half the TTL until its context ends: kad-dht
// republishes nothing by itself. Withdraw publishes a signed tombstone the
// same way (and waits for every copy) that outlives the record it replaces.
//
// # Find
//
// Find runs kad-dht's provider walk and, as the walk queries each peer,
// asks that same peer over the registry protocol for the records it holds
// (one round trip on the connection the walk opens). The peers closest to
// the service hold the signed records, so a finder usually has a verified
// record when the walk reaches its first provider, without dialling the
// provider. A provider whose record none of them held is asked directly,
// then the DHT value store. This node's own index is checked first. Every
// record is verified with record.Validator whatever path it came by
// (identical envelopes once per search); per peer the highest seq wins and
// a valid tombstone stops that peer. Results stream as soon as they verify,
// at most one per peer, and the search is bounded by a timeout.
//
// # Readiness
//
// Providing or finding with an empty routing table fails inside kad-dht
// ("failed to find any peer in table"), so both wait on Ready, bounded by
// their own deadline, and fail with ErrNotReady if the node never joined.
//
// # Registry protocol
//
// See proto.go for /netget/<network>/registry/1.0.0 (list, put) and an
// example exchange. Every node serves it from its index of verified
// records (store.go), bounded per service and in total.
package dht
