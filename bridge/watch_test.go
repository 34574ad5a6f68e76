package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
)

// TestWatch: a watch gets the providers there are, then a result for
// each new or republished one and a removed for each that goes (none for a
// peer it never showed), until cancel, which ends it with done; the id is
// free again after.
func TestWatch(t *testing.T) {
	w := newFakeWatcher(t)
	recs := w.add(t, "DatabaseService", 2)
	s := startServer(t, w, testConfig())
	c := dial(t, s, dialOpts{})
	welcome := c.hello("")
	if !slices.Equal(welcome.Features, []string{"find", "watch"}) || welcome.Limits.Watches != bridge.DefaultMaxSessionWatches {
		t.Fatalf("welcome features %q, watches %d; want [find watch], %d", welcome.Features, welcome.Limits.Watches,
			bridge.DefaultMaxSessionWatches)
	}
	c.send(&bridge.WatchFrame{ID: "w1", Service: "DatabaseService"})
	got := []string{c.expectResult("w1"), c.expectResult("w1")}
	if !slices.Equal(got, []string{recs[0].Peer.String(), recs[1].Peer.String()}) {
		t.Fatalf("snapshot %v, want the two providers", got)
	}
	third := newRecord(t, "DatabaseService", map[string]string{"replica": "2"})
	w.push(t, "DatabaseService", upsert(third))
	if p := c.expectResult("w1"); p != third.Peer.String() {
		t.Fatalf("new provider: result for %s, want %s", p, third.Peer)
	}
	w.push(t, "DatabaseService", remove(recs[0], bridge.RemovedWithdrawn))
	c.expectRemoved("w1", recs[0].Peer.String(), bridge.RemovedWithdrawn)
	// A remove of a peer the watch never showed, or showed and removed
	// already, sends nothing: the next frame is the following event's.
	stranger := newRecord(t, "DatabaseService", nil)
	w.push(t, "DatabaseService", remove(stranger, bridge.RemovedExpired))
	w.push(t, "DatabaseService", remove(recs[0], bridge.RemovedDeregistered))
	w.push(t, "DatabaseService", remove(recs[1], bridge.RemovedUnhealthy))
	c.expectRemoved("w1", recs[1].Peer.String(), bridge.RemovedUnhealthy)
	// A provider that comes back is shown again.
	w.push(t, "DatabaseService", upsert(recs[0]))
	if p := c.expectResult("w1"); p != recs[0].Peer.String() {
		t.Fatalf("returning provider: result for %s", p)
	}
	c.send(&bridge.CancelFrame{ID: "w1"})
	c.expectDone("w1", 4, true)
	w.waitStopped(t, "DatabaseService")
	if st := s.Stats(); st.WatchesRunning != 0 || st.Watches != 1 || st.Removed != 2 || st.Results != 4 {
		t.Fatalf("stats %+v; want 0 running, 1 watch, 2 removed, 4 results", st)
	}
	// The id is free again, for a watch or a find.
	c.send(&bridge.FindFrame{ID: "w1", Service: "DatabaseService"})
	if results, end := c.collect("w1"); len(results) != 2 {
		t.Fatalf("find after the watch: %d results, end %#v", len(results), end)
	}
}

// TestWatchWhere: a watch with where shows only providers whose metadata
// match, and removes one whose new record stops matching (unmatched).
func TestWatchWhere(t *testing.T) {
	w := newFakeWatcher(t)
	eu := newRecord(t, "CacheService", map[string]string{"region": "eu", "engine": "redis"})
	us := newRecord(t, "CacheService", map[string]string{"region": "us", "engine": "redis"})
	w.records["cacheservice"] = append(w.records["cacheservice"], us, eu)
	s := startServer(t, w, testConfig())
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.send(&bridge.WatchFrame{ID: "w", Service: "CacheService", Where: map[string]string{"region": "eu"}})
	if p := c.expectResult("w"); p != eu.Peer.String() {
		t.Fatalf("snapshot: result for %s, want only the eu provider %s", p, eu.Peer)
	}
	moved := *eu
	moved.Seq, moved.Meta = 2, map[string]string{"region": "us", "engine": "redis"}
	w.push(t, "CacheService", upsert(us)) // still not matching: nothing
	w.push(t, "CacheService", upsert(&moved))
	c.expectRemoved("w", eu.Peer.String(), bridge.RemovedUnmatched)
	back := moved
	back.Seq, back.Meta = 3, map[string]string{"region": "eu"}
	w.push(t, "CacheService", upsert(&back))
	if p := c.expectResult("w"); p != eu.Peer.String() {
		t.Fatalf("matching again: result for %s", p)
	}
}

