package netget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
)

// nextEvent returns ch's next event, failing if none comes in time.
func nextEvent(t *testing.T, ch <-chan netget.Event) (netget.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event within 30s")
	}
	return netget.Event{}, false
}

// TestWatchThroughNode: Node.Watch reports a provider's service (upsert)
// and its withdrawal when the provider closes (remove, withdrawn); the
// channel closes when the watching node does, and a closed node refuses.
func TestWatchThroughNode(t *testing.T) {
	reg := registry(t)
	svc := start(t, netget.Service(), reg)
	cli := start(t, netget.Client(), reg)
	ch, err := cli.Watch(context.Background(), "CacheService")
	if err != nil {
		t.Fatal(err)
	}
	provide(t, svc, "CacheService", map[string]string{"engine": "redis"})
	ev, _ := nextEvent(t, ch)
	if ev.Kind != netget.EventUpsert || ev.Peer != svc.ID() || ev.Result.Record.Meta["engine"] != "redis" || ev.Result.Source != dht.SourceWatch {
		t.Fatalf("first event %+v, want the upsert of %s", ev, svc.ID())
	}
	svc.Close() // withdraws
	if ev, _ = nextEvent(t, ch); ev.Kind != netget.EventRemove || ev.Peer != svc.ID() || ev.Reason != dht.ReasonWithdrawn {
		t.Fatalf("after the provider closed: %+v, want its remove, withdrawn", ev)
	}
	cli.Close()
	if ev, open := nextEvent(t, ch); open {
		t.Fatalf("after Close: event %+v, want the channel closed", ev)
	}
	if _, err := cli.Watch(context.Background(), "CacheService"); !errors.Is(err, netget.ErrClosed) {
		t.Fatalf("watch after close: %v, want ErrClosed", err)
	}
}
