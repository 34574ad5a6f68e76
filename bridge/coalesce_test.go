package bridge_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/netget/netget-peer/bridge"
)

// TestFindLastResultOneWrite: a find whose limit its results reach gets
// its last result and its done frame in one write (the bridge knows the
// find is over without waiting for the Finder), the frames exactly as
// before; a find below its limit still gets two writes, the result never
// held for the done. The server's writes are counted from /proc/self/io
// (the test's client makes one write a find); what else the process
// writes meanwhile (an earlier test's sessions closing) can only add, so
// the bounds leave room above: one write a find is told from two by
// staying under 1.5.
func TestFindLastResultOneWrite(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "One", 1)
	f.add(t, "Two", 2)
	cfg := testConfig()
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6
	s := startServer(t, f, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	const finds = 200
	cases := []struct {
		name        string
		service     string
		limit       int
		results     int
		serverMost  float64 // server writes a find, at most
		serverLeast float64
	}{
		{"limit reached by its only result", "One", 1, 1, 1.5, 0.9},
		{"limit reached by the second", "Two", 2, 2, 2.5, 1.9},
		{"limit not reached", "One", 5, 1, 99, 1.9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w0 := writeCalls(t)
			for i := range finds {
				id := fmt.Sprint(tc.name[:5], i)
				c.send(&bridge.FindFrame{ID: id, Service: tc.service, Limit: tc.limit})
				for range tc.results {
					if r, ok := c.next().(*bridge.ResultFrame); !ok || r.ID != id {
						t.Fatalf("find %s: got %+v, want its result", id, r)
					}
				}
				if d, ok := c.next().(*bridge.DoneFrame); !ok || d.ID != id || d.Count != tc.results || d.Cancelled {
					t.Fatalf("find %s: got %+v, want done with count %d", id, d, tc.results)
				}
			}
			server := float64(writeCalls(t)-w0)/finds - 1 // the client's one write a find
			if server > tc.serverMost || server < tc.serverLeast {
				t.Fatalf("%.2f server writes a find, want %.1f to %.1f", server, tc.serverLeast, tc.serverMost)
			}
		})
	}
	if st := s.Stats(); st.FindsRunning != 0 || st.Results != finds*4 {
		t.Fatalf("stats %+v: want no find running, %d results", st, finds*4)
	}
}

// writeCalls is this process's write system calls so far.
func writeCalls(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("write calls: %v (needs Linux's /proc/self/io)", err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("syscw %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}
