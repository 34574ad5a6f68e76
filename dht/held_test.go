package dht_test

import (
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

// TestFindAnswersFromHandFirst: a node that holds a live record of the
// service itself streams it first, as local, with no round trip: its
// registry holds every list until the finder has that first result. A find
// whose Limit the held record fills asks the registry nothing at all; one
// without a limit still gets, from the registry once it answers, the
// provider the finder did not hold.
func TestFindAnswersFromHandFirst(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 1})
	reg, other := net.Registries[0], net.Nodes[0]
	// Installed before any stream opens: registry streams are reused.
	var lists atomic.Int32
	release := make(chan struct{})
	dht.HoldLists(reg, func(cid.Cid) {
		lists.Add(1)
		<-release
	})
	released := false
	releaseOnce := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(releaseOnce) // before the network closes
	// A client holds only its own record (no DHT server gives it others');
	// a long hedge keeps the DHT path behind the registry's answer, so the
	// second provider can only come from the registry.
	finder := dhttest.NewNode(t, "development", dht.ModeClient, func(c *dht.Config) { c.WalkHedge = dht.DefaultConfig("").FindTimeout })
	p2ptest.Connect(t, finder.Host(), reg.Host())
	finder.AddRegistry(reg.Host().ID())
	for _, n := range []*dht.Node{other, finder} {
		if _, err := n.Publish(ctx, dht.Spec{Name: "CacheService"}); err != nil {
			t.Fatal(err)
		}
		settle(t, n)
	}

	t.Run("limit filled by what is held", func(t *testing.T) {
		r := firstResult(t, finder, "CacheService", dht.FindOptions{})
		if r.Source != dht.SourceLocal || r.Record.Peer != finder.Host().ID() {
			t.Fatalf("first result: %s by %q, want %s by %q", r.Record.Peer, r.Source, finder.Host().ID(), dht.SourceLocal)
		}
		if got := lists.Load(); got != 0 {
			t.Fatalf("the registry was sent %d list requests, want 0: the answer was in hand", got)
		}
	})

	t.Run("the rest from the registry", func(t *testing.T) {
		var got []dht.Result
		err := finder.Find(ctx, "CacheService", dht.FindOptions{}, func(r dht.Result) bool {
			got = append(got, r)
			releaseOnce() // the registry answers only after the first result
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d results, want 2 (the held record, then the registry's)", len(got))
		}
		want := []struct {
			peer peer.ID
			src  dht.Source
		}{{finder.Host().ID(), dht.SourceLocal}, {other.Host().ID(), dht.SourceRegistry}}
		for i, w := range want {
			if got[i].Record.Peer != w.peer || got[i].Source != w.src {
				t.Errorf("result %d: %s by %q, want %s by %q", i, got[i].Record.Peer, got[i].Source, w.peer, w.src)
			}
		}
		if lists.Load() == 0 {
			t.Error("the registry was never asked")
		}
	})
}
