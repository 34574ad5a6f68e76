package control

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/netget/netget-peer/record"
)

// The control API's JSON types. Fields are only ever added; a version bump
// of the routes (/v2/…) is the only way to change or remove one. Records
// travel as the signed record's own payload (record.Service's JSON).

// Duration is a time.Duration that travels in JSON as a Go duration string
// ("90s", "1h0m0s"), as Consul's and Caddy's APIs write them.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "10m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"10m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// ProvideRequest is the body of POST /v1/provide.
type ProvideRequest struct {
	// Name is the service name, [A-Za-z0-9._-]{1,64}.
	Name string `json:"name"`
	// Meta is the record's metadata (≤ 32 pairs).
	Meta map[string]string `json:"meta,omitempty"`
	// TTL is the record's lifetime, at most 24h (default dht.DefaultTTL);
	// the daemon republishes at half of it.
	TTL Duration `json:"ttl,omitzero"`
	// Network, if set, must be the daemon's network (else 409
	// wrong_network), so a CLI flag never silently goes unheeded.
	Network string `json:"network,omitempty"`
}

// ProvideResponse answers POST /v1/provide: the first published record.
type ProvideResponse struct {
	Service *record.Service `json:"service"`
}

// UnprovideRequest is the body of POST /v1/unprovide.
type UnprovideRequest struct {
	Name    string `json:"name"`
	Network string `json:"network,omitempty"`
}

// UnprovideResponse answers POST /v1/unprovide: the published tombstone,
// and whether the daemon was providing the service (it withdraws it
// either way, for a record published by an earlier run).
type UnprovideResponse struct {
	Service     *record.Service `json:"service"`
	WasProvided bool            `json:"was_provided"`
}

// FindRequest is the body of POST /v1/find.
type FindRequest struct {
	Name string `json:"name"`
	// Limit stops after this many providers; 0 means all found in time.
	Limit int `json:"limit,omitempty"`
	// Timeout bounds the search (default: the node's, 10s; at most
	// MaxFindTimeout).
	Timeout Duration `json:"timeout,omitzero"`
	Network string   `json:"network,omitempty"`
}

// Find stream event types, one JSON object per line.
const (
	// EventResult carries one verified provider.
	EventResult = "result"
	// EventDone ends a stream that ran to its end; Found counts results.
	EventDone = "done"
)

// FindEvent is one line of POST /v1/find's NDJSON stream: a "result" per
// verified provider, as soon as it verifies, then one "done". A stream
// without "done" broke off. Record is the one view of a found record
// (record.View), as find --json and the bridge show it.
type FindEvent struct {
	Type      string       `json:"type"`
	Record    *record.View `json:"record,omitempty"`
	Source    string       `json:"source,omitempty"`
	ElapsedMS float64      `json:"elapsed_ms,omitempty"`
	Found     int          `json:"found,omitempty"`
}

// Result is one verified provider the daemon found, as Client.Find
// yields it.
type Result struct {
	Record record.View
	// Source is the path that brought it (dht.Source's values).
	Source  string
	Elapsed time.Duration
}

// Status answers GET /v1/status.
type Status struct {
	Peer    string `json:"peer"`
	Network string `json:"network"`
	// DHTMode is "server", "client" or "auto", as the daemon was told.
	DHTMode string `json:"dht_mode,omitempty"`
	// Addrs are full multiaddrs (with /p2p/<peer>): what others pass to
	// --bootstrap or dial.
	Addrs        []string `json:"addrs"`
	RoutingTable int      `json:"routing_table"`
	// Registries are the connected registries this node uses for the
	// fast path.
	Registries []string `json:"registries"`
	// StoredRecords counts the signed records the node holds.
	StoredRecords int             `json:"stored_records"`
	Services      []ServiceStatus `json:"services"`
	DataDir       string          `json:"data_dir"`
	Version       string          `json:"version,omitempty"`
	StartedAt     time.Time       `json:"started_at"`
	// Reachability is how others reach the node: "public", "private"
	// (through Relays, at RelayAddrs) or "unknown" (AutoNAT has not
	// decided). Relays are the peer IDs of the relays (registries) it
	// holds a slot on; RelayAddrs its circuit addresses through them
	// (<relay addr>/p2p/<relay>/p2p-circuit), also among Addrs.
	Reachability string   `json:"reachability"`
	Relays       []string `json:"relays"`
	RelayAddrs   []string `json:"relay_addrs"`
	// Sync is a registry's sync with the other registries of its network;
	// absent on a node that does not sync.
	Sync *SyncStatus `json:"sync,omitempty"`
}

// SyncStatus is what a registry's sync with the others has done.
type SyncStatus struct {
	// Peers are the registries it syncs with now.
	Peers []string `json:"peers"`
	// LastRound is when the last reconciliation ended (absent: none yet);
	// LastError why it failed with some peer.
	LastRound time.Time `json:"last_round,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// LastFetched and LastBytes are what the last reconciliation took and
	// read.
	LastFetched int   `json:"last_fetched"`
	LastBytes   int64 `json:"last_bytes"`
	// Rounds, Fetched (by reconciliation), Forwarded (sent as records
	// arrived), Received (forwarded by peers, new here) and Refused
	// (failed verification or quotas) count since start.
	Rounds    uint64 `json:"rounds"`
	Fetched   uint64 `json:"fetched"`
	Forwarded uint64 `json:"forwarded"`
	Received  uint64 `json:"received"`
	Refused   uint64 `json:"refused"`
}

// ServiceStatus is one service the daemon provides.
type ServiceStatus struct {
	Name string            `json:"name"`
	Meta map[string]string `json:"meta"`
	TTL  Duration          `json:"ttl"`
	// Seq and ExpiresAt are the last published record's; zero until the
	// first publication lands.
	Seq         uint64    `json:"seq"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	// LastError is the last publication's error, if it failed.
	LastError string `json:"last_error,omitempty"`
}

// Error codes. Each is stable API; a client decides on Code, never on the
// message.
const (
	CodeBadRequest       = "bad_request"        // 400: malformed body, bad limit or timeout
	CodeInvalidName      = "invalid_name"       // 400: service name syntax
	CodeInvalidMeta      = "invalid_meta"       // 400: metadata count or sizes
	CodeInvalidTTL       = "invalid_ttl"        // 400: ttl not in (0, 24h]
	CodeNotFound         = "not_found"          // 404: no such route
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeWrongNetwork     = "wrong_network"      // 409: request for another network
	CodeConflict         = "conflict"           // 409: a concurrent request for the same service won
	CodeTooLarge         = "too_large"          // 413: body over MaxBodySize
	CodePublishFailed    = "publish_failed"     // 502: the network did not take it
	CodeNotReady         = "not_ready"          // 503: node not joined to the network
	CodeUnavailable      = "unavailable"        // 503: the daemon is shutting down
	CodeTimeout          = "timeout"            // 504: first publication did not land in time
	CodeInternal         = "internal"           // 500
	CodeBadRegistry      = "bad_registry"       // 400: registry address without /p2p/, not a registry, this node
	CodeUnknownRegistry  = "unknown_registry"   // 404: remove of a peer that is not a registry
	CodeUnreachable      = "unreachable"        // 502: the registry to add could not be reached
)

// Error is the body of every non-2xx response, and what the Client returns
// for one. Status is the HTTP status; it is not part of the body.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error returns the message, which is written for people.
func (e *Error) Error() string { return e.Message }
