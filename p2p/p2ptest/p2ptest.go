// Package p2ptest builds real libp2p hosts on 127.0.0.1 for tests and
// benchmarks: TCP only, ephemeral identities, closed when the test ends.
package p2ptest

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/p2p"
)

// Config returns a host config for tests: loopback TCP on a free port and an
// ephemeral identity; connection limits suit networks of a few hundred hosts
// in one process (hosts × ConnHigh stays far below the descriptor limit).
func Config() p2p.Config {
	cfg := p2p.DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.ConnLow, cfg.ConnHigh = 40, 60
	return cfg
}

// NewHost starts a host built from Config and closes it when tb ends.
func NewHost(tb testing.TB) host.Host {
	tb.Helper()
	return NewHostFrom(tb, Config())
}

// NewHostFrom starts a host built from cfg and closes it when tb ends.
func NewHostFrom(tb testing.TB, cfg p2p.Config) host.Host {
	tb.Helper()
	h, err := p2p.NewHost(cfg)
	if err != nil {
		tb.Fatalf("p2ptest: new host: %v", err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// NewHosts starts n hosts.
func NewHosts(tb testing.TB, n int) []host.Host {
	tb.Helper()
	hs := make([]host.Host, n)
	for i := range hs {
		hs[i] = NewHost(tb)
	}
	return hs
}

// Connect connects a to b, failing tb after 10 seconds.
func Connect(tb testing.TB, a, b host.Host) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		tb.Fatalf("p2ptest: connect %s -> %s: %v", a.ID(), b.ID(), err)
	}
}

// AddrInfo returns h's peer ID and addresses.
func AddrInfo(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}
