package bootstrap_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

const id1 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
const id2 = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"

func TestParseAddrs(t *testing.T) {
	a := "/ip4/127.0.0.1/tcp/4001/p2p/" + id1
	b := "/dns4/registry1.netget.me/tcp/4001/p2p/" + id2
	tests := []struct {
		name  string
		flags []string
		env   string
		want  []string
		err   error
	}{
		{"flags and env", []string{a}, " " + b + " ,", []string{a, b}, nil},
		{"comma separated flag, dupes", []string{a + "," + a, b}, a, []string{a, b}, nil},
		{"dnsaddr without p2p", nil, "/dnsaddr/bootstrap.netget.me", []string{"/dnsaddr/bootstrap.netget.me"}, nil},
		{"empty", nil, "", nil, nil},
		{"missing p2p", []string{"/ip4/127.0.0.1/tcp/4001"}, "", nil, bootstrap.ErrBadAddr},
		{"garbage", nil, "registry1:4001", nil, bootstrap.ErrBadAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bootstrap.ParseAddrs(tt.flags, tt.env)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err: got %v, want %v", err, tt.err)
			}
			var s []string
			for _, m := range got {
				s = append(s, m.String())
			}
			if strings.Join(s, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %v, want %v", s, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	h := p2ptest.NewHost(t)
	port := tcpPort(t, h.Addrs()[0])
	addrs, err := bootstrap.ParseAddrs([]string{
		fmt.Sprintf("/dns4/localhost/tcp/%s/p2p/%s", port, h.ID()),
		"/ip4/127.0.0.1/tcp/9/p2p/" + id1,
		"/dns4/does-not-exist.invalid/tcp/1/p2p/" + id2,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	infos, err := bootstrap.Resolve(ctx, nil, addrs)
	if !errors.Is(err, bootstrap.ErrResolve) || !strings.Contains(err.Error(), "does-not-exist.invalid") {
		t.Fatalf("unresolvable name: got %v, want %v naming it", err, bootstrap.ErrResolve)
	}
	if len(infos) != 2 || infos[0].ID != h.ID() || !strings.HasPrefix(infos[0].Addrs[0].String(), "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("resolved: got %v, want %s at 127.0.0.1 and %s", infos, h.ID(), id1)
	}
}

func tcpPort(t *testing.T, m ma.Multiaddr) string {
	p, err := m.ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deadPeer is a peer ID at a loopback port nobody listens on.
func deadPeer(t *testing.T) peer.AddrInfo {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	id, _ := peer.Decode(id1)
	return peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))}}
}

func fastConfig() bootstrap.Config {
	cfg := bootstrap.DefaultConfig()
	cfg.Backoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	return cfg
}

func TestConnectSomeReachable(t *testing.T) {
	h := p2ptest.NewHost(t)
	a, b := p2ptest.NewHost(t), p2ptest.NewHost(t)
	dead := deadPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := bootstrap.Connect(ctx, h, []peer.AddrInfo{p2ptest.AddrInfo(a), dead, p2ptest.AddrInfo(b)}, fastConfig())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if len(got) != 2 || got[0] != a.ID() || got[1] != b.ID() {
		t.Fatalf("connected: got %v, want [%s %s]", got, a.ID(), b.ID())
	}
	for _, p := range got {
		if !h.ConnManager().IsProtected(p, "netget-bootstrap") {
			t.Errorf("connection to %s is not protected", p)
		}
	}
}

func TestConnectNoneReachable(t *testing.T) {
	h := p2ptest.NewHost(t)
	dead := deadPeer(t)
	var mu sync.Mutex
	attempts := 0
	cfg := fastConfig()
	cfg.OnAttempt = func(peer.ID, int, error) { mu.Lock(); attempts++; mu.Unlock() }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := bootstrap.Connect(ctx, h, []peer.AddrInfo{dead}, cfg)
	var ue *bootstrap.UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, bootstrap.ErrUnreachable) {
		t.Fatalf("got %v, want *UnreachableError", err)
	}
	if len(ue.Peers) != 1 || ue.Peers[0].ID != dead.ID || !strings.Contains(err.Error(), dead.ID.String()) ||
		!strings.Contains(err.Error(), dead.Addrs[0].String()) {
		t.Fatalf("error does not name the peer and address: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Connect used the whole context instead of failing fast")
	}
	if attempts != cfg.Attempts {
		t.Fatalf("attempts: got %d, want %d", attempts, cfg.Attempts)
	}
	if _, err := bootstrap.Connect(ctx, h, nil, cfg); !errors.Is(err, bootstrap.ErrNoPeers) {
		t.Fatalf("no peers: got %v, want %v", err, bootstrap.ErrNoPeers)
	}
}

// TestConnectRetries starts the peer only after the first dial failed.
func TestConnectRetries(t *testing.T) {
	h := p2ptest.NewHost(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfgLate := p2ptest.Config()
	cfgLate.ListenAddrs = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}
	// The late peer's identity must be known up front, so make its key now.
	late := make(chan peer.ID, 1)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	cfgLate.Identity = key
	cfg := fastConfig()
	cfg.Attempts = 5
	cfg.OnAttempt = func(_ peer.ID, attempt int, err error) {
		if attempt == 1 && err != nil {
			late <- p2ptest.NewHostFrom(t, cfgLate).ID()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(cfgLate.ListenAddrs[0])}}
	got, err := bootstrap.Connect(ctx, h, []peer.AddrInfo{target}, cfg)
	if err != nil {
		t.Fatalf("Connect with retry: %v", err)
	}
	if started := <-late; len(got) != 1 || got[0] != started {
		t.Fatalf("connected %v, want the late peer %s", got, started)
	}
}

func TestJoinUnresolvable(t *testing.T) {
	h := p2ptest.NewHost(t)
	addrs, err := bootstrap.ParseAddrs(nil, "/dns4/does-not-exist.invalid/tcp/1/p2p/"+id1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bootstrap.Join(ctx, h, addrs, fastConfig()); !errors.Is(err, bootstrap.ErrResolve) {
		t.Fatalf("Join: got %v, want %v", err, bootstrap.ErrResolve)
	}
}
