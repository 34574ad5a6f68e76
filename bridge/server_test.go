package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
)

// TestProtocol walks a whole session: hello → welcome, find → result… →
// done, ping → pong, and the records as a browser sees them.
func TestProtocol(t *testing.T) {
	f := newFakeFinder(t)
	recs := f.add(t, "DatabaseService", 3)
	s := startServer(t, f, testConfig())
	c := dial(t, s, dialOpts{})

	w := c.hello("")
	if w.Peer != "12D3KooWTestBridgePeer" || w.Network != "development" || w.Version != bridge.Version {
		t.Fatalf("welcome: got %+v", w)
	}
	want := bridge.Limits{FrameBytes: bridge.DefaultMaxFrameSize, InFlight: bridge.DefaultMaxInFlight,
		MaxResults: bridge.DefaultMaxResults, FramesPerSecond: bridge.DefaultFramesPerSecond,
		FindTimeoutMS: bridge.DefaultFindTimeout.Milliseconds(), MaxFindTimeoutMS: bridge.DefaultMaxFindTimeout.Milliseconds()}
	if w.Limits != want {
		t.Fatalf("welcome limits: got %+v, want %+v", w.Limits, want)
	}

	c.send(&bridge.FindFrame{ID: "q1", Service: "databaseservice"})
	results, end := c.collect("q1")
	if d, ok := end.(*bridge.DoneFrame); !ok || d.Count != 3 || d.Cancelled {
		t.Fatalf("find end: got %#v, want done count 3", end)
	}
	for i, r := range results {
		got, want := r.Record, recs[i]
		if got.Peer != want.Peer.String() || got.Service != "DatabaseService" || got.Network != "development" ||
			!maps.Equal(got.Meta, want.Meta) || !slices.Equal(got.Addrs, want.Addrs) || got.Seq != 1 ||
			!got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(want.IssuedAt) || r.Source != "registry" {
			t.Errorf("result %d: got %+v, want %+v", i, got, want)
		}
	}

	c.send(&bridge.PingFrame{ID: "p1"})
	if p, ok := c.next().(*bridge.PongFrame); !ok || p.ID != "p1" {
		t.Fatalf("ping: got %#v, want pong p1", p)
	}
	st := s.Stats()
	if st.Sessions != 1 || st.SessionsTotal != 1 || st.Finds != 1 || st.Results != 3 || len(st.Refusals) != 0 {
		t.Fatalf("stats: got %+v", st)
	}
}

// TestFindOptions: limits and timeouts reach the finder after defaults
// and caps, and the limit bounds the results.
func TestFindOptions(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 5)
	cfg := testConfig()
	cfg.MaxResults = 4
	s := startServer(t, f, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	tests := []struct {
		name        string
		limit       int
		timeoutMS   int64
		wantLimit   int
		wantTimeout time.Duration
	}{
		{"defaults", 0, 0, 4, bridge.DefaultFindTimeout},
		{"given", 2, 1500, 2, 1500 * time.Millisecond},
		{"capped", 50, 3_600_000, 4, bridge.DefaultMaxFindTimeout},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint("o", i)
			c.send(&bridge.FindFrame{ID: id, Service: "DatabaseService", Limit: tt.limit, TimeoutMS: tt.timeoutMS})
			results, end := c.collect(id)
			if d, ok := end.(*bridge.DoneFrame); !ok || d.Count != tt.wantLimit || len(results) != tt.wantLimit {
				t.Fatalf("got %d results and %#v, want %d", len(results), end, tt.wantLimit)
			}
			f.mu.Lock()
			got := f.opts[len(f.opts)-1]
			f.mu.Unlock()
			if got.Limit != tt.wantLimit || got.Timeout != tt.wantTimeout {
				t.Fatalf("finder options: got %+v, want limit %d timeout %s", got, tt.wantLimit, tt.wantTimeout)
			}
		})
	}
}