// TestWatchLimits: each limit a watch counts against refuses with its
// code and reason, and the refused watch never reaches the Watcher.
func TestWatchLimits(t *testing.T) {
	w := newFakeWatcher(t)
	w.add(t, "A", 3)
	cfg := testConfig()
	cfg.MaxSessionWatches, cfg.MaxWatches, cfg.MaxResults = 2, 3, 2
	cfg.Services = []string{"A", "B", "C"}
	cfg.Filters = []bridge.Filter{bridge.FilterFunc(func(_ context.Context, r *bridge.Request) error {
		if r.Stage == bridge.StageWatch && r.Where["secret"] != "" {
			return &bridge.Error{Code: bridge.CodeForbidden, Message: "no secrets"}
		}
		return nil
	})}
	s := startServer(t, w, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	// limit: a watch shows at most MaxResults providers at once.
	c.send(&bridge.WatchFrame{ID: "a", Service: "A", Limit: 5})
	c.expectResult("a")
	c.expectResult("a")
	w.waitStarted(t, "A")
	c.send(&bridge.WatchFrame{ID: "b", Service: "B"})
	w.waitStarted(t, "B")
	tests := []struct {
		name   string
		frame  *bridge.WatchFrame
		code   bridge.Code
		reason bridge.Reason
	}{
		{"duplicate id", &bridge.WatchFrame{ID: "a", Service: "C"}, bridge.CodeBadRequest, bridge.ReasonBadFrame},
		{"per session", &bridge.WatchFrame{ID: "c", Service: "C"}, bridge.CodeRateLimited, bridge.ReasonSessionWatches},
		{"allowlist", &bridge.WatchFrame{ID: "d", Service: "D"}, bridge.CodeForbidden, bridge.ReasonService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().Refusals[tt.reason]
			c.send(tt.frame)
			c.expectError(tt.frame.ID, tt.code)
			if got := s.Stats().Refusals[tt.reason]; got != before+1 {
				t.Fatalf("refusals[%s] = %d, want %d", tt.reason, got, before+1)
			}
		})
	}
	// A find may not take a watch's id either.
	c.send(&bridge.FindFrame{ID: "b", Service: "A"})
	c.expectError("b", bridge.CodeBadRequest)
	// Bridge-wide: a second session gets one watch, then busy.
	c2 := dial(t, s, dialOpts{})
	c2.hello("")
	c2.send(&bridge.WatchFrame{ID: "x", Service: "C", Where: map[string]string{"secret": "1"}})
	c2.expectError("x", bridge.CodeForbidden)
	c2.send(&bridge.WatchFrame{ID: "x", Service: "C"})
	w.waitStarted(t, "C")
	c2.send(&bridge.WatchFrame{ID: "y", Service: "C"})
	c2.expectError("y", bridge.CodeBusy)
	st := s.Stats()
	if st.WatchesRunning != 3 || st.Refusals[bridge.ReasonWatches] != 1 || st.Refusals[bridge.ReasonFilter] != 1 ||
		st.WatchOverLimit != 1 {
		t.Fatalf("stats %+v; want 3 running, 1 busy, 1 filtered, 1 over the limit", st)
	}
	// Closing a session ends its watches and frees their slots.
	c.conn.Close(websocket.StatusNormalClosure, "")
	w.waitStopped(t, "B")
	eventually(t, "the closed session's watches end", func() bool { return s.Stats().WatchesRunning == 1 })
	c2.send(&bridge.WatchFrame{ID: "y", Service: "C"})
	w.waitStarted(t, "C")
}

