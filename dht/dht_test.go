package dht_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kadrecord "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func addrStrings(n *dht.Node) []string {
	var out []string
	for _, a := range n.Host().Addrs() {
		out = append(out, a.String())
	}
	return out
}

func TestProvideFindWithdraw(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 2, Nodes: 10})
	provider := net.Nodes[0]
	meta := map[string]string{"region": "eu-west", "engine": "postgres", "version": "15.4"}
	if _, err := provider.Publish(ctx, dht.Spec{Name: "DatabaseService", Meta: meta}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, finder := range []*dht.Node{net.Nodes[3], net.Nodes[6], net.Nodes[9]} {
		got, err := finder.FindAll(ctx, "databaseservice", dht.FindOptions{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("Find from %s: %v", finder.Host().ID(), err)
		}
		if len(got) != 1 {
			t.Fatalf("Find from %s: got %d results, want 1", finder.Host().ID(), len(got))
		}
		r := got[0].Record
		if r.Peer != provider.Host().ID() || r.Name != "DatabaseService" || !maps.Equal(r.Meta, meta) {
			t.Fatalf("Find: got %s %s %v, want %s DatabaseService %v", r.Peer, r.Name, r.Meta, provider.Host().ID(), meta)
		}
		if !slices.Equal(r.Addrs, addrStrings(provider)) {
			t.Fatalf("Find addrs: got %v, want %v", r.Addrs, addrStrings(provider))
		}
	}

	tomb, err := provider.Withdraw(ctx, "DatabaseService")
	if err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	if !tomb.Withdrawn {
		t.Fatalf("Withdraw returned a live record: %+v", tomb)
	}
	assertNone := func(finder *dht.Node, why string) {
		t.Helper()
		got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("Find %s: %v", why, err)
		}
		if len(got) != 0 {
			t.Fatalf("Find %s: got %d results (%+v), want none", why, len(got), got[0].Record)
		}
	}
	assertNone(net.Nodes[3], "after withdraw, provider online")
	// With the provider gone, the tombstone in the DHT value store still wins.
	provider.Close()
	provider.Host().Close()
	assertNone(net.Nodes[6], "after withdraw, provider offline")
}

func TestNetworkIsolation(t *testing.T) {
	ctx := testCtx(t)
	dev := dhttest.New(t, dhttest.Options{Network: "development", Registries: 1, Nodes: 3})
	prod := dhttest.New(t, dhttest.Options{Network: "production", Registries: 1, Nodes: 3})
	// Wire the networks together at the libp2p level: only the DHT
	// protocol IDs and the records keep them apart.
	p2ptest.Connect(t, dev.Nodes[0].Host(), prod.Registries[0].Host())
	p2ptest.Connect(t, dev.Registries[0].Host(), prod.Nodes[0].Host())

	if _, err := prod.Nodes[1].Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatalf("Publish on production: %v", err)
	}
	got, err := prod.Nodes[2].FindAll(ctx, "DatabaseService", dht.FindOptions{})
	if err != nil || len(got) != 1 {
		t.Fatalf("production find: got %d results, %v; want 1", len(got), err)
	}
	for _, n := range dev.All() {
		for _, p := range n.Kad().RoutingTable().ListPeers() {
			if p == prod.Registries[0].Host().ID() || p == prod.Nodes[0].Host().ID() {
				t.Fatalf("development node %s has production peer %s in its routing table", n.Host().ID(), p)
			}
		}
	}
	got, err = dev.Nodes[0].FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: 3 * time.Second})
	if err != nil || len(got) != 0 {
		t.Fatalf("development find: got %d results, %v; want none", len(got), err)
	}

	// A production record injected into a development node is refused.
	prodRec, err := prod.Nodes[1].Publish(ctx, dht.Spec{Name: "CacheService"})
	if err != nil {
		t.Fatal(err)
	}
	env := sealAs(t, prod.Nodes[1], prodRec)
	if _, err := dev.Nodes[1].Put(ctx, env); !errors.Is(err, record.ErrWrongNetwork) {
		t.Fatalf("inject into development: got %v, want %v", err, record.ErrWrongNetwork)
	}
	if c := dev.Nodes[1].Rejections()[record.ErrWrongNetwork]; c == 0 {
		t.Fatal("wrong-network rejection not counted")
	}
}

