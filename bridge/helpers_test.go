package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// wait is how long a test waits for any one frame or condition.
const wait = 10 * time.Second

// fakeFinder answers finds from a fixed table, the way a dht.Node does:
// it yields each record, up to the limit, then returns, or, for services
// in hold, keeps the search open until ctx ends or its timeout passes.
type fakeFinder struct {
	records map[string][]*record.Service // by lowercase name
	hold    map[string]bool              // lowercase names whose search never ends by itself
	err     error                        // returned by every Find when set

	started chan string // each Find's service, if non-nil
	quiet   bool        // keep no opts or ended (benchmarks: they grew by one each a find)
	mu      sync.Mutex
	ended   []error // each search's ctx.Err() when it ended
	opts    []bridge.FindOptions
}

func newFakeFinder(tb testing.TB) *fakeFinder {
	return &fakeFinder{records: map[string][]*record.Service{}, hold: map[string]bool{}}
}

// add gives service n providers with distinct metadata.
func (f *fakeFinder) add(tb testing.TB, service string, n int) []*record.Service {
	tb.Helper()
	var out []*record.Service
	for i := range n {
		out = append(out, newRecord(tb, service, map[string]string{"replica": fmt.Sprint(i)}))
	}
	f.records[strings.ToLower(service)] = append(f.records[strings.ToLower(service)], out...)
	return out
}

func (f *fakeFinder) Find(ctx context.Context, service string, opts bridge.FindOptions, yield func(bridge.Result) bool) error {
	if f.err != nil {
		return f.err
	}
	if !f.quiet {
		f.mu.Lock()
		f.opts = append(f.opts, opts)
		f.mu.Unlock()
	}
	if f.started != nil {
		f.started <- service
	}
	key := strings.ToLower(service)
	recs, hold := f.records[key], f.hold[key]
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	defer func() {
		if !f.quiet {
			f.mu.Lock()
			f.ended = append(f.ended, ctx.Err())
			f.mu.Unlock()
		}
	}()
	start := time.Now()
	for i, r := range recs {
		if ctx.Err() != nil || (opts.Limit > 0 && i == opts.Limit) {
			break
		}
		if !yield(bridge.Result{Record: r, Source: "registry", Elapsed: time.Since(start)}) {
			return nil
		}
	}
	if hold && (opts.Limit == 0 || len(recs) < opts.Limit) {
		<-ctx.Done()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("find %s: %w", service, ctx.Err())
	}
	return nil
}

// endedErrs returns the ctx errors of the searches that ended so far.
func (f *fakeFinder) endedErrs() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.ended...)
}

// newRecord returns a valid-looking record for service by a fresh peer.
func newRecord(tb testing.TB, service string, meta map[string]string) *record.Service {
	tb.Helper()
	_, id := recordtest.NewKey(tb)
	now := time.Now().UTC().Truncate(time.Second)
	return &record.Service{Version: record.Version, Network: "development", Name: service, Peer: id,
		Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Meta: meta, Seq: 1,
		IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
}

// testConfig is a bridge config for tests: no pings, a test peer ID.
func testConfig() bridge.Config {
	cfg := bridge.DefaultConfig("12D3KooWTestBridgePeer", "development")
	cfg.PingInterval = 0
	return cfg
}

// server is a bridge serving on 127.0.0.1.
type server struct {
	*bridge.Server
	addr   string // host:port
	served chan error
}

// startServer serves a bridge for f on a loopback port until the test ends.
func startServer(t testing.TB, f bridge.Finder, cfg bridge.Config) *server {
	t.Helper()
	b, err := bridge.New(f, cfg)
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Server: b, addr: l.Addr().String(), served: make(chan error, 1)}
	go func() { s.served <- b.Serve(l) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-s.served; !errors.Is(err, bridge.ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return s
}

func (s *server) wsURL() string   { return "ws://" + s.addr + bridge.PathWS }
func (s *server) httpURL() string { return "http://" + s.addr }

// client is a Go WebSocket client of the bridge.
type client struct {
	t    testing.TB
	conn *websocket.Conn
}

// dialOpts shape a dial: the page origin, the Host header, subprotocols.
type dialOpts struct {
	origin   string
	host     string
	noProto  bool
	client   *http.Client
	endpoint string
	from     string // local loopback IP to dial from ("127.0.0.2"); default any
}

// dial opens a WebSocket to s, closed when the test ends.
func dial(t testing.TB, s *server, o dialOpts) *client {
	t.Helper()
	c, resp, err := tryDial(s, o)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", s.addr, err, status)
	}
	cl := &client{t: t, conn: c}
	t.Cleanup(func() { c.CloseNow() })
	return cl
}

func tryDial(s *server, o dialOpts) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h := http.Header{}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	if o.from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(o.from)}}
		o.client = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	opts := &websocket.DialOptions{HTTPHeader: h, Host: o.host, HTTPClient: o.client}
	if !o.noProto {
		opts.Subprotocols = []string{bridge.Subprotocol}
	}
	url := o.endpoint
	if url == "" {
		url = s.wsURL()
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if c != nil {
		c.SetReadLimit(1 << 20)
	}
	return c, resp, err
}

// send writes one frame (a frame struct, or a raw string).
func (c *client) send(f any) {
	c.t.Helper()
	var b []byte
	switch f := f.(type) {
	case string:
		b = []byte(f)
	default:
		var err error
		if b, err = bridge.Marshal(f); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

// next reads the next frame.
func (c *client) next() bridge.ServerFrame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	f, err := bridge.ParseServerFrame(b)
	if err != nil {
		c.t.Fatalf("parse %s: %v", b, err)
	}
	return f
}

// hello says hello (with token, if any) and returns the welcome.
func (c *client) hello(token string) *bridge.WelcomeFrame {
	c.t.Helper()
	c.send(&bridge.HelloFrame{Version: bridge.Version, Token: token, Client: "go-test"})
	f := c.next()
	w, ok := f.(*bridge.WelcomeFrame)
	if !ok {
		c.t.Fatalf("after hello: got %#v, want welcome", f)
	}
	return w
}

// expectError reads an error frame and checks its id and code.
func (c *client) expectError(id string, code bridge.Code) *bridge.ErrorFrame {
	c.t.Helper()
	f := c.next()
	e, ok := f.(*bridge.ErrorFrame)
	if !ok || e.ID != id || e.Code != code {
		c.t.Fatalf("got %#v, want error id %q code %s", f, id, code)
	}
	return e
}

// expectClosed reads until the connection closes and checks the status.
func (c *client) expectClosed(status websocket.StatusCode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err == nil {
		c.t.Fatalf("want close %d, got frame %s", status, b)
	}
	if got := websocket.CloseStatus(err); got != status {
		c.t.Fatalf("want close %d, got %d (%v)", status, got, err)
	}
}

// collect reads the frames answering find id up to its done or error.
func (c *client) collect(id string) (results []*bridge.ResultFrame, end bridge.ServerFrame) {
	c.t.Helper()
	for {
		switch f := c.next().(type) {
		case *bridge.ResultFrame:
			if f.ID != id {
				c.t.Fatalf("result for %q while collecting %q", f.ID, id)
			}
			results = append(results, f)
		case *bridge.DoneFrame, *bridge.ErrorFrame:
			return results, f
		default:
			c.t.Fatalf("unexpected frame %#v", f)
		}
	}
}

// eventually waits for cond, failing after wait.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
