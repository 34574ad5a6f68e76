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
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// BenchmarkRelay measures what a relay costs a request on TCP loopback:
// one registry-protocol round trip (a List) and one libp2p ping, to a
// node behind a circuit relay v2 and to the same node directly, with the
// ratio. Round trips are few and small: a relayed connection carries at
// most RelayService.CircuitBytes (128 KiB) each way before the relay
// resets it.
func BenchmarkRelay(b *testing.B) {
	const rounds = 200
	rcfg := p2ptest.Config()
	rcfg.Reachability, rcfg.RelayService = p2p.ReachabilityPublic, p2p.DefaultRelayService()
	rcfg.RelayService.Enabled = true
	r := p2ptest.NewHostFrom(b, rcfg)
	tick, deadline := time.NewTicker(time.Millisecond), time.Now().Add(10*time.Second)
	for !slices.Contains(r.Mux().Protocols(), protocol.ID(proto.ProtoIDv2Hop)) { // it starts on an event
		if time.Now().After(deadline) {
			b.Fatal("the relay service did not start within 10s")
		}
		<-tick.C
	}
	tick.Stop()
	pcfg := p2ptest.Config()
	pcfg.Reachability, pcfg.HolePunching = p2p.ReachabilityPrivate, false
	prov := dhttest.NewNodeOn(b, p2ptest.NewHostFrom(b, pcfg), "development", dht.ModeClient, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.Reserve(ctx, prov.Host(), peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
		b.Fatalf("reserve: %v", err)
	}
	circuit, err := ma.NewMultiaddr(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")
	if err != nil {
		b.Fatal(err)
	}
	c, _ := record.ServiceCID("development", "DatabaseService")
	measure := func(relayed bool) (list, pingRTT time.Duration) {
		fcfg := p2ptest.Config()
		fcfg.HolePunching = false
		f := dhttest.NewNodeOn(b, p2ptest.NewHostFrom(b, fcfg), "development", dht.ModeClient, nil)
		ai := peer.AddrInfo{ID: prov.Host().ID(), Addrs: prov.Host().Addrs()}
		if relayed {
			ai.Addrs = []ma.Multiaddr{circuit}
		}
		if err := f.Host().Connect(ctx, ai); err != nil {
			b.Fatalf("connect (relayed %v): %v", relayed, err)
		}
		lists, pings := make([]time.Duration, 0, rounds), make([]time.Duration, 0, rounds)
		for range rounds {
			start := time.Now()
			if _, err := dht.List(ctx, f, prov.Host().ID(), c); err != nil {
				b.Fatalf("list (relayed %v): %v", relayed, err)
			}
			lists = append(lists, time.Since(start))
			pings = append(pings, pingOnce(b, ctx, f.Host(), prov.Host().ID()))
		}
		if got := f.Host().Network().Connectedness(prov.Host().ID()) == network.Limited; got != relayed {
			b.Fatalf("connection relayed = %v, want %v", got, relayed)
		}
		return p50(lists), p50(pings)
	}
	b.ResetTimer()
	for range b.N {
		dList, dPing := measure(false)
		rList, rPing := measure(true)
		b.ReportMetric(ms(dList), "direct-list-p50-ms")
		b.ReportMetric(ms(rList), "relayed-list-p50-ms")
		b.ReportMetric(float64(rList)/float64(dList), "list-relayed/direct")
		b.ReportMetric(ms(dPing), "direct-ping-p50-ms")
		b.ReportMetric(ms(rPing), "relayed-ping-p50-ms")
		b.ReportMetric(float64(rPing)/float64(dPing), "ping-relayed/direct")
	}
}

func pingOnce(b *testing.B, ctx context.Context, h host.Host, p peer.ID) time.Duration {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := <-ping.Ping(pctx, h, p)
	if res.Error != nil {
		b.Fatalf("ping: %v", res.Error)
	}
	return res.RTT
}

func p50(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
