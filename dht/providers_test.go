package dht_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"slices"
	"testing"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// kadFlooder is an attacker: a plain libp2p host, no DHT node, that speaks
// kad-dht's wire protocol on one stream to a victim.
type kadFlooder struct {
	h host.Host
	s network.Stream
	r *bufio.Reader
}

// kadProtocol is the development network's kad-dht protocol.
const kadProtocol = protocol.ID("/netget/development/kad/1.0.0")

func newKadFlooder(t testing.TB, ctx context.Context, h, victim host.Host) *kadFlooder {
	t.Helper()
	p2ptest.Connect(t, h, victim)
	s, err := h.NewStream(ctx, victim.ID(), kadProtocol)
	if err != nil {
		t.Fatalf("attacker stream: %v", err)
	}
	t.Cleanup(func() { s.Reset() })
	return &kadFlooder{h: h, s: s, r: bufio.NewReader(s)}
}

// send writes one varint-delimited kad message.
func (f *kadFlooder) send(m *kadpb.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = f.s.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

// flood sends n ADD_PROVIDER messages for random keys, naming itself as the
// provider (kad-dht drops any other), then waits until the victim has
// handled them all: it answers a GET_PROVIDERS sent after them on the same
// stream, and a stream's messages are handled in order.
func (f *kadFlooder) flood(t testing.TB, n int) {
	t.Helper()
	self := kadpb.PeerInfosToPBPeers(f.h.Network(), []peer.AddrInfo{{ID: f.h.ID(), Addrs: f.h.Addrs()}})
	key := make([]byte, 32)
	for i := range n {
		rand.Read(key)
		mh, _ := multihash.Sum(key, multihash.SHA2_256, -1)
		m := &kadpb.Message{Type: kadpb.Message_ADD_PROVIDER, Key: mh, ProviderPeers: self}
		if err := f.send(m); err != nil {
			t.Fatalf("ADD_PROVIDER %d: %v", i, err)
		}
	}
	mh, _ := multihash.Sum([]byte("sync"), multihash.SHA2_256, -1)
	if err := f.send(&kadpb.Message{Type: kadpb.Message_GET_PROVIDERS, Key: mh}); err != nil {
		t.Fatalf("GET_PROVIDERS: %v", err)
	}
	size, err := binary.ReadUvarint(f.r)
	if err == nil {
		_, err = io.CopyN(io.Discard, f.r, int64(size))
	}
	if err != nil {
		t.Fatalf("victim's answer after the flood: %v", err)
	}
}

// TestProviderFloodBounded floods a node with ADD_PROVIDER from attacker
// hosts, then checks that every attacker stays within its quota, the node
// within its budget, and that an honest provider is still stored and found.
func TestProviderFloodBounded(t *testing.T) {
	ctx := testCtx(t)
	const perPeer, budget, flood = 50, 120, 400 // 3 attackers: 1,200 messages
	victim := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.ProvidersPerPeer, c.MaxProviderRecords = perPeer, budget
		c.ProviderRate, c.ProviderBurst = 1e6, 1e6 // quotas here; rate below
	})
	var attackers []*kadFlooder
	for i := range 3 {
		a := newKadFlooder(t, ctx, p2ptest.NewHost(t), victim.Host())
		a.flood(t, flood)
		total, mine := victim.ProviderRecords(a.h.ID())
		if total > budget || mine > perPeer {
			t.Fatalf("after attacker %d: node holds %d (budget %d), attacker %d (quota %d)", i, total, budget, mine, perPeer)
		}
		if i == 0 && mine != perPeer {
			t.Fatalf("first attacker holds %d records, want its quota %d", mine, perPeer)
		}
		attackers = append(attackers, a)
	}

	honest := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	p2ptest.Connect(t, honest.Host(), victim.Host())
	if err := honest.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := honest.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := honest.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	attackers[0].flood(t, 300) // fills kad-dht's write buffer: it commits
	if total, mine := victim.ProviderRecords(honest.Host().ID()); mine != 1 || total > budget {
		t.Fatalf("honest provider holds %d records (want 1), node %d (budget %d)", mine, total, budget)
	}
	c, _ := record.ServiceCID("development", "DatabaseService")
	provs, err := victim.Kad().ProviderStore().GetProviders(ctx, c.Hash())
	if err != nil || !slices.ContainsFunc(provs, func(ai peer.AddrInfo) bool { return ai.ID == honest.Host().ID() }) {
		t.Fatalf("victim's providers of DatabaseService: %v, %v; want the honest provider", provs, err)
	}
	finder := dhttest.NewNode(t, "development", dht.ModeClient, func(c *dht.Config) { c.DisableFastPath = true })
	p2ptest.Connect(t, finder.Host(), victim.Host())
	if err := finder.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: 10 * time.Second})
	if err != nil || len(got) != 1 || got[0].Record.Peer != honest.Host().ID() {
		t.Fatalf("Find over the DHT path: %d results, %v; want the honest provider", len(got), err)
	}
}

// TestProviderRateLimited checks that a peer cannot store provider records
// faster than its bucket allows, whatever its quota.
func TestProviderRateLimited(t *testing.T) {
	ctx := testCtx(t)
	const burst = 20
	victim := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.ProviderRate, c.ProviderBurst = 0.001, burst
	})
	a := newKadFlooder(t, ctx, p2ptest.NewHost(t), victim.Host())
	a.flood(t, 600)
	if _, mine := victim.ProviderRecords(a.h.ID()); mine > burst || mine == 0 {
		t.Fatalf("attacker holds %d records, want 1..%d (its burst)", mine, burst)
	}
}

// TestProviderIndexSurvivesRestart checks that a restarted node counts the
// provider records on disk against their senders' quotas.
func TestProviderIndexSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	const perPeer = 30
	attacker := p2ptest.NewHost(t)
	start := func() (*dht.Node, func()) {
		store, err := dht.OpenDatastore(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg := dht.DefaultConfig("development")
		cfg.Datastore, cfg.ProvidersPerPeer = store, perPeer
		n, err := dht.New(p2ptest.NewHost(t), cfg)
		if err != nil {
			store.Close()
			t.Fatal(err)
		}
		return n, func() { n.Close(); n.Host().Close(); store.Close() }
	}
	first, stop := start()
	newKadFlooder(t, ctx, attacker, first.Host()).flood(t, 300)
	stop() // kad-dht commits its buffered writes
	second, stop := start()
	t.Cleanup(stop)
	if _, mine := second.ProviderRecords(attacker.ID()); mine != perPeer {
		t.Fatalf("after restart the attacker holds %d records, want %d", mine, perPeer)
	}
	newKadFlooder(t, ctx, attacker, second.Host()).flood(t, 300)
	if _, mine := second.ProviderRecords(attacker.ID()); mine != perPeer {
		t.Fatalf("attacker holds %d records after a second flood, want %d", mine, perPeer)
	}
}