// TestWatchEnds: a watch that the node ends by itself gets done, one the
// node fails gets internal (its cause only in the log), and a bridge
// whose Finder cannot watch says so in the welcome and per frame.
func TestWatchEnds(t *testing.T) {
	t.Run("node stops watching", func(t *testing.T) {
		w := newFakeWatcher(t)
		w.add(t, "A", 1)
		s := startServer(t, w, testConfig())
		c := dial(t, s, dialOpts{})
		c.hello("")
		c.send(&bridge.WatchFrame{ID: "w", Service: "A"})
		c.expectResult("w")
		w.waitStarted(t, "A")
		w.end("A")
		c.expectDone("w", 1, false)
	})
	t.Run("node fails", func(t *testing.T) {
		w := newFakeWatcher(t)
		w.err = errors.New("registry stream broke: secret detail")
		s := startServer(t, w, testConfig())
		c := dial(t, s, dialOpts{})
		c.hello("")
		c.send(&bridge.WatchFrame{ID: "w", Service: "A"})
		if e := c.expectError("w", bridge.CodeInternal); strings.Contains(e.Message, "secret") {
			t.Fatalf("error %q leaks the internal cause", e.Message)
		}
	})
	t.Run("finder only", func(t *testing.T) {
		s := startServer(t, newFakeFinder(t), testConfig())
		c := dial(t, s, dialOpts{})
		if w := c.hello(""); !slices.Equal(w.Features, []string{"find"}) || w.Limits.Watches != 0 {
			t.Fatalf("welcome features %q, watches %d; want [find], 0", w.Features, w.Limits.Watches)
		}
		c.send(&bridge.WatchFrame{ID: "w", Service: "A"})
		c.expectError("w", bridge.CodeUnknownType)
	})
}

// TestWatchKeepsSessionAlive: a session with a watch open is not idle; a
// session beside it without one is closed for idleness.
func TestWatchKeepsSessionAlive(t *testing.T) {
	w := newFakeWatcher(t)
	cfg := testConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	s := startServer(t, w, cfg)
	watching, idle := dial(t, s, dialOpts{}), dial(t, s, dialOpts{})
	watching.hello("")
	idle.hello("")
	watching.send(&bridge.WatchFrame{ID: "w", Service: "A"})
	w.waitStarted(t, "A")
	idle.expectError("", bridge.CodeIdle)
	idle.expectClosed(websocket.StatusNormalClosure)
	r := newRecord(t, "A", nil)
	w.push(t, "A", upsert(r))
	if p := watching.expectResult("w"); p != r.Peer.String() {
		t.Fatalf("result for %s after the other session idled out", p)
	}
}

// TestWatchSlowClient: a page that stops reading while its watch streams
// is dropped once a frame waits WriteTimeout: the Watcher's yield blocks
// meanwhile (nothing queues in the bridge) and then returns false, the
// session ends and its slots are free again.
func TestWatchSlowClient(t *testing.T) {
	w := newFakeWatcher(t)
	big := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d"} {
		big[k] = strings.Repeat(k, 500)
	}
	w.flood["flood"] = newRecord(t, "Flood", big)
	cfg := testConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	s := startServer(t, w, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.send(&bridge.WatchFrame{ID: "w", Service: "Flood"})
	// The client reads nothing more: the socket's buffers fill, a write
	// waits WriteTimeout, and the bridge gives up on the session.
	var taken int
	select {
	case taken = <-w.floodOut:
	case <-time.After(wait):
		t.Fatal("the bridge never stopped taking events from a client that does not read")
	}
	if taken == w.floodMax {
		t.Fatalf("the bridge took all %d events from a client that does not read", taken)
	}
	eventually(t, "the slow session ends", func() bool {
		st := s.Stats()
		return st.Sessions == 0 && st.WatchesRunning == 0
	})
	if got := s.Stats().Refusals[bridge.ReasonSlow]; got != 1 {
		t.Fatalf("refusals[slow] = %d, want 1", got)
	}
	t.Logf("the bridge sent %d frames of ~2.2 KB before the socket buffers filled and it dropped the page", taken)
}

// TestWatchFlood: a client that sends a thousand watch frames gets its
// MaxSessionWatches and a rate_limited error for every other one; the
// bridge never runs more, and nothing is left running once it leaves.
func TestWatchFlood(t *testing.T) {
	w := newFakeWatcher(t)
	cfg := testConfig()
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6
	s := startServer(t, w, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	const n = 1000
	for i := range n {
		c.send(&bridge.WatchFrame{ID: fmt.Sprint("w", i), Service: "A", Where: map[string]string{"i": fmt.Sprint(i)}})
	}
	refused := 0
	for refused < n-cfg.MaxSessionWatches {
		c.expectError(fmt.Sprint("w", cfg.MaxSessionWatches+refused), bridge.CodeRateLimited)
		refused++
	}
	st := s.Stats()
	if st.WatchesRunning != cfg.MaxSessionWatches || st.Refusals[bridge.ReasonSessionWatches] != n-uint64(cfg.MaxSessionWatches) {
		t.Fatalf("stats %+v; want %d running, %d refused", st, cfg.MaxSessionWatches, n-cfg.MaxSessionWatches)
	}
	c.conn.Close(websocket.StatusNormalClosure, "")
	eventually(t, "every watch ends with the session", func() bool { return s.Stats().WatchesRunning == 0 })
}