// sealAs re-seals s with n's key, as n did when it published s.
func sealAs(t *testing.T, n *dht.Node, s *record.Service) []byte {
	t.Helper()
	env, err := record.Seal(s, n.Host().Peerstore().PrivKey(n.Host().ID()))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func messenger(t *testing.T, from *dht.Node) *kadpb.ProtocolMessenger {
	t.Helper()
	pm, err := kadpb.NewProtocolMessenger(from.Kad().MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func TestBadRecordsRefusedOnWrite(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2})
	writer, target := net.Nodes[0], net.Registries[0]
	key := writer.Host().Peerstore().PrivKey(writer.Host().ID())
	dhtKey := recordtest.Key(t, "development", recordtest.Service, writer.Host().ID())
	pm := messenger(t, writer)
	for _, tc := range recordtest.Bad(t, key, time.Now()) {
		t.Run(tc.Name, func(t *testing.T) {
			// Local write through kad-dht.
			if err := writer.Kad().PutValue(ctx, dhtKey, tc.Data); !errors.Is(err, tc.Want) {
				t.Fatalf("local PutValue: got %v, want %v", err, tc.Want)
			}
			// Local write through netget's Put, which has no key to bind
			// to: a valid record of another peer or service is fine to relay.
			keyBinding := tc.Want == record.ErrPeerMismatch || tc.Want == record.ErrWrongCID
			if _, err := writer.Put(ctx, tc.Data); !keyBinding && !errors.Is(err, tc.Want) {
				t.Fatalf("Put: got %v, want %v", err, tc.Want)
			}
			// Remote write over the DHT protocol.
			before := target.Rejections()[tc.Want]
			err := pm.PutValue(ctx, target.Host().ID(), kadrecord.MakePutRecord(dhtKey, tc.Data))
			if err == nil {
				t.Fatal("remote PUT_VALUE accepted")
			}
			if after := target.Rejections()[tc.Want]; after <= before {
				t.Fatalf("remote rejection %v not counted: %d -> %d", tc.Want, before, after)
			}
			rec, _, err := pm.GetValue(ctx, target.Host().ID(), dhtKey)
			if err == nil && rec != nil {
				t.Fatalf("remote stored the bad record: %x", rec.GetValue()[:16])
			}
		})
	}
}

// serveRecords makes n answer every registry-protocol request with envs,
// hand-framed: a uvarint length and {"records":[base64…]}.
func serveRecords(n *dht.Node, envs ...[]byte) {
	n.Host().SetStreamHandler(registry.Protocol(n.Network()), func(s network.Stream) {
		defer s.Close()
		body, _ := json.Marshal(map[string]any{"records": envs})
		buf := binary.AppendUvarint(nil, uint64(len(body)))
		s.Write(append(buf, body...))
	})
}

func TestBadRecordsRefusedOnRead(t *testing.T) {
	cases := recordtest.Bad(t, mustKey(t), time.Now()) // for the names and wants
	net := dhttest.New(t, dhttest.Options{Registries: 2, Nodes: len(cases) + 2})
	ctx := testCtx(t) // after the network is up: 19 nodes take a while under -race
	finder, good := net.Nodes[0], net.Nodes[1]
	if _, err := good.Publish(ctx, dht.Spec{Name: recordtest.Service}); err != nil {
		t.Fatal(err)
	}
	c, _ := record.ServiceCID("development", recordtest.Service)
	for i, m := range net.Nodes[2:] {
		bad := recordtest.Bad(t, m.Host().Peerstore().PrivKey(m.Host().ID()), time.Now())[i]
		serveRecords(m, bad.Data)
		if err := m.Kad().Provide(ctx, c, true); err != nil {
			t.Fatalf("%s: announce: %v", bad.Name, err)
		}
	}
	got, err := finder.FindAll(ctx, recordtest.Service, dht.FindOptions{Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// One bad node relays a valid record of another peer: it verifies, so
	// it may be returned (the record, not the relay, is what is trusted).
	// Nothing a bad node signed for itself may come back.
	var goodFound bool
	for _, r := range got {
		goodFound = goodFound || r.Record.Peer == good.Host().ID()
		for _, m := range net.Nodes[2:] {
			if r.Record.Peer == m.Host().ID() {
				t.Fatalf("Find returned bad node %s's record: %+v", m.Host().ID(), r.Record)
			}
		}
	}
	if !goodFound {
		t.Fatalf("Find: got %d results without the good provider %s", len(got), good.Host().ID())
	}
	rej := finder.Rejections()
	for _, tc := range cases {
		if tc.Want == record.ErrPeerMismatch {
			continue // a key-binding check: covered on write and in record's tests
		}
		if rej[tc.Want] == 0 {
			t.Errorf("%s: no %v rejection counted on read (counts %v)", tc.Name, tc.Want, rej)
		}
	}
}

func mustKey(t *testing.T) crypto.PrivKey {
	k, _ := recordtest.NewKey(t)
	return k
}

func TestOlderSeqRefused(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 1})
	p, reg := net.Nodes[0], net.Registries[0]
	cur, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", Meta: map[string]string{"v": "new"}})
	if err != nil {
		t.Fatal(err)
	}
	old := *cur
	old.Seq, old.Meta = cur.Seq-1, map[string]string{"v": "old"}
	env := sealAs(t, p, &old)
	if _, err := p.Put(ctx, env); !errors.Is(err, record.ErrOlderSeq) {
		t.Fatalf("Put older: got %v, want %v", err, record.ErrOlderSeq)
	}
	if c := p.Rejections()[record.ErrOlderSeq]; c == 0 {
		t.Fatal("older-seq rejection not counted")
	}
	pm := messenger(t, p)
	key := record.Key(mustCID(t), p.Host().ID())
	// The value-store copy is put in the background: wait until it landed.
	eventually(t, "registry holds the published record", func() bool {
		rec, _, err := pm.GetValue(ctx, reg.Host().ID(), key)
		return err == nil && rec != nil
	})
	if err := pm.PutValue(ctx, reg.Host().ID(), kadrecord.MakePutRecord(key, env)); err == nil {
		t.Fatal("registry accepted an older record over PUT_VALUE")
	}
	rec, _, err := pm.GetValue(ctx, reg.Host().ID(), key)
	if err != nil || rec == nil {
		t.Fatalf("registry lost the newer record: %v", err)
	}
	held, err := record.Validator{Network: "development"}.OpenKey(key, rec.GetValue())
	if err != nil || held.Seq != cur.Seq {
		t.Fatalf("registry holds seq %d (%v), want %d", held.Seq, err, cur.Seq)
	}
}

func mustCID(t *testing.T) cid.Cid {
	c, err := record.ServiceCID("development", "DatabaseService")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFindNotReady(t *testing.T) {
	lonely := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	start := time.Now()
	err := lonely.Find(context.Background(), "DatabaseService", dht.FindOptions{Timeout: 300 * time.Millisecond},
		func(dht.Result) bool { return true })
	if !errors.Is(err, dht.ErrNotReady) {
		t.Fatalf("Find with no peers: got %v, want %v", err, dht.ErrNotReady)
	}
	if _, err := lonely.Publish(ctxTimeout(t, 300*time.Millisecond), dht.Spec{Name: "DatabaseService"}); !errors.Is(err, dht.ErrNotReady) {
		t.Fatalf("Publish with no peers: got %v, want %v (after %s)", err, dht.ErrNotReady, time.Since(start))
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestProvideRepublishes(t *testing.T) {
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2})
	ctx, cancel := context.WithCancel(testCtx(t))
	seqs := make(chan uint64, 8)
	done := make(chan error, 1)
	go func() {
		done <- net.Nodes[0].Provide(ctx, dht.Spec{Name: "DatabaseService", TTL: 2 * time.Second},
			func(s *record.Service, err error) {
				if err == nil {
					select {
					case seqs <- s.Seq:
					default:
					}
				}
			})
	}()
	var got []uint64
	for len(got) < 3 {
		select {
		case s := <-seqs:
			got = append(got, s)
		case <-time.After(15 * time.Second):
			t.Fatalf("republish: got seqs %v, want 3 publishes", got)
		}
	}
	if !slices.IsSorted(got) || got[0] == got[2] {
		t.Fatalf("seqs not increasing: %v", got)
	}
	res, err := net.Nodes[1].FindAll(ctx, "DatabaseService", dht.FindOptions{})
	if err != nil || len(res) != 1 || res[0].Record.Seq < got[1] {
		t.Fatalf("find after republish: %v %v", res, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Provide returned %v after cancel, want nil", err)
	}
}

func TestFindLimit(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 4})
	for _, n := range net.Nodes[:3] {
		if _, err := n.Publish(ctx, dht.Spec{Name: "WebApp"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := net.Nodes[3].FindAll(ctx, "WebApp", dht.FindOptions{})
	if err != nil || len(all) != 3 {
		t.Fatalf("find all: got %d, %v; want 3", len(all), err)
	}
	seen := map[peer.ID]bool{}
	for _, r := range all {
		if seen[r.Record.Peer] {
			t.Fatalf("duplicate result for %s", r.Record.Peer)
		}
		seen[r.Record.Peer] = true
	}
	one, err := net.Nodes[3].FindAll(ctx, "WebApp", dht.FindOptions{Limit: 1})
	if err != nil || len(one) != 1 {
		t.Fatalf("find limit 1: got %d, %v; want 1", len(one), err)
	}
}

// eventually polls cond until it holds, failing t after 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

// TestFindReturnsLatestRecord: a finder that holds an older copy of a
// provider's record (or its tombstone) still gets the provider's latest
// record, which the registries have.
func TestFindReturnsLatestRecord(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2})
	prov, finder := net.Nodes[0], net.Nodes[1]
	publish := func(region string) {
		t.Helper()
		if _, err := prov.Publish(ctx, dht.Spec{Name: "DatabaseService", Meta: map[string]string{"region": region}}); err != nil {
			t.Fatal(err)
		}
		settle(t, prov)
	}
	find := func() string {
		t.Helper()
		got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{})
		if err != nil || len(got) != 1 {
			t.Fatalf("find: %d results, %v; want 1", len(got), err)
		}
		return got[0].Record.Meta["region"]
	}
	publish("eu-west")
	if got := find(); got != "eu-west" {
		t.Fatalf("first find: region %q, want eu-west", got)
	}
	publish("us-east") // the finder's own copy is now stale
	if got := find(); got != "us-east" {
		t.Fatalf("after a re-publish: region %q, want us-east", got)
	}
	if _, err := prov.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	publish("ap-south") // the finder may hold the tombstone; the live record is newer
	if got := find(); got != "ap-south" {
		t.Fatalf("after withdraw and re-publish: region %q, want ap-south", got)
	}
}