// TestErrorCodes triggers every error code and checks the frame that
// carries it, and what is counted.
func TestErrorCodes(t *testing.T) {
	tests := errorCodeCases()
	covered := map[bridge.Code]bool{}
	for _, tt := range tests {
		covered[tt.wantCode] = true
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFinder(t)
			cfg := testConfig()
			if tt.configure != nil {
				tt.configure(&cfg, f)
			}
			s := startServer(t, f, cfg)
			c := dial(t, s, dialOpts{})
			c.hello("")
			if tt.wantReason == bridge.ReasonRate {
				c.send(&bridge.PingFrame{ID: "first"}) // spends the only token
				c.next()
			}
			for _, b := range tt.before {
				c.send(b)
			}
			if tt.send != nil {
				c.send(tt.send)
			}
			e := c.expectError(tt.wantID, tt.wantCode)
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMsg)
			}
			if strings.Contains(e.Message, "exploded") {
				t.Errorf("message %q leaks internal detail", e.Message)
			}
			switch {
			case tt.wantClose != 0:
				c.expectClosed(tt.wantClose)
			case tt.wantReason != bridge.ReasonRate: // the session survives
				c.send(&bridge.PingFrame{ID: "alive"})
				if p, ok := c.next().(*bridge.PongFrame); !ok || p.ID != "alive" {
					t.Fatalf("after the error: got %#v, want pong", p)
				}
			}
			if tt.wantReason != "" {
				if got := s.Stats().Refusals[tt.wantReason]; got != 1 {
					t.Errorf("refusals[%s] = %d, want 1 (all: %v)", tt.wantReason, got, s.Stats().Refusals)
				}
			}
		})
	}
	for _, code := range bridge.Codes() {
		if !covered[code] {
			t.Errorf("no test case for error code %s", code)
		}
	}
}

// TestConcurrentFinds runs many finds at once on one connection and
// checks that each gets exactly its own results and end.
func TestConcurrentFinds(t *testing.T) {
	const n = 60
	f := newFakeFinder(t)
	for i := range n {
		f.add(t, fmt.Sprintf("Service-%d", i), i%4) // 0 to 3 providers each
	}
	cfg := testConfig()
	cfg.MaxInFlight, cfg.FrameBurst = n, 2*n
	s := startServer(t, f, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	for i := range n {
		c.send(&bridge.FindFrame{ID: fmt.Sprint("c", i), Service: fmt.Sprintf("Service-%d", i)})
	}
	got := map[string]int{}
	ended := map[string]bridge.ServerFrame{}
	for len(ended) < n {
		switch fr := c.next().(type) {
		case *bridge.ResultFrame:
			if _, done := ended[fr.ID]; done {
				t.Fatalf("result for %s after its end", fr.ID)
			}
			want := fmt.Sprintf("Service-%s", strings.TrimPrefix(fr.ID, "c"))
			if fr.Record.Service != want {
				t.Fatalf("find %s got a record for %s", fr.ID, fr.Record.Service)
			}
			got[fr.ID]++
		case *bridge.DoneFrame:
			ended[fr.ID] = fr
			if fr.Count != got[fr.ID] {
				t.Fatalf("done %s count %d, but %d results", fr.ID, fr.Count, got[fr.ID])
			}
		case *bridge.ErrorFrame:
			ended[fr.ID] = fr
			if fr.Code != bridge.CodeNotFound || got[fr.ID] != 0 {
				t.Fatalf("find %s: %+v after %d results", fr.ID, fr, got[fr.ID])
			}
		default:
			t.Fatalf("unexpected %#v", fr)
		}
	}
	for i := range n {
		id := fmt.Sprint("c", i)
		if got[id] != i%4 {
			t.Errorf("find %s: %d results, want %d", id, got[id], i%4)
		}
	}
}

// TestInFlightAndCancel: the in-flight limit refuses a find beyond it, a
// cancel stops a find (its finder sees ctx end) and frees its slot.
func TestInFlightAndCancel(t *testing.T) {
	f := newFakeFinder(t)
	f.started = make(chan string, 4)
	f.add(t, "SlowService", 2)
	f.hold["slowservice"] = true
	cfg := testConfig()
	cfg.MaxInFlight = 1
	s := startServer(t, f, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")

	c.send(&bridge.FindFrame{ID: "slow", Service: "SlowService"})
	<-f.started
	for range 2 {
		if r, ok := c.next().(*bridge.ResultFrame); !ok || r.ID != "slow" {
			t.Fatalf("got %#v, want a result for slow", r)
		}
	}
	c.send(&bridge.FindFrame{ID: "slow", Service: "SlowService"})
	c.expectError("slow", bridge.CodeBadRequest) // duplicate id
	c.send(&bridge.FindFrame{ID: "second", Service: "SlowService"})
	e := c.expectError("second", bridge.CodeRateLimited)
	if !strings.Contains(e.Message, "in flight") {
		t.Fatalf("message %q", e.Message)
	}
	c.send(&bridge.CancelFrame{ID: "slow"})
	if d, ok := c.next().(*bridge.DoneFrame); !ok || d.ID != "slow" || !d.Cancelled || d.Count != 2 {
		t.Fatalf("after cancel: got %#v, want done slow cancelled count 2", d)
	}
	eventually(t, "the finder's search to end", func() bool { return len(f.endedErrs()) == 1 })
	if errs := f.endedErrs(); !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("finder ctx ended with %v, want Canceled", errs[0])
	}
	c.send(&bridge.CancelFrame{ID: "unknown"}) // ignored
	c.send(&bridge.FindFrame{ID: "third", Service: "SlowService", Limit: 2})
	if _, end := c.collect("third"); end.(*bridge.DoneFrame).Count != 2 {
		t.Fatalf("third: %#v", end)
	}
	if got := s.Stats().Refusals[bridge.ReasonInFlight]; got != 1 {
		t.Fatalf("in-flight refusals: %d, want 1", got)
	}
}

// TestMaxConns: beyond MaxConns the upgrade gets HTTP 503; a freed slot
// admits the next client.
func TestMaxConns(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 2
	s := startServer(t, newFakeFinder(t), cfg)
	a := dial(t, s, dialOpts{})
	a.hello("")
	b := dial(t, s, dialOpts{})
	b.hello("")
	_, resp, err := tryDial(s, dialOpts{})
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third dial: err %v, resp %v; want HTTP 503 with Retry-After", err, resp)
	}
	if got := s.Stats().Refusals[bridge.ReasonMaxConns]; got != 1 {
		t.Fatalf("max_conns refusals: %d, want 1", got)
	}
	a.conn.Close(websocket.StatusNormalClosure, "bye")
	eventually(t, "the closed session to end", func() bool { return s.Stats().Sessions == 1 })
	dial(t, s, dialOpts{}).hello("")
}

