package dht_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// relayedProvider starts a provider behind relay r: a host holding a slot
// there, never connected to reg, whose record names only its circuit
// address. It returns the provider and its signed record.
func relayedProvider(t *testing.T, r host.Host, now time.Time) (host.Host, []byte) {
	t.Helper()
	key, id := recordtest.NewKey(t)
	cfg := p2ptest.Config()
	cfg.Identity, cfg.Reachability, cfg.HolePunching = key, p2p.ReachabilityPrivate, false
	h := p2ptest.NewHostFrom(t, cfg)
	if _, err := client.Reserve(testCtx(t), h, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
		t.Fatalf("reserve a relay slot: %v", err)
	}
	svc := recordtest.Valid(id, now)
	svc.Addrs = []string{r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit"}
	return h, recordtest.SealRaw(t, svc, key)
}

// TestHealthChecksThroughRelay: a registry checks providers it can reach
// only through a relay (their records name circuit addresses, the same
// for all of them): each is checked on a relayed connection, in the same
// round, and served.
func TestHealthChecksThroughRelay(t *testing.T) {
	rcfg := p2ptest.Config()
	rcfg.Reachability, rcfg.RelayService = p2p.ReachabilityPublic, p2p.DefaultRelayService()
	rcfg.RelayService.Enabled = true
	r := p2ptest.NewHostFrom(t, rcfg)
	eventually(t, "the relay service", func() bool { return slices.Contains(r.Mux().Protocols(), protocol.ID(proto.ProtoIDv2Hop)) })

	clk := newClock()
	reg := checkedRegistry(t, clk, dht.Health{Interval: time.Minute, Failures: 1, Timeout: 5 * time.Second})
	pusher := joined(t, nil, reg, dht.ModeClient)
	var provs []host.Host
	var envs [][]byte
	for range 3 {
		h, env := relayedProvider(t, r, clk.Now())
		provs, envs = append(provs, h), append(envs, env)
	}
	pushAll(t, pusher, reg, envs) // each push is answered once its first check is done
	for _, p := range provs {
		if c := reg.Host().Network().Connectedness(p.ID()); c != network.Limited {
			t.Errorf("registry's connection to provider %s: %v, want a relayed (limited) one", p.ID(), c)
		}
		if st, ok := state(reg, p.ID()); !ok || !st.Healthy || st.Pending || st.Failures != 0 {
			t.Errorf("provider %s checked through the relay: %+v, want healthy", p.ID(), st)
		}
	}
	if got := listed(t, pusher, reg); len(got) != len(provs) {
		t.Fatalf("registry lists %d providers checked through the relay, want %d", len(got), len(provs))
	}
}

// TestRepublishOnAddressChange: a provider whose addresses change (a
// relay slot gained, a new listen address) republishes at once, not at
// half its TTL.
func TestRepublishOnAddressChange(t *testing.T) {
	reg := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	prov := joined(t, nil, reg, dht.ModeClient)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	published := make(chan []string, 16)
	done := make(chan error, 1)
	go func() {
		done <- prov.Provide(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}, func(svc *record.Service, err error) {
			if err == nil {
				published <- svc.Addrs
			}
		})
	}()
	first := <-published
	extra, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/0")
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.Host().Network().Listen(extra); err != nil {
		t.Fatalf("listen on a second address: %v", err)
	}
	select {
	case again := <-published:
		if len(again) != len(first)+1 {
			t.Fatalf("republished addrs %v, want %v and the new listen address", again, first)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no republication within 10s of the address change (TTL 1h)")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Provide: %v", err)
	}
}
