package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

func TestIdentityCreatedPrivateAndStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity.key")
	k1, err := p2p.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("key mode: got %04o, want 0600", got)
	}
	k2, err := p2p.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("second load returned a different key")
	}
}

func TestIdentityRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if _, err := p2p.LoadOrCreateIdentity(open); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       error
	}{
		{"group readable", open, p2p.ErrPermissions},
		{"garbage", garbage, p2p.ErrBadKeyFile},
		{"directory", dir, p2p.ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p2p.LoadOrCreateIdentity(tt.path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil && !contains(err.Error(), tt.path) {
				t.Fatalf("error %q does not name the path %s", err, tt.path)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestHostIdentityFromFileAndTransports(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	cfg := p2p.DefaultConfig()
	cfg.IdentityPath = path
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	a, err := p2p.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := a.ID()
	a.Close()
	a, err = p2p.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if a.ID() != id {
		t.Fatalf("restart changed identity: %s then %s", id, a.ID())
	}
	var tcp, quic bool
	for _, m := range a.Addrs() {
		if _, err := m.ValueForProtocol(ma.P_TCP); err == nil {
			tcp = true
		}
		if _, err := m.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quic = true
		}
	}
	if !tcp || !quic {
		t.Fatalf("listen addrs %v: tcp=%v quic=%v, want both", a.Addrs(), tcp, quic)
	}

	// Dial over each transport on its own.
	for _, m := range a.Addrs() {
		cfgB := p2p.DefaultConfig()
		cfgB.ListenAddrs = nil
		b, err := p2p.NewHost(cfgB)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()[:0:0]})
		if err == nil {
			t.Fatal("connect with no addrs succeeded")
		}
		err = b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: append(a.Addrs()[:0:0], m)})
		cancel()
		b.Close()
		if err != nil {
			t.Fatalf("connect over %s: %v", m, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := p2p.DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/nope"}
	if _, err := p2p.NewHost(cfg); !errors.Is(err, p2p.ErrBadConfig) {
		t.Fatalf("bad listen addr: got %v, want %v", err, p2p.ErrBadConfig)
	}
	cfg = p2p.DefaultConfig()
	cfg.ConnLow, cfg.ConnHigh = 10, 5
	if _, err := p2p.NewHost(cfg); !errors.Is(err, p2p.ErrBadConfig) {
		t.Fatalf("bad water marks: got %v, want %v", err, p2p.ErrBadConfig)
	}
}

// TestMaxConns: the resource manager refuses the connection beyond
// Config.MaxConns, and a limit above go-libp2p's scaled one (252 inbound
// on a 24 GiB machine) is the one the host enforces.
func TestMaxConns(t *testing.T) {
	cfg := p2ptest.Config()
	cfg.ConnLow, cfg.ConnHigh, cfg.MaxConns = 4, 6, 6
	server := p2ptest.NewHostFrom(t, cfg)
	for i := range cfg.MaxConns {
		c := p2ptest.NewHost(t)
		if err := connectTo(c, server); err != nil {
			t.Fatalf("connection %d of %d refused: %v", i+1, cfg.MaxConns, err)
		}
	}
	if err := connectTo(p2ptest.NewHost(t), server); err == nil {
		t.Fatalf("connection %d accepted beyond MaxConns %d", cfg.MaxConns+1, cfg.MaxConns)
	}
	if n := len(server.Network().Conns()); n != cfg.MaxConns {
		t.Fatalf("server holds %d connections, want %d", n, cfg.MaxConns)
	}

	cfg = p2ptest.Config()
	cfg.MaxConns = 4096
	h := p2ptest.NewHostFrom(t, cfg)
	err := h.Network().ResourceManager().ViewSystem(func(s network.ResourceScope) error {
		l := s.(rcmgr.ResourceScopeLimiter).Limit()
		if in, all := l.GetConnLimit(network.DirInbound), l.GetConnTotalLimit(); in != 4096 || all != 4096 {
			return fmt.Errorf("system connection limits inbound %d total %d, want 4096", in, all)
		}
		if s := l.GetStreamLimit(network.DirInbound); s < 4*4096 {
			return fmt.Errorf("system inbound stream limit %d, want at least %d", s, 4*4096)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Network().ResourceManager().ViewProtocol("/netget/test/watch/1.0.0", func(s network.ProtocolScope) error {
		if in := s.(rcmgr.ResourceScopeLimiter).Limit().GetStreamLimit(network.DirInbound); in < 2*4096 {
			return fmt.Errorf("a protocol's inbound stream limit %d, want at least %d", in, 2*4096)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg = p2p.DefaultConfig()
	cfg.MaxConns = cfg.ConnHigh - 1
	if _, err := p2p.NewHost(cfg); !errors.Is(err, p2p.ErrBadConfig) {
		t.Fatalf("MaxConns below ConnHigh: got %v, want %v", err, p2p.ErrBadConfig)
	}
}

// connectTo dials b from a within 10 seconds.
func connectTo(a, b host.Host) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		return err
	}
	// The refusal can come after the dialer's handshake: wait until the
	// server has it, or it was refused.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b.Network().Connectedness(a.ID()) == network.Connected {
			return nil
		}
		if a.Network().Connectedness(b.ID()) != network.Connected {
			return fmt.Errorf("refused after the handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("server never counted the connection")
}
