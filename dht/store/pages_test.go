package store

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// pagedStore is a store holding one service's records of n providers.
type pagedStore struct {
	t      testing.TB
	s      *Store
	v      record.Validator
	now    time.Time
	c      cid.Cid
	keys   map[peer.ID]crypto.PrivKey
	health *turning
	seq    uint64 // records added so far: each one's seq is above the last
}

func newPagedStore(t testing.TB, n int) *pagedStore {
	now := time.Now()
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	health := &turning{banned: make(map[peer.ID]bool)}
	limits := DefaultLimits()
	limits.PerService = 2 * n
	ps := &pagedStore{t: t, s: New(dssync.MutexWrap(ds.NewMapDatastore()), v, limits, health), v: v, now: now,
		keys: make(map[peer.ID]crypto.PrivKey), health: health}
	for range n {
		ps.add(nil)
	}
	return ps
}

// add stores a record of a new provider, or a new one of p's.
func (ps *pagedStore) add(p *peer.ID, mutate ...func(*record.Service)) peer.ID {
	ps.t.Helper()
	var id peer.ID
	var key crypto.PrivKey
	if p == nil {
		key, id = recordtest.NewKey(ps.t)
		ps.keys[id] = key
	} else {
		id, key = *p, ps.keys[*p]
	}
	svc := recordtest.Valid(id, ps.now)
	ps.seq++
	svc.Seq = uint64(ps.now.UnixNano()) + ps.seq
	for _, m := range mutate {
		m(svc)
	}
	env := recordtest.SealRaw(ps.t, svc, key)
	got, err := ps.v.Open(env)
	if err != nil {
		ps.t.Fatal(err)
	}
	if ps.c, err = record.ServiceCID(got.Network, got.Name); err != nil {
		ps.t.Fatal(err)
	}
	if err := ps.s.Add(context.Background(), ps.c, got, env, Source{}); err != nil {
		ps.t.Fatal(err)
	}
	return id
}

// page returns the providers of the page after after, and the next cursor.
func (ps *pagedStore) page(after peer.ID, o PageOpts) ([]peer.ID, peer.ID) {
	ps.t.Helper()
	o.After = after
	pg := ps.s.Page(context.Background(), ps.c, ps.now, o)
	ids := make([]peer.ID, len(pg.Records))
	for i, env := range pg.Records {
		svc, err := ps.v.Open(env)
		if err != nil {
			ps.t.Fatalf("page served a bad record: %v", err)
		}
		ids[i] = svc.Peer
	}
	return ids, pg.Next
}

// TestStorePagesCoverServiceOnce: pages of 100 (and pages bounded by bytes
// to one record) walk a service of 1,000 providers in peer-ID order, each
// provider exactly once, the last page saying nothing follows.
func TestStorePagesCoverServiceOnce(t *testing.T) {
	ps := newPagedStore(t, 1000)
	want := make([]peer.ID, 0, len(ps.keys))
	for id := range ps.keys {
		want = append(want, id)
	}
	slices.Sort(want)
	for _, tc := range []struct {
		name  string
		o     PageOpts
		pages int
	}{
		{"pages of 100", PageOpts{Limit: 100}, 10},
		{"pages of 1000", PageOpts{Limit: 1000}, 1},
		{"pages of 333", PageOpts{Limit: 333}, 4},
		{"one record by bytes", PageOpts{Limit: 100, Bytes: 1}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []peer.ID
			var after peer.ID
			pages := 0
			for {
				ids, next := ps.page(after, tc.o)
				got, pages = append(got, ids...), pages+1
				if next == "" {
					break
				}
				if next <= after {
					t.Fatalf("page %d: next %s does not advance past %s", pages, next, after)
				}
				after = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages returned %d providers (%d distinct), want the %d in peer-ID order", len(got), len(slices.Compact(slices.Clone(got))), len(want))
			}
			if pages != tc.pages {
				t.Fatalf("got %d pages, want %d", pages, tc.pages)
			}
		})
	}
}