// TestShutdown: Shutdown closes every WebSocket with 1001, stops their
// finds, and Serve returns ErrClosed.
func TestShutdown(t *testing.T) {
	f := newFakeFinder(t)
	f.started = make(chan string, 8)
	f.hold["slowservice"] = true
	s := startServer(t, f, testConfig())
	var clients []*client
	for i := range 3 {
		c := dial(t, s, dialOpts{})
		c.hello("")
		c.send(&bridge.FindFrame{ID: fmt.Sprint(i), Service: "SlowService"})
		<-f.started
		clients = append(clients, c)
	}
	// Clients read while the bridge shuts down, as browsers do, so that
	// the close handshake completes.
	closes := make(chan websocket.StatusCode, len(clients))
	for _, c := range clients {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, _, err := c.conn.Read(ctx)
			closes <- websocket.CloseStatus(err)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown took %s", time.Since(start))
	for range clients {
		if got := <-closes; got != websocket.StatusGoingAway {
			t.Errorf("client closed with %d, want %d", got, websocket.StatusGoingAway)
		}
	}
	eventually(t, "every search to end", func() bool { return len(f.endedErrs()) == 3 })
	if st := s.Stats(); st.Sessions != 0 {
		t.Fatalf("sessions after Shutdown: %d", st.Sessions)
	}
	if _, _, err := tryDial(s, dialOpts{}); err == nil {
		t.Fatal("dial after Shutdown succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
}

// errorCodeCase is one case of TestErrorCodes.
type errorCodeCase struct {
	name       string
	configure  func(*bridge.Config, *fakeFinder)
	before     []any // frames sent first, unanswered
	send       any   // nil: send nothing
	wantID     string
	wantCode   bridge.Code
	wantMsg    string        // substring of the public message
	wantReason bridge.Reason // counted refusal, if any
	wantClose  websocket.StatusCode
}

// errorCodeCases trigger every error code at least once.
func errorCodeCases() []errorCodeCase {
	return []errorCodeCase{
		{name: "bad_request/json", send: `{"type":"find",`, wantCode: bridge.CodeBadRequest,
			wantMsg: "bad frame", wantReason: bridge.ReasonBadFrame},
		{name: "bad_request/not an object", send: `["find"]`, wantCode: bridge.CodeBadRequest,
			wantMsg: "want a JSON object", wantReason: bridge.ReasonBadFrame},
		{name: "bad_request/service name", send: `{"type":"find","id":"a","service":"bad name!"}`, wantID: "a",
			wantCode: bridge.CodeBadRequest, wantMsg: "invalid service name", wantReason: bridge.ReasonBadFrame},
		{name: "bad_request/missing id", send: `{"type":"find","service":"DatabaseService"}`,
			wantCode: bridge.CodeBadRequest, wantMsg: "id must be", wantReason: bridge.ReasonBadFrame},
		{name: "bad_request/negative limit", send: `{"type":"find","id":"n","service":"X","limit":-1}`, wantID: "n",
			wantCode: bridge.CodeBadRequest, wantMsg: "limit", wantReason: bridge.ReasonBadFrame},
		{name: "bad_request/second hello", send: &bridge.HelloFrame{Version: 1}, wantCode: bridge.CodeBadRequest,
			wantMsg: "hello already received", wantReason: bridge.ReasonBadFrame},
		{name: "unknown_type", send: `{"type":"subscribe","id":"u"}`, wantID: "u",
			wantCode: bridge.CodeUnknownType, wantMsg: `"subscribe"`, wantReason: bridge.ReasonBadFrame},
		{name: "forbidden/service allowlist",
			configure: func(c *bridge.Config, _ *fakeFinder) { c.Services = []string{"DatabaseService"} },
			send:      &bridge.FindFrame{ID: "s", Service: "CacheService"}, wantID: "s",
			wantCode: bridge.CodeForbidden, wantMsg: "service not allowed", wantReason: bridge.ReasonService},
		{name: "rate_limited/frames",
			configure: func(c *bridge.Config, _ *fakeFinder) { c.FramesPerSecond, c.FrameBurst = 0.001, 1 },
			send:      &bridge.PingFrame{ID: "r"}, wantID: "r",
			wantCode: bridge.CodeRateLimited, wantMsg: "too many frames", wantReason: bridge.ReasonRate},
		{name: "not_found", send: &bridge.FindFrame{ID: "nf", Service: "NobodyService"}, wantID: "nf",
			wantCode: bridge.CodeNotFound, wantMsg: "no provider of NobodyService found"},
		{name: "timeout",
			configure: func(_ *bridge.Config, f *fakeFinder) { f.hold["slowservice"] = true },
			send:      &bridge.FindFrame{ID: "t", Service: "SlowService", TimeoutMS: 50}, wantID: "t",
			wantCode: bridge.CodeTimeout, wantMsg: "within 50ms"},
		{name: "too_large", send: `{"type":"ping","id":"` + strings.Repeat("x", bridge.DefaultMaxFrameSize) + `"}`,
			wantCode: bridge.CodeTooLarge, wantMsg: "frame over 8192 bytes", wantReason: bridge.ReasonTooLarge,
			wantClose: websocket.StatusMessageTooBig},
		{name: "internal",
			configure: func(_ *bridge.Config, f *fakeFinder) { f.err = errors.New("routing table exploded") },
			send:      &bridge.FindFrame{ID: "i", Service: "DatabaseService"}, wantID: "i",
			wantCode: bridge.CodeInternal, wantMsg: "find failed"},
		{name: "busy",
			configure: func(c *bridge.Config, f *fakeFinder) { c.MaxFinds = 1; f.hold["slowservice"] = true },
			before:    []any{&bridge.FindFrame{ID: "held", Service: "SlowService"}},
			send:      &bridge.FindFrame{ID: "b", Service: "SlowService"}, wantID: "b",
			wantCode: bridge.CodeBusy, wantMsg: "retry later", wantReason: bridge.ReasonFinds},
		{name: "idle",
			configure: func(c *bridge.Config, _ *fakeFinder) { c.IdleTimeout = 50 * time.Millisecond },
			wantCode:  bridge.CodeIdle, wantMsg: "no frame for 50ms", wantReason: bridge.ReasonIdle,
			wantClose: websocket.StatusNormalClosure},
		{name: "unavailable",
			configure: func(c *bridge.Config, _ *fakeFinder) {
				op := newFakeOpener(nil)
				op.refuse["ChatService"] = &bridge.Error{Code: bridge.CodeUnavailable, Message: "the provider's target is down"}
				c.Opener = op
			},
			send: &bridge.OpenFrame{ID: "u", Service: "ChatService"}, wantID: "u",
			wantCode: bridge.CodeUnavailable, wantMsg: "target is down"},
	}
}
