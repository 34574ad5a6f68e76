package bridge

import (
	"hash/maphash"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/netget/netget-peer/record"
)

// maxCachedRecord is the most bytes of JSON one recordCache entry holds:
// a larger record is encoded afresh each time it is sent.
const maxCachedRecord = 2048

// maxRecordCache is the largest Config.RecordCache: entries of under
// 96 MiB together, far more providers than a bridge sends again.
const maxRecordCache = 1 << 14

// recordCache keeps the JSON of records the bridge sent, so that a record
// sent again (the same provider found by many finds) is copied instead of
// encoded: the base58 of its peer ID, its times, its sorted metadata were
// the largest part of the bridge's own work a find after the socket
// (BenchmarkBridgeServer's profile; see the README's bridge figures). It
// lives in the bridge rather than on record.Service because records are
// values that other packages copy and build; here it is bounded in one
// place. It holds at most Config.RecordCache entries, each at most
// maxCachedRecord bytes of JSON and a copy of the record it came from, in
// a table of that many slots addressed by what names a signed record (its
// peer, network, service and seq), not by its pointer: a node's Find
// yields a fresh copy of a record for every find (record.Validator's cache
// clones), so the same record arrives at a new address each time. A new
// record takes its slot's place (no eviction list, no lock: each slot is
// an atomic pointer to an immutable entry). An entry is used only when
// the record equals the copy it keeps in every field the view shows, so a
// record that differs (a re-signed record under the same seq, a Finder
// that changed one it yielded) gets a fresh encoding, never a stale one.
type recordCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[cachedRecord] // nil: the cache is off
}

// cachedRecord is one entry: the JSON encoded from snap, a copy of the
// record sent, sharing nothing mutable with it.
type cachedRecord struct {
	snap record.Service
	json []byte
}

func newRecordCache(entries int) *recordCache {
	return &recordCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[cachedRecord], entries)}
}

// appendRecord appends the JSON object of r's view to b, from the cache
// when it holds r, else encoding it (and keeping it); false, leaving b as
// it was, when r needs JSON's escaping (see appendView). A nil cache
// encodes every time.
func (c *recordCache) appendRecord(b []byte, r *record.Service) ([]byte, bool) {
	if c == nil || len(c.slots) == 0 {
		return appendView(b, record.ViewOf(r))
	}
	slot := c.slot(r)
	if e := slot.Load(); e != nil && sameRecord(&e.snap, r) {
		return append(b, e.json...), true
	}
	n := len(b)
	b, ok := appendView(b, record.ViewOf(r))
	if ok && len(b)-n <= maxCachedRecord {
		snap := *r
		snap.Addrs, snap.Meta = slices.Clone(r.Addrs), maps.Clone(r.Meta)
		slot.Store(&cachedRecord{snap: snap, json: slices.Clone(b[n:])})
	}
	return b, ok
}

// slot returns r's slot, addressed by its peer, network, service and seq.
func (c *recordCache) slot(r *record.Service) *atomic.Pointer[cachedRecord] {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(string(r.Peer))
	h.WriteString(r.Network)
	h.WriteString(r.Name)
	maphash.WriteComparable(&h, r.Seq)
	return &c.slots[h.Sum64()%uint64(len(c.slots))]
}

// sameRecord reports whether r still holds what snap does, in every field
// its view shows.
func sameRecord(snap, r *record.Service) bool {
	return snap.Peer == r.Peer && snap.Name == r.Name && snap.Network == r.Network && snap.Seq == r.Seq &&
		snap.IssuedAt.Equal(r.IssuedAt) && snap.ExpiresAt.Equal(r.ExpiresAt) &&
		slices.Equal(snap.Addrs, r.Addrs) && maps.Equal(snap.Meta, r.Meta)
}
