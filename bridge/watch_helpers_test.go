package bridge_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/record"
)

// fakeWatcher is a fakeFinder that also watches, the way the root
// package's adapter of netget.Node.Watch does: it yields the providers
// the test gave a service (the snapshot), then each event the test pushes,
// until ctx ends or yield returns false. A service in flood yields upserts
// of one record without end (bounded by floodMax), as fast as yield takes
// them.
type fakeWatcher struct {
	*fakeFinder
	err      error // returned by every Watch when set
	floodMax int   // upserts a flood yields at most

	mu       sync.Mutex
	subs     map[string][]chan bridge.WatchEvent // by lowercase service
	flood    map[string]*record.Service
	started  chan string // each Watch's service
	stopped  chan string // each Watch's service, once it returned
	floodOut chan int    // how many upserts a flood got yield to take before false
}

func newFakeWatcher(tb testing.TB) *fakeWatcher {
	return &fakeWatcher{fakeFinder: newFakeFinder(tb), subs: map[string][]chan bridge.WatchEvent{},
		flood: map[string]*record.Service{}, floodMax: 1 << 20,
		started: make(chan string, 64), stopped: make(chan string, 64), floodOut: make(chan int, 8)}
}

func (w *fakeWatcher) Watch(ctx context.Context, service string, yield func(bridge.WatchEvent) bool) error {
	if w.err != nil {
		return w.err
	}
	key := strings.ToLower(service)
	defer note(w.stopped, service)
	w.mu.Lock()
	flood := w.flood[key]
	ch := make(chan bridge.WatchEvent, 16)
	w.subs[key] = append(w.subs[key], ch)
	w.mu.Unlock()
	defer w.unsubscribe(key, ch)
	note(w.started, service)
	if flood != nil {
		for i := range w.floodMax {
			if !yield(bridge.WatchEvent{Kind: bridge.EventUpsert, Record: flood, Source: "registry"}) {
				w.floodOut <- i
				return nil
			}
		}
		w.floodOut <- w.floodMax
		return nil
	}
	for _, r := range w.records[key] {
		if !yield(bridge.WatchEvent{Kind: bridge.EventUpsert, Record: r, Source: "registry"}) {
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return nil // the node stopped watching
			}
			if !yield(ev) {
				return nil
			}
		}
	}
}

func (w *fakeWatcher) unsubscribe(key string, ch chan bridge.WatchEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	subs := w.subs[key]
	for i, c := range subs {
		if c == ch {
			w.subs[key] = append(subs[:i:i], subs[i+1:]...)
			return
		}
	}
}

// push sends ev to every watch of service.
func (w *fakeWatcher) push(t testing.TB, service string, ev bridge.WatchEvent) {
	t.Helper()
	w.mu.Lock()
	subs := append([]chan bridge.WatchEvent(nil), w.subs[strings.ToLower(service)]...)
	w.mu.Unlock()
	if len(subs) == 0 {
		t.Fatalf("push to %s: nobody watches it", service)
	}
	for _, ch := range subs {
		ch <- ev
	}
}

// end closes every watch of service, as a closing node does.
func (w *fakeWatcher) end(service string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := strings.ToLower(service)
	for _, ch := range w.subs[key] {
		close(ch)
	}
	w.subs[key] = nil
}

// waitStarted waits for a Watch of service to start.
func (w *fakeWatcher) waitStarted(t testing.TB, service string) {
	t.Helper()
	waitOn(t, w.started, service, "a watch of "+service+" starts")
}

// waitStopped waits for a Watch of service to return.
func (w *fakeWatcher) waitStopped(t testing.TB, service string) {
	t.Helper()
	waitOn(t, w.stopped, service, "the watch of "+service+" stops")
}

func waitOn(t testing.TB, ch chan string, want, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func upsert(r *record.Service) bridge.WatchEvent {
	return bridge.WatchEvent{Kind: bridge.EventUpsert, Record: r, Source: "registry"}
}

func remove(r *record.Service, reason string) bridge.WatchEvent {
	return bridge.WatchEvent{Kind: bridge.EventRemove, Peer: r.Peer.String(), Reason: reason}
}

// expectResult reads a result frame of id and returns its record's peer.
func (c *client) expectResult(id string) string {
	c.t.Helper()
	f := c.next()
	r, ok := f.(*bridge.ResultFrame)
	if !ok || r.ID != id {
		c.t.Fatalf("got %#v, want a result of %q", f, id)
	}
	return r.Record.Peer
}

// expectRemoved reads a removed frame of id and checks peer and reason.
func (c *client) expectRemoved(id, peer, reason string) {
	c.t.Helper()
	f := c.next()
	r, ok := f.(*bridge.RemovedFrame)
	if !ok || r.ID != id || r.Peer != peer || r.Reason != reason {
		c.t.Fatalf("got %#v, want removed %s of %q for %s", f, peer, id, reason)
	}
}

// expectDone reads a done frame of id and checks its count and cancelled.
func (c *client) expectDone(id string, count int, cancelled bool) {
	c.t.Helper()
	f := c.next()
	d, ok := f.(*bridge.DoneFrame)
	if !ok || d.ID != id || d.Count != count || d.Cancelled != cancelled {
		c.t.Fatalf("got %#v, want done %q count %d cancelled %v", f, id, count, cancelled)
	}
}

// note sends service on ch unless its buffer is full: a test waits on a
// handful, a benchmark runs a thousand watches and reads none.
func note(ch chan string, service string) {
	select {
	case ch <- service:
	default:
	}
}
