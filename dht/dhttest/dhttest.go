// Package dhttest builds real netget networks on 127.0.0.1 for tests and
// benchmarks: registries in DHT server mode, nodes that join through them,
// all torn down when the test ends.
package dhttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

// Network is a set of nodes on one netget network.
type Network struct {
	Registries []*dht.Node
	Nodes      []*dht.Node
}

// Options shape a Network.
type Options struct {
	// Network is the netget network name (default "development").
	Network string
	// Registries and Nodes are how many of each to start.
	Registries, Nodes int
	// Configure, if set, adjusts each node's config before it starts.
	Configure func(cfg *dht.Config)
	// RefreshConcurrency bounds how many nodes refresh their routing tables
	// at once after joining (default 16): big networks on two cores.
	RefreshConcurrency int
}

// NewNode starts one DHT node on a fresh loopback host.
func NewNode(tb testing.TB, network string, mode dht.Mode, configure func(*dht.Config)) *dht.Node {
	tb.Helper()
	return NewNodeOn(tb, p2ptest.NewHost(tb), network, mode, configure)
}

// NewNodeOn starts one DHT node on h, closed when tb ends.
func NewNodeOn(tb testing.TB, h host.Host, network string, mode dht.Mode, configure func(*dht.Config)) *dht.Node {
	tb.Helper()
	cfg := dht.DefaultConfig(network)
	cfg.Mode = mode
	if configure != nil {
		configure(&cfg)
	}
	n, err := dht.New(h, cfg)
	if err != nil {
		tb.Fatalf("dhttest: new node: %v", err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// New starts a network: registries first, then nodes that each connect to
// every registry and use them for the fast path; it returns once every node has a non-empty routing table
// and has refreshed it.
func New(tb testing.TB, o Options) *Network {
	tb.Helper()
	if o.Network == "" {
		o.Network = "development"
	}
	net := &Network{}
	// Registries keep a connection to every node, as real ones would.
	regHost := p2ptest.Config()
	regHost.ConnLow, regHost.ConnHigh = o.Nodes+o.Registries+10, o.Nodes+o.Registries+20
	for range o.Registries {
		h := p2ptest.NewHostFrom(tb, regHost)
		net.Registries = append(net.Registries, NewNodeOn(tb, h, o.Network, dht.ModeServer, o.Configure))
	}
	for range o.Nodes {
		n := NewNode(tb, o.Network, dht.ModeServer, o.Configure)
		for _, r := range net.Registries {
			p2ptest.Connect(tb, n.Host(), r.Host())
			n.AddRegistry(r.Host().ID())
		}
		net.Nodes = append(net.Nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := net.All()
	for _, n := range all {
		if err := n.Ready(ctx); err != nil {
			tb.Fatalf("dhttest: node %s never joined: %v", n.Host().ID(), err)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(o.RefreshConcurrency, 16))
	if o.RefreshConcurrency > 0 {
		sem = make(chan struct{}, o.RefreshConcurrency)
	}
	for _, n := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = n.Refresh(ctx) // best effort: a partial table still routes
		}()
	}
	wg.Wait()
	return net
}

// All returns registries then nodes.
func (n *Network) All() []*dht.Node {
	return append(append([]*dht.Node{}, n.Registries...), n.Nodes...)
}
