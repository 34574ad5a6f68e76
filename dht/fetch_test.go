package dht_test

import (
	"context"
	"sync"
	"testing"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// TestFetchesBounded: hostile peers announce themselves as providers of a
// service (raw ADD_PROVIDER) and then hold every registry-protocol stream
// open without answering. A find that learns of all of them runs at most
// Config.FetchConcurrency fetches at once, and still ends.
func TestFetchesBounded(t *testing.T) {
	const tarpits, slots = 8, 2
	server := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	c, err := record.ServiceCID("development", "TarpitService")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	t.Cleanup(func() { close(held) })
	for range tarpits {
		h := p2ptest.NewHost(t)
		h.SetStreamHandler(registry.Protocol("development"), func(s network.Stream) {
			<-held // a tarpit: read nothing, answer nothing
			s.Reset()
		})
		f := newKadFlooder(t, testCtx(t), h, server.Host())
		self := kadpb.PeerInfosToPBPeers(h.Network(), []peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}})
		if err := f.send(&kadpb.Message{Type: kadpb.Message_ADD_PROVIDER, Key: c.Hash(), ProviderPeers: self}); err != nil {
			t.Fatalf("ADD_PROVIDER: %v", err)
		}
	}
	finder := dhttest.NewNode(t, "development", dht.ModeClient, func(cfg *dht.Config) {
		cfg.FetchConcurrency, cfg.FetchTimeout, cfg.WalkDialTimeout = slots, 500*time.Millisecond, 500*time.Millisecond
	})
	var mu sync.Mutex
	peak, started := 0, 0
	dht.ObserveFetches(finder, func(running int) {
		mu.Lock()
		defer mu.Unlock()
		peak, started = max(peak, running), started+1
	})
	p2ptest.Connect(t, finder.Host(), server.Host())
	eventually(t, "the finder's routing table has the server", func() bool { return finder.RoutingTableSize() >= 1 })
	eventually(t, "the server holds every tarpit's provider record", func() bool {
		ps, err := server.Kad().ProviderStore().GetProviders(context.Background(), c.Hash())
		return err == nil && len(ps) == tarpits
	})
	res, err := finder.FindAll(testCtx(t), "TarpitService", dht.FindOptions{DHTOnly: true, Timeout: 20 * time.Second})
	if err != nil || len(res) != 0 {
		t.Fatalf("find: %d results, %v; want none and no error", len(res), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if started < slots+1 || peak != slots {
		t.Fatalf("%d fetches started, at most %d at once; want more than %d started, never more than %d at once", started, peak, slots, slots)
	}
}
