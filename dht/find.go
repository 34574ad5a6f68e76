package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// Source says which path brought a result.
type Source string

const (
	// SourceRegistry: held by one of this node's registries, asked directly
	// (the fast path).
	SourceRegistry Source = "registry"
	// SourceNear: held by one of the connected DHT servers nearest the
	// service, asked before the walk (providers give their records to the
	// peers closest to it).
	SourceNear Source = "near"
	// SourceWalk: held by a peer the DHT provider walk queried (the peers
	// closest to the service, which providers give their records to).
	SourceWalk Source = "walk"
	// SourceProvider: fetched from the provider itself over the registry protocol.
	SourceProvider Source = "provider"
	// SourceDHT: fetched from the DHT value store.
	SourceDHT Source = "dht"
	// SourceLocal: held by this node (its own, or given to it), streamed
	// before anything is asked: no round trip.
	SourceLocal Source = "local"
)

// Result is one verified provider of a service.
type Result struct {
	// Record is the provider's verified, unexpired, not-withdrawn record.
	Record *record.Service
	// Source is the path the record came by.
	Source Source
	// Elapsed is the time from the start of the Find to this result.
	Elapsed time.Duration
}

// FindOptions bounds a Find.
type FindOptions struct {
	// Limit stops the search after this many results; 0 means no limit.
	Limit int
	// Timeout bounds the whole search; 0 means Config.FindTimeout.
	Timeout time.Duration
	// DHTOnly skips the fast path for this find: no registry is asked
	// directly (benchmarks, comparing paths). Config.DisableFastPath does
	// the same for every find and provide of a node.
	DHTOnly bool

	noWatch bool // skip the node's watched sets (a watch's own DHT poll)
}

// Find looks up the providers of service name and calls yield with each
// verified record as soon as it is verified, at most once per peer, one
// call at a time on the caller's goroutine. Find returns when the search
// has ended: the DHT walk finished, Limit was reached, yield returned
// false, the timeout passed or ctx ended. It returns nil when the search
// ended by itself, by Limit, by yield or by ctx; an error wrapping
// ErrFindTimeout (and context.DeadlineExceeded) when its timeout ended it
// first, after whatever was yielded in time; and another error when the
// search could not start (ErrNotReady, ErrClosed, a bad name). This is
// the one streaming contract of a find, which bridge.Finder shares: the
// limit and the timeout are applied here and nowhere else. A slow yield
// holds up this search's results, never its asks or another search.
//
// Records come by several paths, in this order, and each is verified
// whatever its path: this node's own store, streamed before anything is
// asked (no round trip; a find whose Limit these fill asks nothing); the
// node's connected registries, asked directly (the fast path, one round
// trip); the connected DHT servers nearest the service, which providers
// give their records to; every peer the provider walk queries, asked over
// the registry protocol on the connection the walk opens; and, for a
// provider whose record none of those held, the provider itself, then the
// DHT value store. The nearest peers' asks start after the registries'
// answers or Config.WalkHedge, and the walk 5 ms after them at most. Per
// peer, the highest seq seen wins; a valid tombstone means the provider
// withdrew and it is not returned. A result already yielded is not taken
// back by a later tombstone.
func (n *Node) Find(ctx context.Context, name string, opts FindOptions, yield func(Result) bool) error {
	c, err := record.ServiceCID(n.cfg.Network, name)
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = n.cfg.FindTimeout
	}
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	if err := n.Ready(ctx); err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	f := &search{n: n, c: c, limit: opts.Limit, dhtOnly: opts.DHTOnly || n.cfg.DisableFastPath, noWatch: opts.noWatch, start: time.Now(), cancel: cancel,
		out: make(chan Result), peers: make(map[peer.ID]*peerState), asked: make(map[peer.ID]bool),
		offered: make(map[[32]byte]bool), fetchSlots: make(chan struct{}, n.cfg.FetchConcurrency)}
	f.changed.L = &f.mu
	timedOut := false
	n.wg.Go(func() {
		defer close(f.out)
		f.run(ctx)
		timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		f.n.metrics.find(f.emitted, nil)
	})
	for r := range f.out {
		if !yield(r) {
			cancel()
			break
		}
	}
	for range f.out { // the search's goroutines end once ctx has
	}
	if timedOut {
		return fmt.Errorf("find %s: %w after %s (%w)", name, ErrFindTimeout, timeout, context.DeadlineExceeded)
	}
	return nil
}

