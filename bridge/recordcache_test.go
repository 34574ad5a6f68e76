package bridge

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// TestRecordCache: a record sent again is copied from its entry; one
// changed in place after it was cached is encoded afresh, never sent
// stale; the cache holds at most its entries, each at most
// maxCachedRecord bytes; a cache of 0 entries keeps nothing.
func TestRecordCache(t *testing.T) {
	_, peer := recordtest.NewKey(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := func(i int) *record.Service {
		return &record.Service{Version: record.Version, Network: "development", Name: "DatabaseService", Peer: peer,
			Addrs: []string{"/ip4/10.0.0.7/tcp/4001"}, Meta: map[string]string{"i": strings.Repeat("x", i%7)},
			Seq: uint64(i), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	encode := func(t *testing.T, c *recordCache, r *record.Service) []byte {
		t.Helper()
		got, ok := c.appendRecord(nil, r)
		want, err := json.Marshal(recordOf(r))
		if !ok || err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendRecord ok %v (Marshal: %v)\n got %s\nwant %s", ok, err, got, want)
		}
		return got
	}
	t.Run("hit", func(t *testing.T) {
		c, r := newRecordCache(8), rec(1)
		encode(t, c, r)
		e := c.entry(r)
		if e == nil {
			t.Fatal("the record was not kept")
		}
		encode(t, c, r)
		if c.entry(r) != e {
			t.Fatal("a record sent again was encoded again")
		}
		// A node's Find yields a fresh copy of the record each find.
		copied := *r
		copied.Addrs, copied.Meta = slices.Clone(r.Addrs), maps.Clone(r.Meta)
		encode(t, c, &copied)
		if c.entry(&copied) != e {
			t.Fatal("a copy of a record sent was encoded again")
		}
	})
	t.Run("changed in place", func(t *testing.T) {
		edits := map[string]func(*record.Service){
			"seq":     func(r *record.Service) { r.Seq++ },
			"meta":    func(r *record.Service) { r.Meta["i"] = "changed" },
			"addr":    func(r *record.Service) { r.Addrs[0] = "/ip4/10.0.0.8/tcp/4001" },
			"expires": func(r *record.Service) { r.ExpiresAt = r.ExpiresAt.Add(time.Second) },
			"name":    func(r *record.Service) { r.Name = "OtherService" },
		}
		for name, edit := range edits {
			t.Run(name, func(t *testing.T) {
				c, r := newRecordCache(8), rec(3)
				before := encode(t, c, r)
				edit(r)
				if after := encode(t, c, r); bytes.Equal(before, after) {
					t.Fatalf("the change did not show: %s", after)
				}
			})
		}
	})
	t.Run("bounded", func(t *testing.T) {
		c := newRecordCache(8)
		for i := range 100 {
			encode(t, c, rec(i))
		}
		big := rec(1)
		big.Addrs = []string{"/dns4/" + strings.Repeat("a", maxCachedRecord) + "/tcp/1"}
		encode(t, c, big)
		if c.entry(big) != nil {
			t.Fatalf("a record of over %d bytes was kept", maxCachedRecord)
		}
		n, size := 0, 0
		for i := range c.slots {
			if e := c.slots[i].Load(); e != nil {
				n, size = n+1, size+len(e.json)
			}
		}
		if n == 0 || n > 8 || size > 8*maxCachedRecord {
			t.Fatalf("%d entries of %d bytes; want 1 to 8, at most %d bytes", n, size, 8*maxCachedRecord)
		}
	})
	t.Run("off", func(t *testing.T) {
		c, r := newRecordCache(0), rec(1)
		encode(t, c, r)
		if c.entry(r) != nil {
			t.Fatal("a cache of 0 entries kept a record")
		}
	})
}

// entry returns r's entry, nil when the cache does not hold it.
func (c *recordCache) entry(r *record.Service) *cachedRecord {
	for i := range c.slots {
		if e := c.slots[i].Load(); e != nil && sameRecord(&e.snap, r) {
			return e
		}
	}
	return nil
}
