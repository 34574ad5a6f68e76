package bridge_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
)

// TestSessionRefusals: refusals before the welcome send an error frame
// without id, close the connection and are counted.
func TestSessionRefusals(t *testing.T) {
	tests := refusalCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			s := startServer(t, newFakeFinder(t), cfg)
			c := dial(t, s, tt.dial)
			hello := tt.hello
			if hello == nil {
				hello = &bridge.HelloFrame{Version: 1}
			}
			if !tt.noHello {
				c.send(hello)
			}
			e := c.expectError("", tt.wantCode)
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMsg)
			}
			if strings.Contains(e.Message, "policy 7") {
				t.Errorf("message %q leaks the filter's internal reason", e.Message)
			}
			c.expectClosed(tt.wantClose)
			if got := s.Stats().Refusals[tt.wantReason]; got != 1 {
				t.Errorf("refusals[%s] = %d, want 1 (all: %v)", tt.wantReason, got, s.Stats().Refusals)
			}
		})
	}
}

// TestSessionAdmitted: the checks let in what they should.
func TestSessionAdmitted(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*bridge.Config)
		dial      dialOpts
		token     string
		hello     *bridge.HelloFrame
	}{
		{name: "no origin (not a browser)"},
		{name: "same origin", configure: func(c *bridge.Config) { c.Origins = []string{"https://only.example"} },
			dial: dialOpts{origin: "http://SAME"}},
		{name: "localhost page", dial: dialOpts{origin: "http://localhost:5173"}},
		{name: "127.0.0.1 page", dial: dialOpts{origin: "http://127.0.0.1:8080"}},
		{name: "listed origin", configure: func(c *bridge.Config) { c.Origins = []string{"https://app.example"} },
			dial: dialOpts{origin: "https://app.example"}},
		{name: "listed subdomain", configure: func(c *bridge.Config) { c.Origins = []string{"https://*.example.org"} },
			dial: dialOpts{origin: "https://shop.example.org"}},
		{name: "any origin", configure: func(c *bridge.Config) { c.Origins = []string{"*"} },
			dial: dialOpts{origin: "https://anyone.example"}},
		{name: "listed host", configure: func(c *bridge.Config) { c.Hosts = []string{"bridge.example"} },
			dial: dialOpts{host: "bridge.example", origin: "http://bridge.example"}},
		{name: "localhost host", dial: dialOpts{host: "localhost", origin: "http://localhost"}},
		{name: "right token", configure: func(c *bridge.Config) { c.Token = "s3cret-s3cret-s3cret" }, token: "s3cret-s3cret-s3cret"},
		{name: "same network", hello: &bridge.HelloFrame{Version: 1, Network: "development"}},
		{name: "newer client", hello: &bridge.HelloFrame{Version: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			f := newFakeFinder(t)
			f.add(t, "DatabaseService", 1)
			s := startServer(t, f, cfg)
			if tt.dial.origin == "http://SAME" {
				tt.dial.origin = "http://" + s.addr
			}
			c := dial(t, s, tt.dial)
			hello := tt.hello
			if hello == nil {
				hello = &bridge.HelloFrame{Version: 1, Token: tt.token}
			}
			c.send(hello)
			if w, ok := c.next().(*bridge.WelcomeFrame); !ok || w.Version != bridge.Version {
				t.Fatalf("got %#v, want welcome version %d", w, bridge.Version)
			}
			c.send(&bridge.FindFrame{ID: "1", Service: "DatabaseService"})
			if results, _ := c.collect("1"); len(results) != 1 {
				t.Fatalf("got %d results, want 1", len(results))
			}
		})
	}
}

