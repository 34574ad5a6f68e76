package bridge_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/netget/netget-peer/bridge"
)

// TestFindHandover: a find runs on the read loop's goroutine; one that
// does not end hands reading to a new goroutine, so the session still
// answers its other frames. Three held finds move the loop three times;
// quick finds and pings are answered meanwhile; cancels end the held ones;
// when the client leaves, every goroutine of the session ends.
func TestFindHandover(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "SlowService", 1)
	f.hold["slowservice"] = true
	f.add(t, "QuickService", 2)
	cfg := testConfig()
	cfg.MaxInFlight = 4
	s := startServer(t, f, cfg)
	base := runtime.NumGoroutine()
	c := dial(t, s, dialOpts{})
	c.hello("")

	for i := range 3 {
		id := fmt.Sprint("slow", i)
		c.send(&bridge.FindFrame{ID: id, Service: "SlowService"})
		if r, ok := c.next().(*bridge.ResultFrame); !ok || r.ID != id {
			t.Fatalf("got %#v, want a result for %s", r, id)
		}
	}
	for i := range 20 {
		id := fmt.Sprint("quick", i)
		c.send(&bridge.FindFrame{ID: id, Service: "QuickService"})
		if results, end := c.collect(id); len(results) != 2 || end.(*bridge.DoneFrame).Count != 2 {
			t.Fatalf("%s: %d results, end %#v; want 2 and done", id, len(results), end)
		}
	}
	c.send(&bridge.PingFrame{ID: "p"})
	if p, ok := c.next().(*bridge.PongFrame); !ok || p.ID != "p" {
		t.Fatalf("got %#v, want pong p", p)
	}
	if st := s.Stats(); st.FindsRunning != 3 || st.FindsMoved < 3 {
		t.Fatalf("finds running %d, moved %d; want the 3 held, each moved", st.FindsRunning, st.FindsMoved)
	}
	for i := range 3 {
		id := fmt.Sprint("slow", i)
		c.send(&bridge.CancelFrame{ID: id})
		if d, ok := c.next().(*bridge.DoneFrame); !ok || d.ID != id || !d.Cancelled || d.Count != 1 {
			t.Fatalf("after cancel: got %#v, want done %s cancelled count 1", d, id)
		}
	}
	c.conn.CloseNow()
	eventually(t, "the session to end", func() bool { return s.Stats().Sessions == 0 })
	eventually(t, fmt.Sprintf("goroutines back to %d", base), func() bool { return runtime.NumGoroutine() <= base })
}

// TestHeldFindEndsWithSession: a find that never ends by itself, running
// on the goroutine that read it, ends when the client leaves, and
// Shutdown does not wait for its timeout.
func TestHeldFindEndsWithSession(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "SlowService", 1)
	f.hold["slowservice"] = true
	s := startServer(t, f, testConfig())
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.send(&bridge.FindFrame{ID: "slow", Service: "SlowService", TimeoutMS: 60_000})
	if r, ok := c.next().(*bridge.ResultFrame); !ok || r.ID != "slow" {
		t.Fatalf("got %#v, want a result for slow", r)
	}
	c.conn.CloseNow()
	eventually(t, "the held find to end", func() bool { return len(f.endedErrs()) == 1 })
	eventually(t, "the session to end", func() bool { return s.Stats().Sessions == 0 && s.Stats().FindsRunning == 0 })
}
