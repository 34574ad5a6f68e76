package dht

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/record"
)

// EventKind says what an Event reports.
type EventKind string

const (
	// EventUpsert: a provider joined the set, or its record changed.
	EventUpsert EventKind = "upsert"
	// EventRemove: a provider left the set.
	EventRemove EventKind = "remove"
)

// Reasons an EventRemove gives.
const (
	// ReasonWithdrawn: the provider published a signed tombstone.
	ReasonWithdrawn = registry.ReasonWithdrawn
	// ReasonExpired: its record expired.
	ReasonExpired = registry.ReasonExpired
	// ReasonUnhealthy: the registries' health checks failed.
	ReasonUnhealthy = registry.ReasonUnhealthy
	// ReasonDeregistered: the registries deleted its record, or (on the
	// DHT path) it is no longer found.
	ReasonDeregistered = registry.ReasonDeregistered
)

// SourceWatch: the record came from a watch (Node.Watch), pushed by a
// registry, or held in a watching node's live set (answered from memory).
const SourceWatch Source = "watch"

// Event is one change to the live provider set of a watched service.
type Event struct {
	Kind EventKind
	Peer peer.ID
	// Reason says why of a remove: "withdrawn", "expired", "unhealthy"
	// or "deregistered".
	Reason string
	// Result is, for an upsert, the verified record, as Find yields it.
	Result Result
}

// watchEventBuffer is the buffer of a Watch's channel.
const watchEventBuffer = 64

// Watch streams the live provider set of service name: first an upsert
// for every provider its registries serve now (the snapshot), then one
// event per change, until ctx ends or the node closes, when the channel is
// closed.
//
// The node runs one watch per service, however many callers watch it: it
// merges the watch streams of every registry of the node
// (registry.WatchProtocol), verifying each record like any other (forged
// or foreign ones are dropped and counted), keeps per provider the highest
// seq, and removes a provider once no registry serves it any more (at once
// for a valid tombstone). When a registry's stream ends (the connection
// drops, the registry restarts or drops a slow watcher) it subscribes again
// with backoff and reconciles against the fresh snapshot: what vanished
// meanwhile is removed, nothing is reported twice. A node without
// registries runs a find on the DHT path every Config.WatchPollInterval
// instead. While a watch runs, Find answers for its service from the
// watched set at once (Source "watch"), before its network asks.
//
// Each caller has its own channel and never holds up another: a reader
// that falls behind gets, when it reads again, each provider's latest
// state (changes in between are coalesced, never queued without bound).
func (n *Node) Watch(ctx context.Context, name string) (<-chan Event, error) {
	c, err := record.ServiceCID(n.cfg.Network, name)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	sub := &watchSub{out: make(chan Event, watchEventBuffer), kick: make(chan struct{}, 1),
		dirty: make(map[peer.ID]bool), sent: make(map[peer.ID]uint64), start: time.Now()}
	w := n.joinWatch(c, name, sub)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	n.wg.Go(func() {
		defer close(sub.out)
		defer stop()
		defer cancel()
		defer n.leaveWatch(w, sub)
		sub.deliver(ctx, w)
	})
	return sub.out, nil
}

// watch is the node's one watch of a service, shared by its callers.
type watch struct {
	n      *Node
	c      cid.Cid
	name   string
	cancel context.CancelFunc
	in     chan regMsg // from the per-registry readers to the merger
	wg     sync.WaitGroup
	regs   map[peer.ID]context.CancelFunc // the merger's: registry -> its reader ("" is the DHT poller)

	mu     sync.Mutex
	subs   map[*watchSub]struct{}
	peers  map[peer.ID]*watchPeer       // every provider heard of
	snaps  map[peer.ID]map[peer.ID]bool // registry -> providers its snapshot named, until synced
	synced bool                         // some registry's snapshot is complete
}