// TestFilterFind: a Filter sees each find and can refuse it alone.
func TestFilterFind(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 1)
	f.add(t, "SecretService", 1)
	var mu sync.Mutex
	var seen []bridge.Request
	cfg := testConfig()
	cfg.Token = "t0k-t0k-t0k-t0k-t0k"
	cfg.Filters = []bridge.Filter{bridge.FilterFunc(func(_ context.Context, r *bridge.Request) error {
		mu.Lock()
		seen = append(seen, *r)
		mu.Unlock()
		if r.Stage == bridge.StageFind && r.Service == "SecretService" {
			return &bridge.Error{Code: bridge.CodeForbidden, Message: "members only"}
		}
		return nil
	})}
	s := startServer(t, f, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("t0k-t0k-t0k-t0k-t0k")
	c.send(&bridge.FindFrame{ID: "a", Service: "SecretService"})
	if e := c.expectError("a", bridge.CodeForbidden); e.Message != "members only" {
		t.Fatalf("message %q, want %q", e.Message, "members only")
	}
	c.send(&bridge.FindFrame{ID: "b", Service: "DatabaseService", Limit: 3})
	if results, _ := c.collect("b"); len(results) != 1 {
		t.Fatalf("got %d results, want 1", len(results))
	}
	mu.Lock()
	defer mu.Unlock()
	stages := []bridge.Stage{}
	for _, r := range seen {
		stages = append(stages, r.Stage)
	}
	wantStages := []bridge.Stage{bridge.StageConnect, bridge.StageHello, bridge.StageFind, bridge.StageFind}
	if !slices.Equal(stages, wantStages) {
		t.Fatalf("filter stages: got %v, want %v", stages, wantStages)
	}
	last := seen[3]
	if last.Token != "t0k-t0k-t0k-t0k-t0k" || last.Client != "go-test" || last.Service != "DatabaseService" || last.Limit != 3 ||
		last.Timeout != bridge.DefaultFindTimeout || !strings.HasPrefix(last.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("filter request: got %+v", last)
	}
	if got := s.Stats().Refusals[bridge.ReasonFilter]; got != 1 {
		t.Fatalf("filter refusals: %d, want 1", got)
	}
}

// refusalCase is one case of TestSessionRefusals.
type refusalCase struct {
	name       string
	configure  func(*bridge.Config)
	dial       dialOpts
	hello      any // nil: a plain hello
	wantCode   bridge.Code
	wantMsg    string
	wantReason bridge.Reason
	wantClose  websocket.StatusCode
	noHello    bool // refused before the hello
}

