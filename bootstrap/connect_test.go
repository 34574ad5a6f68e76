package bootstrap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record/recordtest"
)

// newKey makes a fresh identity.
func newKey(t *testing.T) (crypto.PrivKey, peer.ID) { return recordtest.NewKey(t) }

// closedPort returns a 127.0.0.1 TCP port that was listened on and closed,
// so dialling it is refused.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// deadPeer is a fresh peer ID at a loopback port nobody listens on.
func deadPeer(t *testing.T) peer.AddrInfo {
	t.Helper()
	_, id := newKey(t)
	return peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{tcpAddr(t, closedPort(t))}}
}

func tcpAddr(t *testing.T, port int) ma.Multiaddr {
	t.Helper()
	m, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fastConfig retries quickly; tests never depend on the timing.
func fastConfig() bootstrap.Config {
	cfg := bootstrap.DefaultConfig()
	cfg.Backoff, cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	return cfg
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConnectSomeReachable(t *testing.T) {
	h, a, b := p2ptest.NewHost(t), p2ptest.NewHost(t), p2ptest.NewHost(t)
	dead := deadPeer(t)
	cfg := fastConfig()
	log, logs := newLogger()
	cfg.Logger = log
	got, err := bootstrap.Connect(testContext(t), h, []peer.AddrInfo{p2ptest.AddrInfo(a), dead, p2ptest.AddrInfo(b)}, cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if want := []peer.ID{a.ID(), b.ID()}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("connected: got %v, want %v", got, want)
	}
	for _, p := range got {
		if !h.ConnManager().IsProtected(p, bootstrap.ProtectTag) {
			t.Errorf("connection to %s is not protected as %q", p, bootstrap.ProtectTag)
		}
	}
	if h.ConnManager().IsProtected(dead.ID, bootstrap.ProtectTag) {
		t.Errorf("unreachable peer %s is protected", dead.ID)
	}
	out := logs.String()
	for _, s := range []string{"level=WARN", "bootstrap peer unreachable", dead.ID.String(), dead.Addrs[0].String(), "connection refused"} {
		if !strings.Contains(out, s) {
			t.Errorf("log does not contain %q:\n%s", s, out)
		}
	}
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("got %d warnings, want 1:\n%s", n, out)
	}
}

func TestConnectNoneReachable(t *testing.T) {
	h := p2ptest.NewHost(t)
	dead := []peer.AddrInfo{deadPeer(t), deadPeer(t)}
	ctx := testContext(t)
	// Twice: the second call must dial again, not fail on the dial backoff
	// the first left behind.
	for round := 1; round <= 2; round++ {
		var mu sync.Mutex
		attempts := make(map[peer.ID]int)
		cfg := fastConfig()
		cfg.OnAttempt = func(p peer.ID, _ int, _ error) { mu.Lock(); attempts[p]++; mu.Unlock() }
		_, err := bootstrap.Connect(ctx, h, dead, cfg)
		var ue *bootstrap.UnreachableError
		if !errors.As(err, &ue) || !errors.Is(err, bootstrap.ErrUnreachable) {
			t.Fatalf("round %d: got %v, want *UnreachableError", round, err)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("round %d: errors.Is(err, ECONNREFUSED) is false: %v", round, err)
		}
		want := "no bootstrap peer reachable: " +
			fmt.Sprintf("%s (%s): connection refused; ", dead[0].ID, dead[0].Addrs[0]) +
			fmt.Sprintf("%s (%s): connection refused", dead[1].ID, dead[1].Addrs[0])
		if err.Error() != want {
			t.Errorf("round %d: message\n got %q\nwant %q", round, err, want)
		}
		if len(ue.Peers) != 2 || ue.Peers[0].ID != dead[0].ID || ue.Peers[1].ID != dead[1].ID {
			t.Errorf("round %d: peers: got %v", round, ue.Peers)
		}
		for _, d := range dead {
			if attempts[d.ID] != cfg.Attempts {
				t.Errorf("round %d: %s: got %d attempts, want %d", round, d.ID, attempts[d.ID], cfg.Attempts)
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatal("Connect ran until the context's deadline instead of failing fast")
	}
}

// TestConnectTimeout dials a listener that accepts TCP but never answers,
// so the attempt ends at DialTimeout.
func TestConnectTimeout(t *testing.T) {
	h := p2ptest.NewHost(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	_, id := newKey(t)
	silent := peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{tcpAddr(t, l.Addr().(*net.TCPAddr).Port)}}
	cfg := fastConfig()
	cfg.Attempts, cfg.DialTimeout = 2, 50*time.Millisecond
	ctx := testContext(t)
	_, err = bootstrap.Connect(ctx, h, []peer.AddrInfo{silent}, cfg)
	if !errors.Is(err, bootstrap.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrUnreachable wrapping context.DeadlineExceeded", err)
	}
	if want := fmt.Sprintf("%s (%s): timed out after 50ms", id, silent.Addrs[0]); !strings.HasSuffix(err.Error(), want) {
		t.Errorf("message\n got %q\nwant suffix %q", err, want)
	}
	if ctx.Err() != nil {
		t.Fatal("Connect ran until the context's deadline")
	}
}

// TestConnectGivesUp ends the context after the first failed attempt: no
// further attempt is made and the error says why it stopped.
func TestConnectGivesUp(t *testing.T) {
	h := p2ptest.NewHost(t)
	dead := deadPeer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	attempts := 0
	cfg := bootstrap.DefaultConfig() // the hook cancels before any backoff wait
	cfg.OnAttempt = func(peer.ID, int, error) { mu.Lock(); attempts++; mu.Unlock(); cancel() }
	_, err := bootstrap.Connect(ctx, h, []peer.AddrInfo{dead}, cfg)
	for _, w := range []error{bootstrap.ErrUnreachable, context.Canceled, syscall.ECONNREFUSED} {
		if !errors.Is(err, w) {
			t.Errorf("got %v, want it to match %v", err, w)
		}
	}
	if want := "connection refused (gave up after attempt 1: context canceled)"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("message\n got %v\nwant suffix %q", err, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 1 {
		t.Errorf("got %d attempts, want 1", attempts)
	}
}

// TestConnectRetries starts the peer only after its first dial failed: the
// OnAttempt hook holds the dialler until the test goroutine has started it.
func TestConnectRetries(t *testing.T) {
	h := p2ptest.NewHost(t)
	key, id := newKey(t)
	addr := tcpAddr(t, closedPort(t))
	lateCfg := p2ptest.Config()
	lateCfg.ListenAddrs, lateCfg.Identity = []string{addr.String()}, key

	ctx := testContext(t)
	firstFailed, started := make(chan error, 1), make(chan struct{})
	var mu sync.Mutex
	var succeededAt int
	cfg := fastConfig()
	cfg.Attempts = 3
	cfg.OnAttempt = func(_ peer.ID, attempt int, err error) {
		if attempt == 1 {
			firstFailed <- err
			select {
			case <-started:
			case <-ctx.Done():
			}
		}
		if err == nil {
			mu.Lock()
			succeededAt = attempt
			mu.Unlock()
		}
	}
	type result struct {
		ids []peer.ID
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := bootstrap.Connect(ctx, h, []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{addr}}}, cfg)
		done <- result{ids, err}
	}()
	if err := <-firstFailed; !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("first attempt: got %v, want connection refused", err)
	}
	late := p2ptest.NewHostFrom(t, lateCfg)
	close(started)
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect with retry: %v", r.err)
	}
	if len(r.ids) != 1 || r.ids[0] != late.ID() {
		t.Fatalf("connected %v, want the late peer %s", r.ids, late.ID())
	}
	mu.Lock()
	defer mu.Unlock()
	if succeededAt != 2 {
		t.Errorf("connected on attempt %d, want 2", succeededAt)
	}
	if !h.ConnManager().IsProtected(id, bootstrap.ProtectTag) {
		t.Errorf("connection is not protected")
	}
}

