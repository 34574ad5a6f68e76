package dht_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// syncRegistry starts a registry that health-checks its providers and
// syncs with the other registries it is connected to, every interval.
func syncRegistry(t *testing.T, interval time.Duration) *dht.Node {
	t.Helper()
	return dhttest.NewNodeOn(t, p2ptest.NewHost(t), "development", dht.ModeServer, func(c *dht.Config) {
		c.Health = dht.RegistryHealth()
		c.Sync = dht.RegistrySync()
		c.Sync.Interval = interval
	})
}

// syncPeers waits until n syncs with exactly want.
func syncPeers(t *testing.T, n *dht.Node, want ...host.Host) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s syncs with %d registries", n.Host().ID(), len(want)), func() bool {
		got := n.SyncStatus().Peers
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			found := false
			for _, p := range got {
				found = found || p == w.ID()
			}
			if !found {
				return false
			}
		}
		return true
	})
}

// provider is a real host that signs its own records and pushes them over
// the registry protocol to the one registry it is connected to: it does
// not walk the DHT, so any other registry can only have its records by
// sync.
type provider struct {
	h      host.Host
	key    crypto.PrivKey
	client *registry.Client
	seq    uint64
}

func newProvider(t *testing.T, to *dht.Node) *provider {
	t.Helper()
	key, _ := recordtest.NewKey(t)
	cfg := p2ptest.Config()
	cfg.Identity = key
	h := p2ptest.NewHostFrom(t, cfg)
	p2ptest.Connect(t, h, to.Host())
	cl := registry.NewClient(h, registry.Protocol("development"))
	t.Cleanup(cl.Close)
	return &provider{h: h, key: key, client: cl, seq: uint64(time.Now().UnixMicro())}
}