// refusalCases are the session-level refusals, one per check.
func refusalCases() []refusalCase {
	return []refusalCase{
		{name: "token missing", configure: func(c *bridge.Config) { c.Token = "s3cret-s3cret-s3cret" },
			wantCode: bridge.CodeForbidden, wantMsg: "token required", wantReason: bridge.ReasonToken,
			wantClose: websocket.StatusPolicyViolation},
		{name: "token wrong", configure: func(c *bridge.Config) { c.Token = "s3cret-s3cret-s3cret" },
			hello:    &bridge.HelloFrame{Version: 1, Token: "guess"},
			wantCode: bridge.CodeForbidden, wantMsg: "invalid token", wantReason: bridge.ReasonToken,
			wantClose: websocket.StatusPolicyViolation},
		{name: "find before hello", hello: &bridge.FindFrame{ID: "x", Service: "DatabaseService"},
			wantCode: bridge.CodeBadRequest, wantMsg: "first frame must be hello", wantReason: bridge.ReasonHello,
			wantClose: websocket.StatusProtocolError},
		{name: "garbage before hello", hello: "hello",
			wantCode: bridge.CodeBadRequest, wantMsg: "want a JSON object", wantReason: bridge.ReasonHello,
			wantClose: websocket.StatusProtocolError},
		{name: "hello without version", hello: `{"type":"hello"}`,
			wantCode: bridge.CodeBadRequest, wantMsg: "version", wantReason: bridge.ReasonHello,
			wantClose: websocket.StatusProtocolError},
		{name: "other network", hello: &bridge.HelloFrame{Version: 1, Network: "production"},
			wantCode: bridge.CodeBadRequest, wantMsg: `not "production"`, wantReason: bridge.ReasonNetwork,
			wantClose: websocket.StatusPolicyViolation},
		{name: "no subprotocol", dial: dialOpts{noProto: true},
			wantCode: bridge.CodeBadRequest, wantMsg: "netget.v1 is required", wantReason: bridge.ReasonSubprotocol,
			wantClose: websocket.StatusProtocolError, noHello: true},
		{name: "origin not allowed", dial: dialOpts{origin: "https://evil.example"},
			wantCode: bridge.CodeForbidden, wantMsg: "origin not allowed", wantReason: bridge.ReasonOrigin,
			wantClose: websocket.StatusPolicyViolation, noHello: true},
		{name: "origin null", dial: dialOpts{origin: "null"},
			wantCode: bridge.CodeForbidden, wantMsg: "origin not allowed", wantReason: bridge.ReasonOrigin,
			wantClose: websocket.StatusPolicyViolation, noHello: true},
		{name: "origin null with any allowed", configure: func(c *bridge.Config) { c.Origins = []string{"*"} },
			dial:     dialOpts{origin: "null"},
			wantCode: bridge.CodeForbidden, wantMsg: "origin not allowed", wantReason: bridge.ReasonOrigin,
			wantClose: websocket.StatusPolicyViolation, noHello: true},
		{name: "localhost origin not in an explicit list",
			configure: func(c *bridge.Config) { c.Origins = []string{"https://app.example"} },
			dial:      dialOpts{origin: "http://localhost:3000"},
			wantCode:  bridge.CodeForbidden, wantMsg: "origin not allowed", wantReason: bridge.ReasonOrigin,
			wantClose: websocket.StatusPolicyViolation, noHello: true},
		{name: "dns rebinding host", dial: dialOpts{host: "evil.example", origin: "http://evil.example"},
			wantCode: bridge.CodeForbidden, wantMsg: "host not allowed", wantReason: bridge.ReasonHost,
			wantClose: websocket.StatusPolicyViolation, noHello: true},
		{name: "filter at connect",
			configure: func(c *bridge.Config) {
				c.Filters = []bridge.Filter{bridge.FilterFunc(func(_ context.Context, r *bridge.Request) error {
					if r.Stage == bridge.StageConnect && r.Header.Get("Authorization") == "" {
						return &bridge.Error{Code: bridge.CodeForbidden, Message: "log in first"}
					}
					return nil
				})}
			},
			wantCode: bridge.CodeForbidden, wantMsg: "log in first", wantReason: bridge.ReasonFilter,
			wantClose: websocket.StatusPolicyViolation, noHello: true},
		{name: "filter at hello, plain error",
			configure: func(c *bridge.Config) {
				c.Filters = []bridge.Filter{bridge.FilterFunc(func(_ context.Context, r *bridge.Request) error {
					if r.Stage == bridge.StageHello && r.Client == "go-test" {
						return fmt.Errorf("client %s is banned by policy 7", r.Client)
					}
					return nil
				})}
			},
			hello:    &bridge.HelloFrame{Version: 1, Client: "go-test"},
			wantCode: bridge.CodeForbidden, wantMsg: "refused", wantReason: bridge.ReasonFilter,
			wantClose: websocket.StatusPolicyViolation},
	}
}

// TestReadBufferReuse: a session reuses its read buffer between frames;
// frames of every size up to MaxFrameSize, large then small, each parse as
// sent (no bytes of an earlier frame leak into a later one), and a frame
// one byte over the limit is still refused.
func TestReadBufferReuse(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 1)
	cfg := testConfig()
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6
	s := startServer(t, f, cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	find := func(id string, pad int) string {
		return `{"type":"find","id":"` + id + `","service":"DatabaseService","pad":"` + strings.Repeat("p", pad) + `"}`
	}
	overhead := len(find("", 0))
	for i, size := range []int{overhead + 10, 2000, cfg.MaxFrameSize, 100, 3000, overhead + 2} {
		id := fmt.Sprintf("r%d", i)
		c.send(find(id, size-overhead-len(id)))
		results, end := c.collect(id)
		if d, ok := end.(*bridge.DoneFrame); !ok || d.ID != id || len(results) != 1 {
			t.Fatalf("frame of %d bytes: got %d results and %#v, want 1 and done %q", size, len(results), end, id)
		}
	}
	c.send(find("big", cfg.MaxFrameSize-overhead-len("big")+1))
	c.expectError("", bridge.CodeTooLarge)
	c.expectClosed(websocket.StatusMessageTooBig)
}
