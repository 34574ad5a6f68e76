package dht

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// walkState is what a find's DHT walk has in flight, read from kad-dht's
// query events.
type walkState struct {
	dialing  map[peer.ID]bool // dials started, not yet connected or failed
	querying map[peer.ID]bool // queries sent, not yet answered or failed
	named    map[peer.ID]bool // peers an answer of the walk named (not its seeds)
	end      context.CancelFunc
	ended    bool
}

// walk runs the DHT provider walk: it asks every peer the walk queries, as
// it queries it, and fetches the record of every provider it names. It
// ends when kad-dht's walk ends, or earlier when the answer is complete
// (see settleLocked). Each dial the walk makes is bounded by
// Config.WalkDialTimeout.
func (f *search) walk(ctx context.Context) {
	walkCtx, endWalk := context.WithCancel(ctx)
	defer endWalk()
	f.mu.Lock()
	f.pending = walkState{dialing: map[peer.ID]bool{}, querying: map[peer.ID]bool{}, named: map[peer.ID]bool{}, end: endWalk}
	f.mu.Unlock()
	// The event channel closes only when its context ends, so the walk
	// gets its own.
	wctx, events := routing.RegisterForQueryEvents(network.WithDialPeerTimeout(walkCtx, f.n.cfg.WalkDialTimeout))
	f.wg.Go(func() {
		for ev := range events {
			f.walkEvent(ctx, ev)
		}
	})
	for ai := range f.n.kad.FindProvidersAsync(wctx, f.c, 0) {
		f.fetchLater(ctx, ai)
	}
	endWalk()
}

// walkEvent tracks one kad-dht query event and asks each peer the walk
// queries for its records, but for the walk's seeds (the routing table's
// peers nearest the service, which kad-dht queries first): the nearest
// of them were asked before the walk started (SourceNear), and asking
// the others too doubled the requests of the walk's first round for
// nothing the nearest did not hold; their answers name the providers
// (fetched) and the closer peers (asked).
func (f *search) walkEvent(ctx context.Context, ev *routing.QueryEvent) {
	if h := f.n.walkObserver; h != nil {
		h(*ev)
	}
	f.mu.Lock()
	w := &f.pending
	switch ev.Type {
	case routing.DialingPeer:
		w.dialing[ev.ID] = true
	case routing.SendingQuery:
		delete(w.dialing, ev.ID)
		w.querying[ev.ID] = true
	case routing.PeerResponse, routing.QueryError:
		delete(w.dialing, ev.ID)
		delete(w.querying, ev.ID)
		for _, r := range ev.Responses {
			w.named[r.ID] = true
		}
	}
	named := w.named[ev.ID]
	f.settleLocked()
	f.mu.Unlock()
	if ev.Type == routing.SendingQuery && named {
		f.ask(ctx, ev.ID, SourceWalk, nil)
	}
}

// fetchEnded marks one provider fetch done.
func (f *search) fetchEnded() {
	f.mu.Lock()
	f.fetches--
	f.settleLocked()
	f.mu.Unlock()
}

// settleLocked ends the walk once the answer is complete: the fast path
// was used and something was streamed, no list request or fetch is in
// flight, every peer the walk queried has answered, and all it still
// waits for is dials to peers this node is not connected to. Those are
// the peers that are probably gone (a node killed a minute ago stays in
// its neighbours' routing tables, and a QUIC dial to it hangs for the
// whole dial timeout); a live one would only lead the walk to providers
// the registries, which every provider pushes to, did not know. On the
// DHT path alone the walk runs to its end, each dial bounded by
// Config.WalkDialTimeout. f.mu must be held.
func (f *search) settleLocked() {
	w := &f.pending
	if w.end == nil || w.ended || f.dhtOnly || f.emitted == 0 || f.lists > 0 || f.fetches > 0 ||
		len(w.querying) > 0 || len(w.dialing) == 0 {
		return
	}
	w.ended = true
	f.n.log.Debug("find settled; ending the walk", "service", f.c, "results", f.emitted, "pending_dials", len(w.dialing))
	w.end()
}