// FindAll runs Find and collects its results. A timeout is not an error
// here: FindAll returns what was found in time.
func (n *Node) FindAll(ctx context.Context, name string, opts FindOptions) ([]Result, error) {
	var out []Result
	err := n.Find(ctx, name, opts, func(r Result) bool {
		out = append(out, r)
		return true
	})
	if errors.Is(err, ErrFindTimeout) {
		err = nil
	}
	return out, err
}

// search is one Find in flight.
type search struct {
	n       *Node
	c       cid.Cid
	limit   int
	dhtOnly bool
	noWatch bool
	start   time.Time
	cancel  context.CancelFunc
	out     chan Result
	wg      sync.WaitGroup // list and fetch goroutines

	mu         sync.Mutex
	peers      map[peer.ID]*peerState // providers heard of, by any path
	asked      map[peer.ID]bool       // peers sent a list request
	offered    map[[32]byte]bool      // envelopes already verified (or refused)
	emitted    int
	lists      int           // list requests in flight
	walkLists  int           // of which to peers the walk queries
	fetches    int           // provider / value-store fetches in flight
	fetchSlots chan struct{} // one per fetch running (Config.FetchConcurrency)
	changed    sync.Cond     // on mu: broadcast when a list ends or a record verifies
	pending    walkState     // what the DHT walk has in flight
}

// peerState is what a search knows about one provider.
type peerState struct {
	seq      uint64 // highest verified seq
	verified bool   // a verified record (live or tombstone) arrived
	fetching bool   // a provider / value-store fetch started
	done     bool   // streamed: nothing more to do
}

func (f *search) run(ctx context.Context) {
	if !f.noWatch {
		f.offerWatched(ctx) // a watch of this node has the live set: zero round trips
	}
	// An answer in hand needs no round trip: what this node holds streams
	// first, and the network is asked only for what it leaves to find.
	held := f.held(ctx)
	var regs sync.WaitGroup
	if !f.dhtOnly && !f.full() {
		for _, p := range f.n.Registries() {
			f.ask(ctx, p, SourceRegistry, &regs)
		}
	}
	for _, r := range held {
		f.send(ctx, r)
	}
	if ctx.Err() == nil {
		f.hedge(ctx, &regs, f.n.hedge())
	}
	if ctx.Err() != nil {
		f.wg.Wait()
		return // what was held, or the registries, gave all that was asked for
	}
	// Providers give their records to the peers closest to the service:
	// the connected ones nearest it usually hold it, and asking them
	// costs one round trip, no dial and no walk. The walk follows them
	// after nearHeadStart at most: when they hold nothing, its first
	// round has named the closer peers by the time their answer is in,
	// and those are one round trip away instead of two (see walkEvent for
	// what it asks).
	var near sync.WaitGroup
	for _, p := range f.nearest(nearAsks) {
		f.ask(ctx, p, SourceNear, &near)
	}
	waitFor(ctx, &near, nearHeadStart)
	if ctx.Err() != nil {
		f.wg.Wait()
		return
	}
	f.walk(ctx)
	f.wg.Wait()
}

// nearHeadStart is how long the nearest peers' asks run before the DHT
// walk starts beside them, unless all have answered sooner. Where they
// answer within it (loopback, a LAN) the walk starts only if they held
// nothing, and a find they answer sends them three requests and nothing
// else; where a round trip is longer, the walk starts almost with them,
// and a find they cannot answer loses no round trip waiting for them.
// Waiting out their whole round trip made that round trip plus a walk
// two deep the DHT path's slowest finds under a 100 ms RTT
// (BenchmarkLatency's hop histogram, README). Dropping it where round
// trips are longer (the walk at once) measured worse at 1,000 nodes under
// a 20 ms RTT: the near peers' answers met the walk's first round on the
// CPU (p50 1.04× raw against 0.96-0.97× with it) for 3.6 more requests a
// find; its cost to a find the walk answers, a quarter of a round trip at
// 20 ms, is less than the round trip the walk's lists save by not
// waiting for identify (walkEvent).
const nearHeadStart = 5 * time.Millisecond

