package dht_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// TestAllowListRefusesOthers: a node with an allow-list refuses an
// unlisted provider's record on put (locally and over the registry
// protocol), and a finder with one drops it on read, although an open
// registry serves it.
func TestAllowListRefusesOthers(t *testing.T) {
	ctx := testCtx(t)
	honestKey, honest := recordtest.NewKey(t)
	otherKey, other := recordtest.NewKey(t)
	seal := func(key crypto.PrivKey, id peer.ID) []byte {
		return recordtest.SealRaw(t, recordtest.Valid(id, time.Now()), key)
	}
	honestEnv, otherEnv := seal(honestKey, honest), seal(otherKey, other)
	list, err := record.ParseAllowList([]string{recordtest.Service + "=" + honest.String()})
	if err != nil {
		t.Fatal(err)
	}
	closed := func(c *dht.Config) { c.Allow = list }

	registry := dhttest.NewNode(t, "development", dht.ModeServer, closed)
	if _, err := registry.Put(ctx, otherEnv); !errors.Is(err, record.ErrNotAllowed) {
		t.Fatalf("put of an unlisted provider's record: got %v, want %v", err, record.ErrNotAllowed)
	}
	pusher := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, pusher.Host(), registry.Host())
	if err := dht.Push(ctx, pusher, registry.Host().ID(), honestEnv); err != nil {
		t.Fatalf("registry-protocol put of a listed provider's record: %v", err)
	}
	if err := dht.Push(ctx, pusher, registry.Host().ID(), otherEnv); err == nil {
		t.Fatal("registry-protocol put of an unlisted provider's record succeeded")
	}
	if got := registry.Rejections()[record.ErrNotAllowed]; got != 2 {
		t.Fatalf("registry counted %d refusals as not allowed, want 2", got)
	}

	open := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	p2ptest.Connect(t, pusher.Host(), open.Host())
	for _, env := range [][]byte{honestEnv, otherEnv} {
		if err := dht.Push(ctx, pusher, open.Host().ID(), env); err != nil {
			t.Fatalf("put on an open registry: %v", err)
		}
	}
	finder := dhttest.NewNode(t, "development", dht.ModeClient, closed)
	p2ptest.Connect(t, finder.Host(), open.Host())
	finder.AddRegistry(open.Host().ID())
	got, err := finder.FindAll(ctx, recordtest.Service, dht.FindOptions{Timeout: 5 * time.Second})
	if err != nil || len(got) != 1 || got[0].Record.Peer != honest {
		t.Fatalf("closed finder: %d results, %v; want only the listed provider %s", len(got), err, honest)
	}
	if finder.Rejections()[record.ErrNotAllowed] == 0 {
		t.Fatal("the finder did not count the unlisted record it dropped")
	}
}