// TestStorePagesStableAcrossChanges: between the pages of one walk,
// providers join, one withdraws, one is judged dead, and one that stays
// publishes a new record: every provider that stayed is returned exactly
// once, those that left are not returned after they left, and a newcomer
// is returned at most once.
func TestStorePagesStableAcrossChanges(t *testing.T) {
	ps := newPagedStore(t, 1000)
	seen := make(map[peer.ID]int)
	left := make(map[peer.ID]bool)
	joined := make(map[peer.ID]bool)
	var after peer.ID
	for page := 0; ; page++ {
		ids, next := ps.page(after, PageOpts{Limit: 100})
		for _, id := range ids {
			seen[id]++
			if left[id] {
				t.Fatalf("page %d returned %s, which left before it", page, id)
			}
		}
		if next == "" {
			break
		}
		after = next
		// Changes between pages, on both sides of the cursor.
		for range 3 {
			joined[ps.add(nil)] = true
		}
		var others []peer.ID
		for id := range ps.keys {
			if !left[id] && !joined[id] && id != after {
				others = append(others, id)
			}
		}
		slices.Sort(others)
		gone, dead, renewed := others[page*7%len(others)], others[(page*13+5)%len(others)], others[(page*29+11)%len(others)]
		ps.add(&gone, func(s *record.Service) { s.Withdrawn, s.Addrs = true, nil })
		left[gone] = true
		ps.health.ban(dead)
		left[dead] = true
		if !left[renewed] {
			ps.add(&renewed, func(s *record.Service) { s.Meta = map[string]string{"renewed": "yes"} })
		}
	}
	for id := range ps.keys {
		switch n := seen[id]; {
		case n > 1:
			t.Fatalf("%s returned %d times", id, n)
		case n == 0 && !left[id] && !joined[id]:
			t.Fatalf("%s stayed throughout and was never returned", id)
		}
	}
}

// TestStorePageKeptUntilItChanges: a hot service's pages are served from
// the kept walk, which a change to one of its records drops.
func TestStorePageKeptUntilItChanges(t *testing.T) {
	ps := newPagedStore(t, 50)
	first, _ := ps.page("", PageOpts{Limit: 100})
	ps.s.mu.Lock()
	kept := ps.s.walks[ps.c]
	ps.s.mu.Unlock()
	if kept == nil || slices.Contains(kept.read, false) {
		t.Fatal("no walk kept after a page")
	}
	again, _ := ps.page("", PageOpts{Limit: 100})
	if !slices.Equal(first, again) || ps.s.walks[ps.c] != kept {
		t.Fatal("a second page was not served from the kept walk")
	}
	newcomer := ps.add(nil)
	after, _ := ps.page("", PageOpts{Limit: 100})
	if len(after) != 51 || !slices.Contains(after, newcomer) {
		t.Fatalf("after a new record the page holds %d providers (newcomer in: %v), want 51 with it", len(after), slices.Contains(after, newcomer))
	}
}

// countingDS counts the Gets of the datastore it wraps.
type countingDS struct {
	ds.Datastore
	gets atomic.Int64
}

func (d *countingDS) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	d.gets.Add(1)
	return d.Datastore.Get(ctx, k)
}

// TestStorePageReadsOnlyItsPage: a page of a service whose walk is not
// kept reads the envelopes it carries, not every record of the service,
// so a peer asking the first pages of many services (evicting each
// other's walks) costs a page's reads a request, not a service's.
func TestStorePageReadsOnlyItsPage(t *testing.T) {
	ps := newPagedStore(t, 1000)
	d := &countingDS{Datastore: ps.s.ds}
	ps.s.ds = d
	first, next := ps.page("", PageOpts{Limit: 10})
	if len(first) != 10 || next == "" {
		t.Fatalf("first page: %d records, next %q; want 10 and a next", len(first), next)
	}
	if n := d.gets.Load(); n != 10 {
		t.Fatalf("a cold page of 10 read %d records, want 10", n)
	}
	again, _ := ps.page("", PageOpts{Limit: 10})
	if !slices.Equal(first, again) || d.gets.Load() != 10 {
		t.Fatalf("the same page again read %d records in all, want 10 (from the kept walk)", d.gets.Load())
	}
}

// BenchmarkStorePage: one page of 100 of a kept walk of 1,000 providers,
// and a walk of all 1,000 in pages of up to 1,024 cut at 180 KiB.
func BenchmarkStorePage(b *testing.B) {
	ps := newPagedStore(b, 1000)
	b.Run("page100", func(b *testing.B) {
		for b.Loop() {
			if pg := ps.s.Page(context.Background(), ps.c, ps.now, PageOpts{Limit: 100}); len(pg.Records) != 100 {
				b.Fatal(len(pg.Records))
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			n := 0
			var after peer.ID
			for {
				pg := ps.s.Page(context.Background(), ps.c, ps.now, PageOpts{After: after, Limit: 1024, Bytes: 180 << 10})
				n += len(pg.Records)
				if pg.Next == "" {
					break
				}
				after = pg.Next
			}
			if n != 1000 {
				b.Fatal(n)
			}
		}
	})
}
