package channel_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

// TestChannelThroughRelay: a provider behind NAT, reachable only through
// its relay's circuit address, still serves a channel: the opener's
// connection is relayed (limited) and the channel runs on it, within the
// relay's byte and duration budget.
func TestChannelThroughRelay(t *testing.T) {
	ctx := testCtx(t)
	rcfg := p2ptest.Config()
	rcfg.Reachability, rcfg.RelayService = p2p.ReachabilityPublic, p2p.DefaultRelayService()
	rcfg.RelayService.Enabled = true
	r := p2ptest.NewHostFrom(t, rcfg)
	waitFor(t, "the relay service", func() bool { return slices.Contains(r.Mux().Protocols(), protocol.ID(proto.ProtoIDv2Hop)) })

	pcfg := p2ptest.Config()
	pcfg.Reachability, pcfg.HolePunching = p2p.ReachabilityPrivate, false
	prov := p2ptest.NewHostFrom(t, pcfg)
	if _, err := client.Reserve(ctx, prov, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
		t.Fatalf("reserve a relay slot: %v", err)
	}
	srv, err := channel.NewServer(prov, network_, channel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Handle("ChatService", channel.Accept(echoServe)); err != nil {
		t.Fatal(err)
	}

	dcfg := p2ptest.Config()
	dcfg.HolePunching = false
	d := p2ptest.NewHostFrom(t, dcfg)
	circuit, err := ma.NewMultiaddr(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(ctx, peer.AddrInfo{ID: prov.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	if got := d.Network().Connectedness(prov.ID()); got != network.Limited {
		t.Fatalf("connectedness %v, want a relayed (limited) connection", got)
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := channel.Open(octx, d, network_, prov.ID(), channel.Claims{Service: "ChatService"}, channel.Config{})
	if err != nil {
		t.Fatalf("open a channel through the relay: %v", err)
	}
	defer c.Close(channel.CloseNormal, "")
	roundTrip(t, ctx, c, channel.Message{Type: channel.Text, Data: []byte("hello through the relay")})
}
