package dht_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// stallIdentify makes h answer no identify request from now on: a peer
// that connects to h learns nothing of h's protocols, and go-libp2p's
// host.NewStream to h waits for that exchange until its context ends. The
// held streams are reset when the test ends.
func stallIdentify(t *testing.T, h host.Host) {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before h closes: cleanups run last first
	h.SetStreamHandler(identify.ID, func(s network.Stream) {
		<-stop
		s.Reset()
	})
}

// TestListDoesNotWaitForIdentify: a list to a peer being dialled
// (ListDialling, what a find's walk sends) leaves with the connection, not
// after the connection's identify exchange (a round trip, which kad-dht's
// queries wait for): a peer whose identify never answers still answers,
// and the asker still knows none of its protocols when the answer is in.
func TestListDoesNotWaitForIdentify(t *testing.T) {
	ctx := testCtx(t)
	reg := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	prov := joined(t, nil, reg, dht.ModeServer)
	if _, err := prov.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	settle(t, prov)
	stallIdentify(t, prov.Host())
	asker := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	asker.Host().Peerstore().AddAddrs(prov.Host().ID(), prov.Host().Addrs(), peerstore.TempAddrTTL)
	c, err := record.ServiceCID("development", "DatabaseService")
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	envs, err := dht.ListDialling(lctx, asker, prov.Host().ID(), c)
	if err != nil {
		t.Fatalf("List to a peer whose identify never answers: %v", err)
	}
	if len(envs) != 1 {
		t.Fatalf("List returned %d records, want the provider's own 1", len(envs))
	}
	noProtocolsYet(t, asker.Host(), prov.Host())
}

// noProtocolsYet fails the test if a knows any protocol of b's: go-libp2p
// records them when identify answers and when a stream negotiated
// eagerly (after waiting for identify, up to its timeout) settles on one,
// so a request that went without waiting leaves none.
func noProtocolsYet(t *testing.T, a, b host.Host) {
	t.Helper()
	if protos, _ := a.Peerstore().GetProtocols(b.ID()); len(protos) != 0 {
		t.Fatalf("%s learnt %s's protocols %v: its requests waited for identify (or for identify's timeout) and negotiated", a.ID(), b.ID(), protos)
	}
}

// TestListUnsupported: a peer that does not speak the registry protocol
// answers the lazily proposed protocol with "na", and the request fails
// with ErrUnsupported instead of waiting or reading garbage.
func TestListUnsupported(t *testing.T) {
	ctx := testCtx(t)
	asker := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	plain := p2ptest.NewHost(t) // no netget protocol at all
	asker.Host().Peerstore().AddAddrs(plain.ID(), plain.Addrs(), peerstore.TempAddrTTL)
	c, err := record.ServiceCID("development", "DatabaseService")
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	envs, err := dht.ListDialling(lctx, asker, plain.ID(), c)
	if !errors.Is(err, registry.ErrUnsupported) {
		t.Fatalf("List to a host without the protocol: %d records, err %v; want %v", len(envs), err, registry.ErrUnsupported)
	}
}

// TestFindReachesAPeerBeforeIdentify: on the DHT path alone, a provider
// whose identify never answers (so kad-dht's own query to it never
// leaves) is still asked for its record, by the walk as it dials it,
// without waiting for identify.
func TestFindReachesAPeerBeforeIdentify(t *testing.T) {
	ctx := testCtx(t)
	reg := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	finder := joined(t, nil, reg, dht.ModeClient)
	prov := joined(t, nil, reg, dht.ModeServer)
	eventually(t, "the registry's routing table has the provider", func() bool { return reg.RoutingTableSize() >= 1 })
	if _, err := prov.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	settle(t, prov)
	stallIdentify(t, prov.Host())
	noProtocolsYet(t, finder.Host(), prov.Host()) // the finder has not met the provider
	r := firstResult(t, finder, "DatabaseService", dht.FindOptions{DHTOnly: true})
	if r.Source != dht.SourceWalk || r.Record.Peer != prov.Host().ID() {
		t.Fatalf("first result: %s by %q, want %s by %q", r.Record.Peer, r.Source, prov.Host().ID(), dht.SourceWalk)
	}
	noProtocolsYet(t, finder.Host(), prov.Host())
}
