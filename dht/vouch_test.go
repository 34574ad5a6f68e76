package dht_test

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// gatedPings replaces h's ping handler with one that answers nothing until
// release is called: every health check of h is held until then. It
// returns release and how many pings h answered.
func gatedPings(t *testing.T, h host.Host) (release func(), answered *atomic.Int64) {
	t.Helper()
	gate := make(chan struct{})
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	answered = new(atomic.Int64)
	h.SetStreamHandler(ping.ID, func(s network.Stream) {
		<-gate
		buf := make([]byte, ping.PingSize)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			answered.Add(1)
			if _, err := s.Write(buf); err != nil {
				s.Reset()
				return
			}
		}
	})
	return release, answered
}

// ownRecord signs a DatabaseService record of n's, naming n's addresses.
func ownRecord(t *testing.T, n *dht.Node, seq uint64) []byte {
	t.Helper()
	svc := recordtest.Valid(n.Host().ID(), time.Now())
	svc.Addrs, svc.Seq = addrStrings(n), seq
	return recordtest.SealRaw(t, svc, n.Host().Peerstore().PrivKey(n.Host().ID()))
}

// nextWatchMsg reads w's next message, failing the test on an error or if
// none comes within watchTimeout (w is then closed).
func nextWatchMsg(t *testing.T, w *registry.WatchStream, what string) registry.WatchMsg {
	t.Helper()
	timer := time.AfterFunc(watchTimeout, w.Close)
	defer timer.Stop()
	m, _, err := w.Next()
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return m
}

// upsertOf reports whether m announces a record of p.
func upsertOf(m registry.WatchMsg, p peer.ID) bool {
	if m.Type != registry.WatchUpsert {
		return false
	}
	svc, err := record.Validator{Network: "development"}.Open(m.Record)
	return err == nil && svc.Peer == p
}

// TestOwnPutServedAtOnce: a registry-protocol put a provider sends of its
// own record is a round trip on its connection, so it passes the
// provider's health check: the registry serves it and its watchers get the
// upsert while its pings are held (no check could have passed; with an
// Interval of an hour none is even due). The record of another provider,
// put by a third peer, stays pending, unlisted, until its (held) check is
// let through, and only then reaches the watcher.
func TestOwnPutServedAtOnce(t *testing.T) {
	ctx := testCtx(t)
	reg := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.Health = dht.Health{Interval: time.Hour, Timeout: 30 * time.Second}
	})
	own, other, third, finder := joined(t, nil, reg, dht.ModeClient), joined(t, nil, reg, dht.ModeClient),
		joined(t, nil, reg, dht.ModeClient), joined(t, nil, reg, dht.ModeClient)
	_, ownPings := gatedPings(t, own.Host())
	releaseOther, otherPings := gatedPings(t, other.Host())

	wh := p2ptest.NewHosts(t, 1)[0]
	p2ptest.Connect(t, wh, reg.Host())
	c, _ := record.ServiceCID("development", "DatabaseService")
	w, err := registry.OpenWatch(ctx, wh, registry.WatchProtocol("development"), reg.Host().ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if m := nextWatchMsg(t, w, "the empty snapshot"); m.Type != registry.WatchSynced {
		t.Fatalf("first watch message %+v, want synced", m)
	}

	if err := dht.Push(ctx, own, reg.Host().ID(), ownRecord(t, own, 1)); err != nil {
		t.Fatalf("own put: %v", err)
	}
	if m := nextWatchMsg(t, w, "the own put's upsert"); !upsertOf(m, own.Host().ID()) {
		t.Fatalf("after a provider's own put the watcher got %+v, want its upsert (no pending first)", m)
	}
	if st, _ := state(reg, own.Host().ID()); !st.Healthy || st.Pending {
		t.Fatalf("after its own put: %+v, want healthy", st)
	}
	if got := listed(t, finder, reg); len(got) != 1 || got[0] != own.Host().ID() {
		t.Fatalf("after its own put the registry lists %v, want %s", got, own.Host().ID())
	}
	if n := ownPings.Load(); n != 0 {
		t.Fatalf("the provider answered %d pings, want none: its put was the check", n)
	}

	otherEnv := ownRecord(t, other, 1)
	pushed := make(chan error, 1)
	go func() { pushed <- dht.Push(ctx, third, reg.Host().ID(), otherEnv) }()
	if m := nextWatchMsg(t, w, "the third party's put"); m.Type != registry.WatchPending || m.Peer != other.Host().ID().String() {
		t.Fatalf("after a third party's put the watcher got %+v, want pending %s", m, other.Host().ID())
	}
	if st, _ := state(reg, other.Host().ID()); st.Healthy || !st.Pending {
		t.Fatalf("a record put by a third party, check held: %+v, want pending", st)
	}
	if got := listed(t, finder, reg); len(got) != 1 {
		t.Fatalf("with the third party's record pending the registry lists %v, want only %s", got, own.Host().ID())
	}
	releaseOther()
	if m := nextWatchMsg(t, w, "the checked provider's upsert"); !upsertOf(m, other.Host().ID()) {
		t.Fatalf("after the check passed the watcher got %+v, want the upsert of %s", m, other.Host().ID())
	}
	if err := <-pushed; err != nil {
		t.Fatalf("third party's put: %v", err)
	}
	if otherPings.Load() == 0 {
		t.Fatal("the other provider was served without answering a ping")
	}
}