func TestConnectPeerList(t *testing.T) {
	h, a := p2ptest.NewHost(t), p2ptest.NewHost(t)
	self, ai := p2ptest.AddrInfo(h), p2ptest.AddrInfo(a)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	bad := fastConfig()
	bad.Attempts = -1
	tests := []struct {
		name    string
		ctx     context.Context
		peers   []peer.AddrInfo
		cfg     bootstrap.Config
		want    []peer.ID
		wantErr []error
	}{
		{name: "none", peers: nil, wantErr: []error{bootstrap.ErrNoPeers}},
		{name: "only self", peers: []peer.AddrInfo{self}, wantErr: []error{bootstrap.ErrNoPeers}},
		{name: "self skipped", peers: []peer.AddrInfo{self, ai}, want: []peer.ID{a.ID()}},
		{name: "listed twice", peers: []peer.AddrInfo{ai, {ID: a.ID(), Addrs: ai.Addrs[:1]}}, want: []peer.ID{a.ID()}},
		{name: "zero config means defaults", peers: []peer.AddrInfo{ai}, cfg: bootstrap.Config{}, want: []peer.ID{a.ID()}},
		{name: "bad config", peers: []peer.AddrInfo{ai}, cfg: bad, wantErr: []error{bootstrap.ErrBadConfig}},
		{name: "canceled", ctx: canceled, peers: []peer.AddrInfo{deadPeer(t)},
			wantErr: []error{bootstrap.ErrUnreachable, context.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = testContext(t)
			}
			got, err := bootstrap.Connect(ctx, h, tt.peers, tt.cfg)
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("err: got %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("err: got %v, want it to match %v", err, w)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	h, a := p2ptest.NewHost(t), p2ptest.NewHost(t)
	viaLocalhost := fmt.Sprintf("/dns4/localhost/tcp/%s/p2p/%s", tcpPort(t, a), a.ID())
	unresolvable := "/dns4/does-not-exist.invalid/tcp/1/p2p/" + id1
	dead := deadPeer(t)
	deadAddr := dead.Addrs[0].Encapsulate(ma.StringCast("/p2p/" + dead.ID.String())).String()
	tests := []struct {
		name    string
		addrs   []string
		want    []peer.ID
		wantErr []error
		logHas  []string
	}{
		{name: "dns4 localhost, one unresolvable", addrs: []string{unresolvable, viaLocalhost},
			want: []peer.ID{a.ID()}, logHas: []string{"level=WARN", "bootstrap address not resolved", "does-not-exist.invalid"}},
		{name: "nothing resolves", addrs: []string{unresolvable}, wantErr: []error{bootstrap.ErrResolve}},
		{name: "unreachable and unresolvable", addrs: []string{deadAddr, unresolvable},
			wantErr: []error{bootstrap.ErrUnreachable, bootstrap.ErrResolve}},
		{name: "no addresses", addrs: nil, wantErr: []error{bootstrap.ErrNoPeers}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs, err := bootstrap.ParseAddrs(tt.addrs, "")
			if err != nil {
				t.Fatal(err)
			}
			cfg := fastConfig()
			log, logs := newLogger()
			cfg.Logger = log
			got, err := bootstrap.Join(testContext(t), h, addrs, cfg)
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("err: got %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("err: got %v, want it to match %v", err, w)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for _, s := range tt.logHas {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("log does not contain %q:\n%s", s, logs)
				}
			}
		})
	}
}

// tcpPort is the port of h's first TCP address.
func tcpPort(t *testing.T, h host.Host) string {
	t.Helper()
	for _, a := range h.Addrs() {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return p
		}
	}
	t.Fatalf("%s has no TCP address", h.ID())
	return ""
}