// watchPeer is what a watch knows of one provider.
type watchPeer struct {
	cur    *record.Service    // in the set with this record; nil: not in the set
	by     map[peer.ID]uint64 // registries serving it, with the seq each serves
	tomb   uint64             // highest withdrawn seq seen
	reason string             // why it left the set, while cur is nil
}

// joinWatch adds sub to the node's watch of c, starting the watch if none
// runs.
func (n *Node) joinWatch(c cid.Cid, name string, sub *watchSub) *watch {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	w := n.watches[c]
	if w == nil {
		ctx, cancel := context.WithCancel(n.ctx)
		w = &watch{n: n, c: c, name: name, cancel: cancel, in: make(chan regMsg),
			regs: make(map[peer.ID]context.CancelFunc), subs: make(map[*watchSub]struct{}),
			peers: make(map[peer.ID]*watchPeer), snaps: make(map[peer.ID]map[peer.ID]bool)}
		n.watches[c] = w
		n.wg.Go(func() { w.run(ctx) })
	}
	w.mu.Lock()
	w.subs[sub] = struct{}{}
	for p, st := range w.peers { // its snapshot: the set as it stands
		if st.cur != nil {
			sub.dirty[p] = true
		}
	}
	w.mu.Unlock()
	sub.poke()
	return w
}

// leaveWatch removes sub, and stops the watch when it was the last.
func (n *Node) leaveWatch(w *watch, sub *watchSub) {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	w.mu.Lock()
	delete(w.subs, sub)
	last := len(w.subs) == 0
	w.mu.Unlock()
	if last {
		delete(n.watches, w.c)
		w.cancel()
	}
}

// changedLocked marks providers ps changed for every caller. w.mu must be
// held.
func (w *watch) changedLocked(ps []peer.ID) {
	if len(ps) == 0 {
		return
	}
	for sub := range w.subs {
		for _, p := range ps {
			sub.dirty[p] = true
		}
		sub.poke()
	}
}

// watchSub is one caller of Watch: the providers whose state changed since
// it was last told (dirty, at most one entry per provider), and what it
// was told.
type watchSub struct {
	out   chan Event
	kick  chan struct{} // cap 1: dirty is not empty
	start time.Time
	dirty map[peer.ID]bool   // guarded by the watch's mu
	sent  map[peer.ID]uint64 // the deliverer's own: seq of the record last sent per provider
}

func (s *watchSub) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// deliver tells the caller of each change, the latest state of each
// dirty provider at the time, until ctx ends.
func (s *watchSub) deliver(ctx context.Context, w *watch) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		for _, ev := range s.pending(w) {
			select {
			case s.out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Kind == EventUpsert {
				s.sent[ev.Peer] = ev.Result.Record.Seq
			}
		}
	}
}

// pending takes the dirty providers and returns the events that bring
// the caller up to date with them.
func (s *watchSub) pending(w *watch) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var evs []Event
	for p := range s.dirty {
		delete(s.dirty, p)
		st := w.peers[p]
		seq, told := s.sent[p]
		switch {
		case st != nil && st.cur != nil:
			if !told || seq != st.cur.Seq {
				evs = append(evs, Event{Kind: EventUpsert, Peer: p,
					Result: Result{Record: st.cur, Source: SourceWatch, Elapsed: time.Since(s.start)}})
			}
		case told:
			delete(s.sent, p)
			reason := ReasonDeregistered
			if st != nil && st.reason != "" {
				reason = st.reason
			}
			evs = append(evs, Event{Kind: EventRemove, Peer: p, Reason: reason})
		}
	}
	return evs
}

// run starts a reader per registry and merges what they read until ctx
// ends (the last caller left, or the node closes).
func (w *watch) run(ctx context.Context) {
	defer func() {
		for _, cancel := range w.regs {
			cancel()
		}
		w.wg.Wait()
	}()
	w.syncRegs(ctx)
	t := time.NewTicker(time.Second) // the node's registry list, read locally
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.syncRegs(ctx)
		case m := <-w.in:
			w.mu.Lock()
			w.changedLocked(w.apply(m))
			w.mu.Unlock()
		}
	}
}
