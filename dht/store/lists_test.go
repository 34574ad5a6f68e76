package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
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

// turning is verdicts whose served set a test changes, bumping the epoch
// as the node's health checks do when a verdict turns.
type turning struct {
	everyone
	mu     sync.Mutex
	banned map[peer.ID]bool
	epoch  uint64
}

func (t *turning) Serves(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.banned[p]
}

func (t *turning) Epoch() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch
}

func (t *turning) ban(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.banned[p] = true
	t.epoch++
}

// TestStoreListKeptUntilItChanges: the answer a store keeps for a hot
// service is what a fresh list would return after every kind of change:
// a new record, a new seq, a tombstone, a verdict that turns, a record
// that expires, a sweep, and a limit asked for anew.
func TestStoreListKeptUntilItChanges(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	health := &turning{banned: make(map[peer.ID]bool)}
	s := New(dssync.MutexWrap(ds.NewMapDatastore()), v, DefaultLimits(), health)
	type provider struct {
		key crypto.PrivKey
		id  peer.ID
	}
	var ps []provider
	var c cid.Cid
	add := func(p provider, mutate func(*record.Service)) {
		t.Helper()
		svc := recordtest.Valid(p.id, now)
		if mutate != nil {
			mutate(svc)
		}
		env := recordtest.SealRaw(t, svc, p.key)
		got, err := v.Open(env)
		if err != nil {
			t.Fatal(err)
		}
		if c, err = record.ServiceCID(got.Network, got.Name); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(ctx, c, got, env, Source{}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		key, id := recordtest.NewKey(t)
		ps = append(ps, provider{key, id})
		add(ps[len(ps)-1], nil)
	}
	list := func(at time.Time, limit int) int {
		t.Helper()
		first := len(s.List(ctx, c, at, ListOpts{Limit: limit}))
		if again := len(s.List(ctx, c, at, ListOpts{Limit: limit})); again != first {
			t.Fatalf("a list repeated: %d records, first %d", again, first)
		}
		return first
	}
	steps := []struct {
		name   string
		change func()
		at     time.Time
		limit  int
		want   int
	}{
		{"five providers", func() {}, now, 32, 5},
		{"limit asked anew", func() {}, now, 3, 3},
		{"a sixth provider", func() {
			key, id := recordtest.NewKey(t)
			ps = append(ps, provider{key, id})
			add(ps[5], func(s *record.Service) { s.ExpiresAt = now.Add(time.Minute) })
		}, now, 32, 6},
		{"a new seq", func() { add(ps[0], func(s *record.Service) { s.Seq = 8 }) }, now, 32, 6},
		{"a tombstone", func() { add(ps[1], func(s *record.Service) { s.Seq, s.Withdrawn = 8, true }) }, now, 32, 5},
		{"a verdict turns", func() { health.ban(ps[2].id) }, now, 32, 4},
		{"a record expires", func() {}, now.Add(2 * time.Minute), 32, 3},
		{"a sweep", func() {
			if _, err := s.Sweep(ctx, now, map[peer.ID]bool{ps[3].id: true}); err != nil {
				t.Fatal(err)
			}
		}, now.Add(2 * time.Minute), 32, 2},
	}
	for _, st := range steps {
		st.change()
		if got := list(st.at, st.limit); got != st.want {
			t.Fatalf("%s: list returns %d records, want %d", st.name, got, st.want)
		}
	}
}

// TestFirstK: the k first of a slice by a total order are those a full
// sort keeps, in order, for every k around and beyond the slice's length.
func TestFirstK(t *testing.T) {
	var ps []peer.ID
	for i := range 200 {
		ps = append(ps, peer.ID(fmt.Sprintf("p%03d", (i*37)%200))) // a permutation
	}
	want := slices.Sorted(slices.Values(ps))
	for _, k := range []int{0, 1, 2, 31, 32, 33, 199, 200, 201} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			got := firstK(slices.Clone(ps), k, cmp.Compare[peer.ID])
			if w := want[:min(k, len(want))]; !slices.Equal(got, w) {
				t.Fatalf("firstK(%d) = %v, want %v", k, got, w)
			}
		})
	}
}