// held verifies and claims the records for the service that this node
// already holds in its own store (its own, and those given to it), before
// anything is asked: they stream at once as SourceLocal, with no round
// trip. A tombstone held closes its peer. A held copy is as fresh as the
// last publish that reached this node; a newer record of the same peer
// found later is not streamed again (one result per peer).
func (f *search) held(ctx context.Context) []found {
	var out []found
	for _, env := range f.n.store.List(ctx, f.c, f.n.now(), store.ListOpts{Limit: MaxRecordsPerService, Tombstones: true}) {
		if r, ok := f.take(env, SourceLocal); ok {
			out = append(out, r)
		}
	}
	return out
}

// full reports whether the search has claimed Limit results.
func (f *search) full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limit > 0 && f.emitted >= f.limit
}

// hedge holds the DHT path of a find back until the registries asked
// have all answered, for at most h (Node.hedge): their first result
// needs one round trip, and the next step started at the same moment would
// only compete with it; a slow or silent peer delays the next step by the
// hedge at most.
func (f *search) hedge(ctx context.Context, asked *sync.WaitGroup, h time.Duration) {
	if h > 0 {
		waitFor(ctx, asked, h)
	}
}

// nearAsks is how many of the connected DHT servers nearest a service a
// find asks for its records before the DHT walk starts.
const nearAsks = 3

// nearest returns up to k of the peers in the routing table that this node
// is connected to, nearest the service in the DHT's key space first. The
// node's registries are left out: the fast path asked them already, and on
// the DHT path alone (FindOptions.DHTOnly, Config.DisableFastPath) they
// must not answer, since they hold every record wherever they sit in the
// key space.
func (f *search) nearest(k int) []peer.ID {
	rt := f.n.kad.RoutingTable()
	skip := map[peer.ID]bool{}
	for _, p := range f.n.Registries() {
		skip[p] = true
	}
	var out []peer.ID
	for _, p := range rt.NearestPeers(kb.ConvertKey(string(f.c.Hash())), rt.Size()) {
		if len(out) == k {
			break
		}
		if !skip[p] && f.n.host.Network().Connectedness(p) == network.Connected {
			out = append(out, p)
		}
	}
	return out
}

// maxWalkLists bounds the list requests a find has in flight to peers its
// DHT walk queries: kad-dht's own concurrency (alpha), so a find asks a
// round of the walk (those an answer named; the seeds are not asked, see
// walkEvent), whichever of them answers first wins, and later rounds are
// asked as earlier lists end. (Fewer, 3, cut traffic but
// lost the fastest responder: the DHT path got slower in the benchmark.)
const maxWalkLists = 10

// ask sends peer p a list request for the service, once per search, and
// offers what it returns as coming from src. A walk peer is skipped while
// maxWalkLists are in flight. done, if set, is marked when
// the answer has been offered.
func (f *search) ask(ctx context.Context, p peer.ID, src Source, done *sync.WaitGroup) {
	f.askOn(ctx, ctx, p, src, done)
}

// askOn is ask with the request sent on reqCtx and its records offered on
// ctx: a list to a peer the walk is dialling runs on the walk's context
// (walkEvent). Such a list is marked early (walkState.early) while the
// dial lasts, and does not wait for the new connection's identify
// exchange (registry.Client.ListDialling).
func (f *search) askOn(ctx, reqCtx context.Context, p peer.ID, src Source, done *sync.WaitGroup) {
	f.mu.Lock()
	if f.asked[p] || p == f.n.host.ID() || (src == SourceWalk && f.walkLists >= maxWalkLists) {
		f.mu.Unlock()
		return
	}
	f.asked[p] = true
	f.lists++
	if src == SourceWalk {
		f.walkLists++
	}
	early := src == SourceWalk && f.pending.dialing[p]
	if early {
		f.pending.early[p] = true
	}
	f.mu.Unlock()
	list := f.n.client.List
	if early {
		list = f.n.client.ListDialling // not waiting for identify
	}
	if done != nil {
		done.Add(1)
	}
	f.observeAsk(src)
	f.wg.Go(func() {
		defer f.listEnded(p, src)
		if done != nil {
			defer done.Done()
		}
		lctx, cancel := context.WithTimeout(reqCtx, f.n.cfg.FetchTimeout)
		defer cancel()
		t0 := time.Now()
		envs, err := list(lctx, p, f.c, registry.MaxListLimit)
		f.observeAnswer(p, src, envs, err)
		if err != nil {
			f.n.log.Debug("list failed", "peer", p, "source", src, "err", err)
			return
		}
		if src == SourceRegistry { // not a DHT peer's: a slow one would stretch every hedge
			f.n.rtt.observe(time.Since(t0))
		}
		for _, env := range envs {
			f.offer(ctx, env, src)
		}
	})
}

