package bridge

import (
	"fmt"
	"maps"

	"github.com/netget/netget-peer/record"
)

// The frames of a watch (protocol v1, feature "watch"). A watch is
// answered by the frames a find is (result, done, error) and by removed.

// WatchFrame asks the bridge to follow the verified providers of a
// service: a result frame for each provider it has now and for each one
// that appears or republishes later, a removed frame for each that goes,
// until the client's cancel. ID names the watch in every frame that
// answers it; it must be unique among the connection's finds and watches.
type WatchFrame struct {
	Type    string            `json:"type"`            // "watch"
	ID      string            `json:"id"`              // 1-64 printable ASCII bytes
	Service string            `json:"service"`         // [A-Za-z0-9._-]{1,64}
	Where   map[string]string `json:"where,omitempty"` // metadata a shown record carries, exactly
	Limit   int               `json:"limit,omitempty"` // most providers shown at once; 0: max_results
}

// RemovedFrame says that a provider a watch showed is gone, or no longer
// matches the watch's where. The bridge only sends it for a peer it sent
// a result for, and sends a result again if the peer comes back.
type RemovedFrame struct {
	Type   string `json:"type"` // "removed"
	ID     string `json:"id"`
	Peer   string `json:"peer"`
	Reason string `json:"reason"` // one of the Removed* reasons
}

// Why a watched provider was removed, as a removed frame's reason says.
// The first four come from the node (a registry's judgement); the list
// only grows.
const (
	RemovedWithdrawn    = "withdrawn"    // the provider published a signed tombstone (unprovide)
	RemovedExpired      = "expired"      // its record's expires-at passed without a republish
	RemovedUnhealthy    = "unhealthy"    // the registries' health checks fail for it
	RemovedDeregistered = "deregistered" // unhealthy for the registries' grace period; dropped
	RemovedUnmatched    = "unmatched"    // its new record no longer matches the watch's where
)

func (*WatchFrame) clientFrame()   {}
func (*RemovedFrame) serverFrame() {}

func parseWatch(b []byte) (*WatchFrame, error) {
	f := &WatchFrame{}
	if err := decode(b, f); err != nil {
		return nil, err
	}
	if err := checkID(f.ID); err != nil {
		return nil, fmt.Errorf("%w: watch: %w", ErrBadFrame, err)
	}
	if err := record.ValidateName(f.Service); err != nil {
		return nil, fmt.Errorf("%w: watch: %w", ErrBadFrame, err)
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("%w: watch: limit must not be negative", ErrBadFrame)
	}
	// where matches record metadata, so it cannot be larger than a
	// record's: the record's own limits bound it.
	if err := record.ValidateMeta(f.Where); err != nil {
		return nil, fmt.Errorf("%w: watch: where: %w", ErrBadFrame, err)
	}
	if len(f.Where) == 0 {
		f.Where = nil // one shape for "no where", whatever the client sent
	}
	return f, nil
}

// matches reports whether meta carries every pair of where.
func matches(meta, where map[string]string) bool {
	for k, v := range where {
		if got, ok := meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// cloneWhere copies a where for logs and Filters, which must not change
// the watch's own.
func cloneWhere(w map[string]string) map[string]string { return maps.Clone(w) }
