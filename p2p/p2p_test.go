package p2p_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/p2p"
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
