package dht_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// walkLog records the query events of a node's find walks.
type walkLog struct {
	mu     sync.Mutex
	events []routing.QueryEvent
}

func (l *walkLog) add(ev routing.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// about returns the events about peer p.
func (l *walkLog) about(p peer.ID) []routing.QueryEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []routing.QueryEvent
	for _, ev := range l.events {
		if ev.ID == p {
			out = append(out, ev)
		}
	}
	return out
}

// TestFindDoesNotWaitForADeadPeer: a node that listened on QUIC and was
// killed stays in the registry's routing table, so a finder's DHT walk
// dials it, and a QUIC dial to a dead node waits out its whole timeout. A
// find whose registry answered ends while that dial is still pending: when
// Find's channel closes, the walk has dialled the dead node and seen no
// outcome of the dial (which only a timeout could give).
func TestFindDoesNotWaitForADeadPeer(t *testing.T) {
	ctx := testCtx(t)
	reg := dhttest.NewNodeOn(t, p2ptest.NewHost(t), "development", dht.ModeServer, nil)
	provider := joined(t, nil, reg, dht.ModeServer)
	if _, err := provider.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	cfg := p2ptest.Config()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	dead := dhttest.NewNodeOn(t, p2ptest.NewHostFrom(t, cfg), "development", dht.ModeServer, nil)
	p2ptest.Connect(t, dead.Host(), reg.Host())
	eventually(t, "the registry's routing table holding the QUIC node", func() bool { return reg.RoutingTableSize() == 2 })
	deadID := dead.Host().ID()
	dead.Close()
	dead.Host().Close()

	// The walk may end before it reaches the dead node (the answer was
	// complete already): then nothing is shown, so try again with a fresh
	// finder, a bounded number of times.
	const attempts = 5
	for range attempts {
		if findDialsDeadPeer(t, ctx, reg, provider.Host().ID(), deadID) {
			return
		}
	}
	t.Fatalf("in %d finds the walk never dialled the dead node; the test proves nothing", attempts)
}

// findDialsDeadPeer runs one find from a fresh client of reg, fails the
// test if it waited for a dial to deadID to fail (or deadID answered), and
// reports whether the walk dialled deadID at all.
func findDialsDeadPeer(t *testing.T, ctx context.Context, reg *dht.Node, provider, deadID peer.ID) bool {
	t.Helper()
	finder := dhttest.NewNodeOn(t, p2ptest.NewHost(t), "development", dht.ModeClient, func(c *dht.Config) {
		c.WalkDialTimeout = time.Hour // only the dial's own timeout could end it
	})
	var log walkLog
	dht.ObserveWalk(finder, log.add)
	p2ptest.Connect(t, finder.Host(), reg.Host())
	finder.AddRegistry(reg.Host().ID())

	got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if len(got) != 1 || got[0].Record.Peer != provider {
		t.Fatalf("Find: got %d results, want the provider's", len(got))
	}
	dialled := false
	for _, ev := range log.about(deadID) {
		switch {
		case ev.Type == routing.DialingPeer:
			dialled = true
		case ev.Type == routing.QueryError && !strings.Contains(ev.Extra, "context canceled"):
			t.Fatalf("the find waited for the dial to the dead node to fail: %s", ev.Extra)
		case ev.Type == routing.SendingQuery || ev.Type == routing.PeerResponse:
			t.Fatalf("the dead node answered the walk: %+v", ev)
		}
	}
	return dialled
}

// TestPublishNobodyTookIt: a record that every registry and DHT peer
// refuses (here as expired: their clocks run two hours ahead) is not
// published, and Publish says so; a TTL under a second is refused before
// anything is sent.
func TestPublishNobodyTookIt(t *testing.T) {
	ctx := testCtx(t)
	ahead := func(c *dht.Config) { c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } }
	reg := dhttest.NewNodeOn(t, p2ptest.NewHost(t), "development", dht.ModeServer, ahead)
	provider := joined(t, nil, reg, dht.ModeServer)
	_, err := provider.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour})
	if !errors.Is(err, dht.ErrNotPublished) {
		t.Fatalf("Publish to a registry that refuses it: got %v, want ErrNotPublished", err)
	}
	_, err = provider.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Millisecond})
	if !errors.Is(err, record.ErrBadTTL) {
		t.Fatalf("Publish with a 1ms TTL: got %v, want ErrBadTTL", err)
	}
}
