package dht_test

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
)

// TestFindSlowConsumerDelaysNoOtherFind: a find whose consumer takes one
// result and then stops reading (a bridge client stuck on a slow socket)
// does not hold up another find on the same node: the other gets every
// provider and ends on its own, three times over. The stalled find has
// lost nothing: once its consumer reads again, the rest of its results
// arrive.
func TestFindSlowConsumerDelaysNoOtherFind(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 2, Nodes: 4})
	want := map[peer.ID]bool{}
	for _, n := range net.Nodes[:3] {
		if _, err := n.Publish(ctx, dht.Spec{Name: "WebApp"}); err != nil {
			t.Fatal(err)
		}
		want[n.Host().ID()] = true
	}
	finder := net.Nodes[3]

	gotFirst, resume, stalledDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	seen := map[peer.ID]bool{}
	go func() {
		stalledDone <- finder.Find(ctx, "WebApp", dht.FindOptions{}, func(r dht.Result) bool {
			seen[r.Record.Peer] = true
			if len(seen) == 1 {
				close(gotFirst)
				<-resume // the consumer stops reading
			}
			return true
		})
	}()
	select {
	case <-gotFirst:
	case err := <-stalledDone:
		t.Fatalf("the stalled find ended before its first result: %v", err)
	}
	for round := range 3 {
		got, err := finder.FindAll(ctx, "WebApp", dht.FindOptions{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: the other find got %d providers, want %d", round, len(got), len(want))
		}
		if ctx.Err() != nil {
			t.Fatalf("round %d: the other find ended by the test's deadline, not on its own", round)
		}
	}
	close(resume)
	if err := <-stalledDone; err != nil {
		t.Fatalf("the stalled find, read again: %v", err)
	}
	if len(seen) != len(want) {
		t.Fatalf("the stalled find, read again, got %d providers in all, want %d", len(seen), len(want))
	}
}
