package bootstrap_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

// speaking returns a host that serves the DHT protocol of each network, as
// a netget DHT server of that network does (identify advertises it).
func speaking(t *testing.T, networks ...string) host.Host {
	h := p2ptest.NewHost(t)
	for _, n := range networks {
		h.SetStreamHandler(protocol.ID("/netget/"+n+"/kad/1.0.0"), func(s network.Stream) { s.Reset() })
	}
	return h
}

// TestConnectWrongNetwork: a bootstrap peer that speaks another network
// fails at once, naming both networks, and is not retried; a peer that
// speaks the node's network, or names none, joins.
func TestConnectWrongNetwork(t *testing.T) {
	tests := []struct {
		name     string
		speaks   []string
		wantErr  string // "" means it joins
		attempts int32
	}{
		{"other network", []string{"devnet"}, "speaks network devnet, not development", 1},
		{"two others", []string{"production", "devnet"}, "speaks network devnet, production, not development", 1},
		{"same network", []string{"development"}, "", 1},
		{"both", []string{"development", "devnet"}, "", 1},
		{"no netget protocol", nil, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, b := p2ptest.NewHost(t), speaking(t, tt.speaks...)
			cfg := fastConfig()
			cfg.Network = "development"
			var attempts atomic.Int32
			cfg.OnAttempt = func(peer.ID, int, error) { attempts.Add(1) }
			_, err := bootstrap.Connect(testContext(t), h, []peer.AddrInfo{p2ptest.AddrInfo(b)}, cfg)
			if got := attempts.Load(); got != tt.attempts {
				t.Errorf("attempts: got %d, want %d", got, tt.attempts)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				return
			}
			want := tt.wantErr
			if len(tt.speaks) == 1 {
				want = "bootstrap peer " + b.ID().String() + " speaks network devnet, not development"
			}
			var ne *bootstrap.NetworkError
			if !errors.Is(err, bootstrap.ErrWrongNetwork) || !errors.As(err, &ne) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Connect: got %v, want ErrWrongNetwork saying %q", err, want)
			}
			if h.ConnManager().IsProtected(b.ID(), bootstrap.ProtectTag) {
				t.Errorf("a peer of another network is protected")
			}
		})
	}
}
