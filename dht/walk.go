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
	early    map[peer.ID]bool // named peers asked while the walk dials them, lists in flight
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
	f.pending = walkState{dialing: map[peer.ID]bool{}, querying: map[peer.ID]bool{}, named: map[peer.ID]bool{},
		early: map[peer.ID]bool{}, end: endWalk}
	f.mu.Unlock()
	// The event channel closes only when its context ends, so the walk
	// gets its own.
	dialCtx := network.WithDialPeerTimeout(walkCtx, f.n.cfg.WalkDialTimeout)
	wctx, events := routing.RegisterForQueryEvents(dialCtx)
	f.wg.Go(func() {
		for ev := range events {
			f.walkEvent(ctx, dialCtx, ev)
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
//
// A named peer the walk must dial is asked as the dial starts, on
// dialCtx (the walk's, bounded by Config.WalkDialTimeout, ended with the
// walk): kad-dht's query waits for the new connection's identify
// exchange, one round trip, and the list does not
// (registry.Client.ListDialling), so its answer comes a round
// trip before the query's. Under a 20 ms RTT at 1,000 nodes, the two-hop
// finds of a walk that dials took 3.1-3.3 RTT where they took 2.1-2.3
// RTT when connected (BenchmarkLatency's slow-lookup lines).
func (f *search) walkEvent(ctx, dialCtx context.Context, ev *routing.QueryEvent) {
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
		delete(w.early, ev.ID) // connected: its list is one like any other
		w.querying[ev.ID] = true
	case routing.PeerResponse, routing.QueryError:
		delete(w.dialing, ev.ID)
		delete(w.early, ev.ID)
		delete(w.querying, ev.ID)
		for _, r := range ev.Responses {
			w.named[r.ID] = true
		}
	}
	named := w.named[ev.ID]
	f.settleLocked()
	f.mu.Unlock()
	switch {
	case ev.Type == routing.DialingPeer && named:
		f.askOn(ctx, dialCtx, ev.ID, SourceWalk, nil)
	case ev.Type == routing.SendingQuery && named:
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
// the registries, which every provider pushes to, did not know; the
// lists sent to them as they were dialled (walkState.early) wait on
// the same dials, and end with the walk. On the
// DHT path alone the walk runs to its end, each dial bounded by
// Config.WalkDialTimeout. f.mu must be held.
func (f *search) settleLocked() {
	w := &f.pending
	if w.end == nil || w.ended || f.dhtOnly || f.emitted == 0 || f.lists > len(w.early) || f.fetches > 0 ||
		len(w.querying) > 0 || len(w.dialing) == 0 {
		return
	}
	w.ended = true
	f.n.log.Debug("find settled; ending the walk", "service", f.c, "results", f.emitted, "pending_dials", len(w.dialing))
	w.end()
}