// observeAsk tells the test seam, if set, that a request for records is
// being sent on path src.
func (f *search) observeAsk(src Source) {
	if h := f.n.askObserver; h != nil {
		h(src)
	}
}

// observeAnswer tells the test seam, if set, that peer p, asked on path
// src, answered with envs (or failed with err).
func (f *search) observeAnswer(p peer.ID, src Source, envs [][]byte, err error) {
	if h := f.n.answerObserver; h != nil {
		n := len(envs)
		if err != nil {
			n = -1
		}
		h(p, src, n)
	}
}

// fetchLater starts fetching provider ai's record from ai itself (then the
// value store) unless a record for ai has arrived by another path.
func (f *search) fetchLater(ctx context.Context, ai peer.AddrInfo) {
	f.mu.Lock()
	st := f.state(ai.ID)
	if st.verified || st.fetching || st.done {
		f.mu.Unlock()
		return
	}
	st.fetching = true
	f.fetches++
	f.mu.Unlock()
	select { // the walk waits for a slot: fetches are bounded, however many providers are named
	case f.fetchSlots <- struct{}{}:
	case <-ctx.Done():
		f.fetchEnded()
		return
	}
	if len(ai.Addrs) > 0 {
		f.n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer f.fetchEnded()
		defer func() { <-f.fetchSlots }()
		if h := f.n.fetchObserver; h != nil {
			h(len(f.fetchSlots))
		}
		f.fetch(ctx, ai.ID)
	}()
}

// listEnded marks one list request, to p, done, after its records were
// offered.
func (f *search) listEnded(p peer.ID, src Source) {
	f.mu.Lock()
	f.lists--
	delete(f.pending.early, p)
	if src == SourceWalk {
		f.walkLists--
	}
	f.changed.Broadcast()
	f.settleLocked()
	f.mu.Unlock()
}

// awaitLists waits until p's record has arrived or no list request is in
// flight: the peer that named p as a provider holds p's record too, and its
// answer is usually on the way, so dialling p would only compete with it.
// It reports whether p's record is still missing.
func (f *search) awaitLists(ctx context.Context, p peer.ID) bool {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.changed.Broadcast()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.state(p).verified && f.lists > 0 && ctx.Err() == nil {
		f.changed.Wait()
	}
	return !f.state(p).verified && ctx.Err() == nil
}

// fetch asks provider p for its record, then the DHT value store, unless
// a list request in flight brings it first.
func (f *search) fetch(ctx context.Context, p peer.ID) {
	n := f.n
	fctx, cancel := context.WithTimeout(ctx, n.cfg.FetchTimeout)
	defer cancel()
	fctx = network.WithDialPeerTimeout(fctx, n.cfg.WalkDialTimeout)
	if !f.awaitLists(fctx, p) {
		return
	}
	f.observeAsk(SourceProvider)
	envs, err := n.client.List(fctx, p, f.c, registry.MaxListLimit)
	f.observeAnswer(p, SourceProvider, envs, err)
	if err != nil {
		n.log.Debug("provider fetch failed; trying the DHT", "provider", p, "err", err)
	}
	for _, env := range envs {
		f.offer(ctx, env, SourceProvider)
	}
	if f.known(p) {
		return
	}
	f.observeAsk(SourceDHT)
	env, err := n.kad.GetValue(fctx, record.Key(f.c, p))
	if err != nil {
		n.log.Debug("no record in the DHT", "provider", p, "err", err)
		return
	}
	f.offer(ctx, env, SourceDHT)
}

// known reports whether a verified record for p has arrived.
func (f *search) known(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state(p).verified
}

// state returns p's state, creating it. f.mu must be held.
func (f *search) state(p peer.ID) *peerState {
	st := f.peers[p]
	if st == nil {
		st = &peerState{}
		f.peers[p] = st
	}
	return st
}
