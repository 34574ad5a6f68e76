package dht_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
)

// watchTimeout bounds waiting for one watch event.
const watchTimeout = 15 * time.Second

// nextEvent returns the watch's next event, failing the test if none comes
// within watchTimeout or the channel closes.
func nextEvent(t *testing.T, ch <-chan dht.Event, what string) dht.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("waiting for %s: watch channel closed", what)
		}
		return ev
	case <-time.After(watchTimeout):
		t.Fatalf("waiting for %s: no event within %s", what, watchTimeout)
	}
	return dht.Event{}
}

// wantEvent waits for the next event and checks its kind, peer and reason.
func wantEvent(t *testing.T, ch <-chan dht.Event, kind dht.EventKind, p peer.ID, reason string) dht.Event {
	t.Helper()
	ev := nextEvent(t, ch, string(kind)+" "+p.ShortString())
	if ev.Kind != kind || ev.Peer != p || ev.Reason != reason {
		t.Fatalf("got event %s %s %q, want %s %s %q", ev.Kind, ev.Peer.ShortString(), ev.Reason, kind, p.ShortString(), reason)
	}
	if kind == dht.EventUpsert && (ev.Result.Record == nil || ev.Result.Record.Peer != p || ev.Result.Source != dht.SourceWatch) {
		t.Fatalf("upsert of %s carries %+v", p.ShortString(), ev.Result)
	}
	return ev
}

// noEvent checks that no event is waiting: what came before was all.
// It is called after an event that was sent after any duplicate would
// have been, so it does not wait.
func noEvent(t *testing.T, ch <-chan dht.Event) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %s %s %q", ev.Kind, ev.Peer.ShortString(), ev.Reason)
	default:
	}
}

func watch(t *testing.T, n *dht.Node, name string) <-chan dht.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := n.Watch(ctx, name)
	if err != nil {
		t.Fatalf("watch %s: %v", name, err)
	}
	return ch
}

// TestWatch: against one registry, a watcher gets the snapshot (a provider
// there before), a new provider (upsert) and a withdrawal (remove,
// withdrawn) pushed by the registry, with no polling; a Find on the
// watching node answers from the watched set first.
func TestWatch(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 3})
	p1, p2, watcher := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	if _, err := p1.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ch := watch(t, watcher, "DatabaseService")
	wantEvent(t, ch, dht.EventUpsert, p1.Host().ID(), "")

	if _, err := p2.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p2.Host().ID(), "")

	rs, err := watcher.FindAll(ctx, "DatabaseService", dht.FindOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Source != dht.SourceWatch || rs[1].Source != dht.SourceWatch {
		t.Fatalf("find on the watching node: %d results %v, want 2 from the watched set", len(rs), sources(rs))
	}

	if _, err := p1.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventRemove, p1.Host().ID(), dht.ReasonWithdrawn)
	noEvent(t, ch)
}

func sources(rs []dht.Result) []dht.Source {
	out := make([]dht.Source, len(rs))
	for i, r := range rs {
		out[i] = r.Source
	}
	return out
}
