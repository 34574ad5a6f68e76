package store

import (
	"cmp"
	"context"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// everyone is the verdicts of a node whose health checks are off: every
// record enters and is served, none is expendable.
type everyone struct{}

func (everyone) Admit(*record.Service) error             { return nil }
func (everyone) Arrived(peer.ID)                         {}
func (everyone) Left(peer.ID)                            {}
func (everyone) Serves(peer.ID) bool                     { return true }
func (everyone) Expendable(peer.ID) (ok, unhealthy bool) { return false, false }
func (everyone) Rank(a, b peer.ID) int                   { return cmp.Compare(a, b) }
func (everyone) Epoch() uint64                           { return 0 }

// stallingDatastore holds the first Put of key stall until release
// closes, and says when it has begun.
type stallingDatastore struct {
	ds.Batching
	stall   ds.Key
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (d *stallingDatastore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if k == d.stall {
		first := false
		d.once.Do(func() { first = true })
		if first {
			close(d.started)
			<-d.release
		}
	}
	return d.Batching.Put(ctx, k, v)
}

// TestStorePutDoesNotHoldLockAcrossWrite: while one put's datastore write
// is stalled (as a synced write waits for its fsync), puts of other
// records complete and lists are served, so concurrent puts can share one
// commit.
func TestStorePutDoesNotHoldLockAcrossWrite(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	v := record.Validator{Network: "development"}
	sealed := func() (*record.Service, []byte) {
		key, id := recordtest.NewKey(t)
		env := recordtest.SealRaw(t, recordtest.Valid(id, now), key)
		svc, err := v.Open(env)
		if err != nil {
			t.Fatal(err)
		}
		return svc, env
	}
	slow, slowEnv := sealed()
	c, err := record.ServiceCID(slow.Network, slow.Name)
	if err != nil {
		t.Fatal(err)
	}
	d := &stallingDatastore{Batching: dssync.MutexWrap(ds.NewMapDatastore()),
		stall: dsKey(record.Key(c, slow.Peer)), started: make(chan struct{}), release: make(chan struct{})}
	s := New(d, v, DefaultLimits(), everyone{})
	done := make(chan error, 1)
	go func() { done <- s.Add(ctx, c, slow, slowEnv, Source{}) }()
	<-d.started
	others := make(chan error, 1)
	go func() {
		for range 10 {
			svc, env := sealed()
			if err := s.Add(ctx, c, svc, env, Source{}); err != nil {
				others <- err
				return
			}
		}
		others <- nil
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatalf("put while another write is stalled: %v", err)
		}
	case <-time.After(30 * time.Second):
		close(d.release)
		t.Fatal("puts of other records waited for a stalled write")
	}
	if got := len(s.List(ctx, c, now, ListOpts{Limit: 32})); got != 10 {
		t.Fatalf("list while a write is stalled: %d records, want the 10 written", got)
	}
	close(d.release)
	if err := <-done; err != nil {
		t.Fatalf("stalled put: %v", err)
	}
	if got := len(s.List(ctx, c, now, ListOpts{Limit: 32})); got != 11 {
		t.Fatalf("list after the stalled write: %d records, want 11", got)
	}
}

// TestStoreQuotaAccounting: replacing, sweeping and dropping records
// gives back what they cost, per key, per source and in bytes.
func TestStoreQuotaAccounting(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	v := record.Validator{Network: "development"}
	key, id := recordtest.NewKey(t)
	src := DefaultLimits().sourceOf(ma.StringCast("/ip4/192.0.2.7/tcp/4001"))
	s := New(dssync.MutexWrap(ds.NewMapDatastore()), v, Limits{PerKey: 2, PerSource: 2}, everyone{})
	put := func(name string, seq uint64, expires time.Time) error {
		r := recordtest.Valid(id, now)
		r.Name, r.Seq, r.ExpiresAt = name, seq, expires
		svc, err := v.Open(recordtest.SealRaw(t, r, key))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := record.ServiceCID(svc.Network, svc.Name)
		return s.Add(ctx, c, svc, recordtest.SealRaw(t, r, key), src)
	}
	for seq := uint64(1); seq <= 5; seq++ { // replacing is free
		if err := put("A", seq, now.Add(time.Hour)); err != nil {
			t.Fatalf("replace: %v", err)
		}
	}
	if err := put("B", 1, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := put("C", 1, now.Add(time.Hour)); err == nil {
		t.Fatal("third record of a key with PerKey 2 accepted")
	}
	if _, err := s.Sweep(ctx, now.Add(2*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if err := put("C", 1, now.Add(time.Hour)); err != nil {
		t.Fatalf("after B expired and was swept: %v", err)
	}
	if s.count != 2 || s.bySource[src] != 2 || len(s.byPeer[id]) != 2 || s.bytes <= 0 {
		t.Fatalf("accounts: count %d, source %d, key %d, bytes %d; want 2, 2, 2, >0",
			s.count, s.bySource[src], len(s.byPeer[id]), s.bytes)
	}
}

// TestSourceOf: IPv4 sources are /24s, IPv6 /48s, loopback addresses each
// their own, and a connection without an IP one source.
func TestSourceOf(t *testing.T) {
	l := DefaultLimits()
	for _, tc := range []struct{ addr, want string }{
		{"/ip4/192.0.2.7/tcp/4001", "192.0.2.0/24"},
		{"/ip6/2001:db8:1:2::7/udp/4001/quic-v1", "2001:db8:1::/48"},
		{"/ip4/127.0.0.2/tcp/1", "127.0.0.2/32"},
		{"/ip6/::1/tcp/1", "::1/128"},
		{"/ip6/::ffff:192.0.2.7/tcp/1", "192.0.2.0/24"},
		{"/dns4/example.com/tcp/1", "::/0"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if got := l.sourceOf(ma.StringCast(tc.addr)).p.String(); got != tc.want {
				t.Fatalf("sourceOf(%s) = %s, want %s", tc.addr, got, tc.want)
			}
		})
	}
}
