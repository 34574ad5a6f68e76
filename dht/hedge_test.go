package dht_test

import (
	"sync/atomic"
	"testing"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
)

// TestHedgeLearnsOnlyFromRegistries: the hedge's round-trip estimate takes
// the answers of the node's registries and never those of DHT peers, which
// any peer can slow on purpose: a find on the DHT path alone, whose lists
// to the nearest peers and the walk's were answered, leaves it empty; a
// find that asks the registries fills it.
func TestHedgeLearnsOnlyFromRegistries(t *testing.T) {
	ctx := testCtx(t)
	var dhtLists atomic.Int32
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 6})
	prov, finder := net.Nodes[0], net.Nodes[5]
	dht.ObserveAsks(finder, func(src dht.Source) {
		if src == dht.SourceNear || src == dht.SourceWalk || src == dht.SourceProvider {
			dhtLists.Add(1)
		}
	})
	if _, err := prov.Publish(ctx, dht.Spec{Name: "LedgerService"}); err != nil {
		t.Fatal(err)
	}
	settle(t, prov)

	got, err := finder.FindAll(ctx, "LedgerService", dht.FindOptions{DHTOnly: true})
	if err != nil || len(got) != 1 {
		t.Fatalf("DHT-path find: %d results, err %v; want 1", len(got), err)
	}
	if dhtLists.Load() == 0 {
		t.Fatal("the DHT-path find asked no DHT peer: nothing was tested")
	}
	if rtt := finder.SmoothedRTT(); rtt != 0 {
		t.Fatalf("after a find that asked only DHT peers, the smoothed RTT is %v, want 0 (none taken)", rtt)
	}
	if _, err := finder.FindAll(ctx, "LedgerService", dht.FindOptions{}); err != nil {
		t.Fatal(err)
	}
	if rtt := finder.SmoothedRTT(); rtt <= 0 {
		t.Fatalf("after a find that asked the registry, the smoothed RTT is %v, want it measured", rtt)
	}
}
