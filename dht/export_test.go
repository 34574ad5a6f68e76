package dht

import (
	"context"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
)

// Push offers peer p one signed record over the registry protocol.
func Push(ctx context.Context, n *Node, p peer.ID, env []byte) error {
	return n.client.Push(ctx, p, env)
}

// List asks peer p for the records it holds for service c.
func List(ctx context.Context, n *Node, p peer.ID, c cid.Cid) ([][]byte, error) {
	return n.client.List(ctx, p, c, registry.MaxListLimit)
}

// ListDialling is List without waiting for a new connection's identify
// exchange, as a find's walk asks a peer it dials.
func ListDialling(ctx context.Context, n *Node, p peer.ID, c cid.Cid) ([][]byte, error) {
	return n.client.ListDialling(ctx, p, c, registry.MaxListLimit)
}

// Proven reports whether n's health checks saw p pass a check (its
// records are no longer expendable).
func Proven(n *Node, p peer.ID) bool {
	ok, _ := n.health.expendable(p)
	return !ok
}

// ObserveFetches calls fn with the number of provider fetches running
// each time one of the node's finds starts one. Set it before the first
// Find.
func ObserveFetches(n *Node, fn func(running int)) { n.fetchObserver = fn }

// ObserveWalk calls fn with every kad-dht query event of the node's finds'
// DHT walks, in order. Set it before the first Find.
func ObserveWalk(n *Node, fn func(routing.QueryEvent)) { n.walkObserver = fn }

// ObserveAsks calls fn each time one of the node's finds sends a request
// for records: a registry-protocol list (src registry, near, walk or
// provider) or a DHT value-store get (src dht). Set it before the first
// Find.
func ObserveAsks(n *Node, fn func(src Source)) { n.askObserver = fn }

// ObserveAnswers calls fn each time one of the node's finds gets the
// answer to a registry-protocol list (src registry, near, walk or
// provider) from peer p: the number of records, or -1 when it failed.
// Set it before the first Find.
func ObserveAnswers(n *Node, fn func(p peer.ID, src Source, records int)) { n.answerObserver = fn }

// Kad returns the node's kad-dht, for tests and benchmarks that compare
// netget with the raw DHT or write through it (the netget validator still
// runs on every put).
func (n *Node) Kad() *kaddht.IpfsDHT { return n.kad }

// SpreadTimeout bounds a publication's background work (spreadTimeout).
const SpreadTimeout = spreadTimeout

// Watchers returns how many watches n serves as a registry.
func Watchers(n *Node) int { return n.watchHub.watchers() }

// HoldLists makes n serve each registry-protocol list only once hold has
// returned (a slow registry); pushes are served as before.
func HoldLists(n *Node, hold func(c cid.Cid)) {
	h, err := registry.NewHandler(heldLists{holder{n}, hold}, registry.NewLimiter(n.cfg.RequestRate, n.cfg.RequestBurst), n.cfg.ListPage, n.log)
	if err != nil {
		panic(err) // the node's config was validated
	}
	n.host.SetStreamHandler(n.proto, h.HandleStream)
}

// heldLists is a registry.Holder whose lists wait for hold.
type heldLists struct {
	holder
	hold func(c cid.Cid)
}

func (h heldLists) List(c cid.Cid, limit int) [][]byte {
	h.hold(c)
	return h.holder.List(c, limit)
}

// Held returns the seq of p's record for c in n's store and whether it is
// a tombstone, if n holds one.
func Held(n *Node, c cid.Cid, p peer.ID) (seq uint64, withdrawn, ok bool) {
	return n.store.Seq(c, p)
}

// ObserveSync calls fn with every record sync brings n that is new there
// (forwarded or pulled), as it is stored. Set it before n has sync peers.
func ObserveSync(n *Node, fn func(env []byte)) { n.syncObserver = fn }

// Load verifies and stores envs in n's store as a write from nowhere (no
// source, nothing forwarded): a benchmark's way to fill a registry.
func Load(ctx context.Context, n *Node, envs [][]byte) error {
	for _, env := range envs {
		if _, _, err := n.accept(ctx, env, store.Source{}); err != nil {
			return err
		}
	}
	return nil
}

// ListHeld is what n serves to a registry-protocol list for service c:
// its store's list, without the stream.
func ListHeld(n *Node, c cid.Cid, limit int) [][]byte { return holder{n}.List(c, limit) }

// PageHeld is what n serves to a paged registry-protocol list for service
// c: its store's page after after, without the stream.
func PageHeld(n *Node, c cid.Cid, after peer.ID, limit int) ([][]byte, peer.ID) {
	return holder{n}.Page(c, after, limit, registry.PageBytes)
}

// Unverified returns how many records n loaded at start-up that are not
// verified yet.
func Unverified(n *Node) int { return n.store.Unverified() }

// Accept is n's write path for a record pushed to it, without the stream:
// verified, then stored (synced, on a persistent datastore).
func Accept(ctx context.Context, n *Node, env []byte) error {
	_, _, err := n.accept(ctx, env, store.Source{})
	return err
}

// TurnVerdicts bumps n's verdict epoch as a verdict turning does, so the
// next list of every service is computed afresh.
func TurnVerdicts(n *Node) { n.health.epoch.Add(1) }

// OnAccepted has fn told of each change to n's store (a record written, as
// a put is accepted, or leaving the index), just before n's watch hub is.
// Call it before n is used.
func OnAccepted(n *Node, fn func()) {
	n.store.OnChange(func(c cid.Cid, p peer.ID) {
		fn()
		n.watchHub.notify(c, p)
	})
}

// OnWatchWrite has fn told of each change message n writes to one of its
// watchers. Call it before any watcher subscribes.
func OnWatchWrite(n *Node, fn func()) { n.watchHub.wrote = fn }
