// Package record owns netget's service record: network and service-name
// syntax, the service CID and DHT keys, sealing a record into a libp2p signed
// envelope, strict verification, and selection between two valid records.
//
// The package is pure: it never touches the network. Every node verifies a
// record on every write to its store and again on every read, through the
// same code path (Validator.Open), so a record that reached a finder by any
// route has passed the same checks. A Validator may carry a Cache of
// envelopes whose signature and syntax it has verified, keyed by the
// SHA-256 of their bytes: the same bytes are not verified twice, and the
// time-bound checks (expiry, issued-at) run on every Open all the same.
// A Validator may also carry an AllowList ("PEERID" or "Service=PEERID"
// entries) that closes the network to the providers listed; it is checked
// on every Open, cached envelope or not, and fails with ErrNotAllowed.
//
// The syntax rules are exported so every layer applies the same one:
// ValidateNetwork, ValidateName, ValidateTTL (1 s to 24 h) and ValidateMeta
// are what the validator checks, and what the CLI, the daemon's control
// API and the dht package call on their inputs before anything is signed.
//
// View (ViewOf) is the one JSON shape of a record a finder verified, shown
// by find --json, the daemon's control API and the bridge alike.
//
// # Keys
//
// A service is keyed by a CIDv1 (raw codec, sha2-256) of
// "netget:<network>:<lowercased name>"; providers announce that CID with the
// DHT's provider records. Each provider's signed record lives in the DHT
// value store under "/netget/<service CID>/<peer ID>".
//
// # Wire format
//
// The envelope is go-libp2p's core/record envelope (domain
// "netget-service-record", payload type "/netget/service-record/1"). Its
// payload is UTF-8 JSON with these fields, all required unless marked:
//
//	{
//	  "v": 1,                                  // format version
//	  "network": "development",                // [a-z0-9-]{1,32}
//	  "name": "DatabaseService",               // [A-Za-z0-9._-]{1,64}, shown as given
//	  "peer": "12D3KooW…",                     // must equal the envelope's signer
//	  "addrs": ["/ip4/127.0.0.1/tcp/4001"],    // at most 16 multiaddrs
//	  "meta": {"region": "eu"},                // optional, ≤ 32 pairs, key ≤ 64 B, value ≤ 512 B
//	  "seq": 1732500000000000000,              // strictly increasing per (peer, service)
//	  "issued_at": "2026-11-25T05:00:00Z",
//	  "expires_at": "2026-11-25T06:00:00Z",    // 1 s to 24 h after issued_at
//	  "withdrawn": true                        // optional: a signed tombstone
//	}
//
// Metadata keys starting with "netget." are reserved (ReservedMetaPrefix):
// only the known ones are accepted. "netget.channel" (MetaChannel) says the
// provider accepts channels for the service, over
// /netget/<network>/channel/1.0.0, and what they carry: "messages" (a
// WebSocket target or a Go handler) or "stream" (a tcp target's bytes).
// A record without it takes no channels, so nobody dials one that does not.
//
// Unknown fields are rejected, so a record means exactly what version 1 says.
// The whole envelope is at most 4 KiB. Each failed check has its own exported
// error in errors.go.
package record