// seal signs a record of the provider for service name.
func (p *provider) seal(t *testing.T, name string, withdrawn bool) []byte {
	t.Helper()
	p.seq++
	now := time.Now()
	svc := &record.Service{Version: record.Version, Network: "development", Name: name, Peer: p.h.ID(),
		Seq: p.seq, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Withdrawn: withdrawn}
	if !withdrawn {
		for _, a := range p.h.Addrs() {
			svc.Addrs = append(svc.Addrs, a.String())
		}
	}
	env, err := record.Seal(svc, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// push seals a record for name and pushes it to reg.
func (p *provider) push(t *testing.T, ctx context.Context, reg *dht.Node, name string, withdrawn bool) uint64 {
	t.Helper()
	if err := p.client.Push(ctx, reg.Host().ID(), p.seal(t, name, withdrawn)); err != nil {
		t.Fatalf("push to %s: %v", reg.Host().ID(), err)
	}
	return p.seq
}

func serviceCID(t *testing.T, name string) cid.Cid {
	t.Helper()
	c, err := record.ServiceCID("development", name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// holds reports whether reg holds p's record for c at seq (a tombstone
// when withdrawn).
func holds(reg *dht.Node, c cid.Cid, p peer.ID, seq uint64, withdrawn bool) bool {
	got, w, ok := dht.Held(reg, c, p)
	return ok && got == seq && w == withdrawn
}

// TestSyncForwardsAcrossRegistries: three registries joined as a chain
// (B joins A, C joins B; the DHT may connect A and C later); a provider
// connected to A only; a finder connected to C only gets its
// first result from registry C. Then the provider's tombstone, pushed to
// A, reaches C and C stops serving the record.
func TestSyncForwardsAcrossRegistries(t *testing.T) {
	ctx := testCtx(t)
	a, b, c := syncRegistry(t, time.Minute), syncRegistry(t, time.Minute), syncRegistry(t, time.Minute)
	p2ptest.Connect(t, b.Host(), a.Host())
	p2ptest.Connect(t, c.Host(), b.Host())
	syncPeers(t, a, b.Host())
	syncPeers(t, b, a.Host(), c.Host())
	syncPeers(t, c, b.Host())

	prov := newProvider(t, a)
	svc := serviceCID(t, "DatabaseService")
	seq := prov.push(t, ctx, a, "DatabaseService", false)
	eventually(t, "C holds the record pushed to A", func() bool { return holds(c, svc, prov.h.ID(), seq, false) })

	finder := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, finder.Host(), c.Host())
	finder.AddRegistry(c.Host().ID())
	// C serves it once its own health check of the provider passed.
	eventually(t, "C serves the record", func() bool {
		envs, err := dht.List(ctx, finder, c.Host().ID(), svc)
		return err == nil && len(envs) == 1
	})
	var first dht.Result
	err := finder.Find(ctx, "DatabaseService", dht.FindOptions{Timeout: 10 * time.Second}, func(r dht.Result) bool {
		first = r
		return false
	})
	if err != nil || first.Record == nil {
		t.Fatalf("find through C: %v, got %+v", err, first)
	}
	if first.Record.Peer != prov.h.ID() || first.Source != dht.SourceRegistry {
		t.Fatalf("first result: peer %s from %q, want %s from %q", first.Record.Peer, first.Source, prov.h.ID(), dht.SourceRegistry)
	}

	tomb := prov.push(t, ctx, a, "DatabaseService", true)
	eventually(t, "C holds the tombstone pushed to A", func() bool { return holds(c, svc, prov.h.ID(), tomb, true) })
	envs, err := dht.List(ctx, finder, c.Host().ID(), svc)
	if err != nil || len(envs) != 0 {
		t.Fatalf("C lists %d records (%v) after the tombstone, want 0", len(envs), err)
	}
	// Only sync could bring them: the provider pushed to A alone and never
	// walked the DHT. (A batch is counted once it is all stored.)
	eventually(t, "C counted the record and its tombstone as taken by sync", func() bool {
		st := c.SyncStatus()
		return st.Received+st.Fetched >= 2
	})
}

// TestSyncCatchUp: a registry that joins empty, after every record was
// pushed, serves all of them after one reconciliation, with no provider
// publishing again.
func TestSyncCatchUp(t *testing.T) {
	ctx := testCtx(t)
	a, b := syncRegistry(t, time.Minute), syncRegistry(t, time.Minute)
	p2ptest.Connect(t, b.Host(), a.Host())
	syncPeers(t, a, b.Host())
	names := []string{"DatabaseService", "CacheService", "WebApp", "QueueService"}
	var provs []*provider
	for range 8 {
		p := newProvider(t, a)
		for _, name := range names {
			p.push(t, ctx, a, name, false)
		}
		provs = append(provs, p)
	}
	want := len(provs) * len(names)
	eventually(t, "B holds every record", func() bool { return b.StoredRecords() == want })

	d := syncRegistry(t, 2*time.Second)
	p2ptest.Connect(t, d.Host(), b.Host())
	syncPeers(t, d, b.Host())
	lister := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, lister.Host(), d.Host())
	eventually(t, "the new registry serves every record", func() bool {
		for _, name := range names {
			envs, err := dht.List(ctx, lister, d.Host().ID(), serviceCID(t, name))
			if err != nil || len(envs) != len(provs) {
				return false
			}
		}
		return true
	})
	st := d.SyncStatus()
	if st.Fetched != uint64(want) || st.Received != 0 || st.LastRound.IsZero() {
		t.Fatalf("new registry's sync: fetched %d, received %d, last round %v; want %d fetched by reconciliation, none forwarded",
			st.Fetched, st.Received, st.LastRound, want)
	}
	if st.LastBytes <= 0 || st.Rounds == 0 {
		t.Fatalf("new registry's sync status: %+v", st)
	}
}

// fakeReplica is a malicious registry's side of the sync protocol: it
// claims to hold everything and serves forged records.
type fakeReplica struct {
	forged [][]byte
	pulls  atomic.Int32
}

func (f *fakeReplica) Digest() *registry.Digest {
	var d registry.Digest
	for i := range d {
		d[i] = registry.Bucket{Count: 1, Hash: uint64(i) + 1}
	}
	return &d
}

func (f *fakeReplica) Pull(from, last uint64, have []registry.Entry, budget int) ([][]byte, uint64, bool) {
	f.pulls.Add(1)
	return f.forged, 0, false
}

func (f *fakeReplica) Forwarded(peer.ID, [][]byte) int { return 0 }

// TestSyncRefusesForgedRecords: a malicious "registry" forwards forged
// records to A and serves them to A's reconciliation; A refuses every one
// and B, synced with A, never sees them, while an honest record still
// spreads.
func TestSyncRefusesForgedRecords(t *testing.T) {
	ctx := testCtx(t)
	a, b := syncRegistry(t, time.Minute), syncRegistry(t, time.Minute)
	p2ptest.Connect(t, b.Host(), a.Host())
	syncPeers(t, a, b.Host())

	key, _ := recordtest.NewKey(t)
	var forged [][]byte
	v := record.Validator{Network: "development"}
	for _, bad := range recordtest.Bad(t, key, time.Now()) {
		if _, err := v.Open(bad.Data); err != nil { // not those bad only under another key
			forged = append(forged, bad.Data)
		}
	}
	evil := p2ptest.NewHost(t)
	fake := &fakeReplica{forged: forged}
	lim := registry.NewLimiter(1000, registry.PullBudget)
	evil.SetStreamHandler(registry.SyncProtocol("development"), registry.NewSyncHandler(fake, lim, lim, nil).HandleStream)
	p2ptest.Connect(t, evil, a.Host())
	syncPeers(t, a, b.Host(), evil)

	// Forwarded: refused one by one, at once.
	cl := registry.NewSyncClient(evil, "development")
	t.Cleanup(cl.Close)
	refused, err := cl.Forward(ctx, a.Host().ID(), forged)
	if err != nil || refused != len(forged) {
		t.Fatalf("A refused %d of %d forged records forwarded (%v), want all", refused, len(forged), err)
	}
	// Pulled: A reconciles with the attacker at once (a new sync peer) and
	// refuses what it serves.
	eventually(t, "A pulled from the attacker", func() bool { return fake.pulls.Load() > 0 })
	eventually(t, "A counted the pulled forgeries as refused", func() bool {
		return a.SyncStatus().Refused >= uint64(2*len(forged))
	})
	// An honest record pushed after them reaches B: whatever A had taken
	// would have been forwarded before it.
	prov := newProvider(t, a)
	seq := prov.push(t, ctx, a, "DatabaseService", false)
	// B counts what a forward brought once the whole batch is stored, so
	// wait for the count too, not only the record.
	eventually(t, "B holds the honest record and counted it", func() bool {
		return holds(b, serviceCID(t, "DatabaseService"), prov.h.ID(), seq, false) && b.SyncStatus().Received > 0
	})
	if a.StoredRecords() != 1 || b.StoredRecords() != 1 {
		t.Fatalf("A holds %d records and B %d, want 1 each (the honest one)", a.StoredRecords(), b.StoredRecords())
	}
	if st := b.SyncStatus(); st.Received != 1 || st.Refused != 0 {
		t.Fatalf("B received %d and refused %d forwarded records, want 1 and 0: a forgery spread", st.Received, st.Refused)
	}
	if got := a.Rejections()[record.ErrBadSignature]; got < 2 {
		t.Fatalf("A counted %d bad signatures, want at least 2 (forwarded and pulled)", got)
	}
}
