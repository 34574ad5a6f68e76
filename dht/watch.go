package dht

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
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
	// ReasonDeregistered: the registries deleted its record.
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

// watchEventBuffer is how many events a watch holds for a slow reader
// before it stops reading its registries (which then drop it, and it
// resubscribes with a fresh snapshot).
const watchEventBuffer = 64

// maxWatchStrikes is how many records a registry's watch may send that
// fail verification before the watcher resets the stream and resubscribes
// later: a hostile registry costs a bounded number of verifications.
const maxWatchStrikes = 16

// Watch streams the live provider set of service name: first an upsert
// for every provider its registries serve now (the snapshot), then one
// event per change, until ctx ends or the node closes, when the channel is
// closed. It merges the watch streams of every registry of this node
// (registry.WatchProtocol): each record is verified like any other
// (forged or foreign ones are dropped and counted), events are deduplicated
// by peer, and the highest seq wins. A provider is removed once no
// registry serves it any more (at once for a valid tombstone). When a
// registry's stream ends (the connection drops, the registry restarts or
// drops a slow watcher) the watch subscribes again, with backoff, and
// reconciles against the fresh snapshot: what vanished meanwhile is
// removed, nothing is reported twice. A node without registries runs a
// find on the DHT path every Config.WatchPollInterval instead. While a
// watch runs, Find answers for its service from the watched set at once
// (Source "watch"), before its network asks. A reader that falls
// watchEventBuffer events behind holds up the watch (its registries then
// drop it, and it catches up from a fresh snapshot).
func (n *Node) Watch(ctx context.Context, name string) (<-chan Event, error) {
	c, err := record.ServiceCID(n.cfg.Network, name)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	w := &watch{n: n, c: c, name: name, start: time.Now(), out: make(chan Event, watchEventBuffer),
		in: make(chan regMsg), peers: make(map[peer.ID]*watchPeer), snaps: make(map[peer.ID]map[peer.ID]bool),
		regs: make(map[peer.ID]context.CancelFunc)}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	n.watchMu.Lock()
	n.watches[w] = struct{}{}
	n.watchMu.Unlock()
	n.wg.Go(func() {
		defer close(w.out)
		defer stop()
		defer cancel()
		defer func() {
			n.watchMu.Lock()
			delete(n.watches, w)
			n.watchMu.Unlock()
		}()
		w.run(ctx)
	})
	return w.out, nil
}

// watch is one Node.Watch running.
type watch struct {
	n     *Node
	c     cid.Cid
	name  string
	start time.Time
	out   chan Event
	in    chan regMsg // from the per-registry readers to the merger
	wg    sync.WaitGroup

	// merger's own: registry -> its stream's cancel ("" is the DHT poller)
	regs map[peer.ID]context.CancelFunc

	mu     sync.Mutex                   // guards peers for Find (watched)
	peers  map[peer.ID]*watchPeer       // every provider heard of
	snaps  map[peer.ID]map[peer.ID]bool // registry -> providers its snapshot named, until synced
	synced bool                         // some registry's snapshot is complete
}

// watchPeer is what a watch knows of one provider.
type watchPeer struct {
	cur  *record.Service    // in the set with this record; nil: not in the set
	by   map[peer.ID]uint64 // registries serving it, with the seq each serves
	tomb uint64             // highest withdrawn seq seen
}

// regMsg is one verified message of one registry's stream.
type regMsg struct {
	reg    peer.ID
	kind   string // registry.Watch* or "begin" (a new stream) or "forget" (registry gone)
	peer   peer.ID
	reason string
	rec    *record.Service
}

const (
	msgBegin  = "begin"
	msgForget = "forget"
)

// run merges the registries' streams until ctx ends.
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
			for _, ev := range w.apply(m) {
				select {
				case w.out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// registriesOf returns the registries a watch uses: every registry of the
// node, connected or not (a registry restarting comes back), unless the
// fast path is off.
func (w *watch) registriesOf() []peer.ID {
	if w.n.cfg.DisableFastPath {
		return nil
	}
	return w.n.KnownRegistries()
}

// syncRegs starts a reader for each new registry, stops those of
// registries gone, and runs the DHT poller while there is none.
func (w *watch) syncRegs(ctx context.Context) {
	want := map[peer.ID]bool{}
	for _, p := range w.registriesOf() {
		want[p] = true
	}
	if len(want) == 0 {
		want[""] = true
	}
	for p, cancel := range w.regs {
		if !want[p] {
			cancel()
			delete(w.regs, p)
			go w.send(ctx, regMsg{reg: p, kind: msgForget})
		}
	}
	for p := range want {
		if _, ok := w.regs[p]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		w.regs[p] = cancel
		w.wg.Go(func() {
			if p == "" {
				w.poll(rctx)
			} else {
				w.follow(rctx, p)
			}
		})
	}
}

// send hands m to the merger unless ctx ends first.
func (w *watch) send(ctx context.Context, m regMsg) bool {
	select {
	case w.in <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// Backoff between watch subscriptions to one registry.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 5 * time.Second
)

// follow watches the service on registry reg, subscribing again with
// backoff whenever the stream ends, until ctx ends.
func (w *watch) follow(ctx context.Context, reg peer.ID) {
	backoff := watchRetryMin
	for ctx.Err() == nil {
		// Our own backoff paces the dials: the swarm's (5s and up, per
		// address) would keep a registry that restarted unreachable.
		dctx := network.WithForceDirectDial(network.WithDialPeerTimeout(ctx, w.n.cfg.WalkDialTimeout), "watch")
		ws, err := registry.OpenWatch(dctx, w.n.host, w.n.watchProto, reg, w.c)
		if err == nil {
			var synced bool
			synced, err = w.read(ctx, reg, ws)
			ws.Close()
			if synced {
				backoff = watchRetryMin
			}
		}
		if ctx.Err() != nil {
			return
		}
		w.n.log.Debug("watch stream ended; subscribing again", "registry", reg, "service", w.name, "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}

// read passes one stream's messages, verified, to the merger until it
// ends. It reports whether the snapshot completed.
func (w *watch) read(ctx context.Context, reg peer.ID, ws *registry.WatchStream) (synced bool, err error) {
	stop := context.AfterFunc(ctx, ws.Close)
	defer stop()
	if !w.send(ctx, regMsg{reg: reg, kind: msgBegin}) {
		return false, ctx.Err()
	}
	strikes := 0
	for {
		m, p, err := ws.Next()
		if err != nil {
			return synced, err
		}
		rm := regMsg{reg: reg, kind: m.Type, peer: p, reason: m.Reason}
		if len(m.Record) > 0 {
			s, err := w.n.validator.OpenForSum(w.c, sha256.Sum256(m.Record), m.Record)
			if err == nil && m.Type == registry.WatchRemove && (!s.Withdrawn || s.Peer != p) {
				err = fmt.Errorf("%w: a withdrawn remove of %s carries no tombstone of its own", record.ErrMalformed, p)
			}
			if err != nil {
				w.n.metrics.record(err)
				w.n.log.Info("watch: rejected record", "registry", reg, "service", w.name, "err", err)
				if strikes++; strikes >= maxWatchStrikes {
					return synced, fmt.Errorf("registry %s sent %d records that failed verification", reg, strikes)
				}
				continue
			}
			rm.rec, rm.peer = s, s.Peer
			if s.Withdrawn {
				rm.kind, rm.reason = registry.WatchRemove, ReasonWithdrawn
			}
		}
		if m.Type == registry.WatchSynced {
			synced = true
		}
		if !w.send(ctx, rm) {
			return synced, ctx.Err()
		}
	}
}

// poll runs a find on the DHT path every Config.WatchPollInterval, each a
// snapshot of its own, until ctx ends: the watch of a node without
// registries.
func (w *watch) poll(ctx context.Context) {
	interval := w.n.cfg.WatchPollInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	for {
		if !w.send(ctx, regMsg{kind: msgBegin}) {
			return
		}
		err := w.n.Find(ctx, w.name, FindOptions{DHTOnly: true, noWatch: true}, func(r Result) bool {
			return w.send(ctx, regMsg{kind: registry.WatchUpsert, peer: r.Record.Peer, rec: r.Record})
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, ErrFindTimeout) {
			w.send(ctx, regMsg{kind: registry.WatchSynced})
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// maxWatchedPeers bounds the providers one watch keeps track of, as a
// registry bounds one service's records.
const maxWatchedPeers = MaxRecordsPerService

// apply takes one registry message into the merged set and returns the
// events it causes: at most one per provider and change.
func (w *watch) apply(m regMsg) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	if snap := w.snaps[m.reg]; snap != nil && m.peer != "" {
		snap[m.peer] = true
	}
	switch m.kind {
	case msgBegin:
		w.snaps[m.reg] = make(map[peer.ID]bool)
	case registry.WatchUpsert:
		return w.upsertLocked(m.reg, m.rec)
	case registry.WatchRemove:
		if m.rec != nil {
			return w.withdrawnLocked(m.rec)
		}
		return w.removeLocked(m.reg, m.peer, m.reason)
	case registry.WatchSynced:
		return w.reconcileLocked(m.reg)
	case msgForget:
		delete(w.snaps, m.reg)
		var evs []Event
		for p, st := range w.peers {
			if _, ok := st.by[m.reg]; ok {
				evs = append(evs, w.removeLocked(m.reg, p, w.goneReason(st))...)
			}
		}
		return evs
	}
	return nil // pending: the registry holds it, undecided; keep what it said before
}

func (w *watch) upsertLocked(reg peer.ID, s *record.Service) []Event {
	st := w.peers[s.Peer]
	if st == nil {
		if len(w.peers) >= maxWatchedPeers {
			return nil
		}
		st = &watchPeer{by: make(map[peer.ID]uint64)}
		w.peers[s.Peer] = st
	}
	if s.Seq <= st.tomb {
		return nil // older than its withdrawal
	}
	st.by[reg] = s.Seq
	if st.cur != nil && s.Seq <= st.cur.Seq {
		return nil
	}
	st.cur = s
	return []Event{{Kind: EventUpsert, Peer: s.Peer, Result: Result{Record: s, Source: SourceWatch, Elapsed: time.Since(w.start)}}}
}

// withdrawnLocked applies a verified tombstone, whichever registry sent it.
func (w *watch) withdrawnLocked(t *record.Service) []Event {
	st := w.peers[t.Peer]
	if st == nil {
		if len(w.peers) >= maxWatchedPeers {
			return nil
		}
		st = &watchPeer{by: make(map[peer.ID]uint64)}
		w.peers[t.Peer] = st
	}
	st.tomb = max(st.tomb, t.Seq)
	for r, seq := range st.by {
		if seq <= st.tomb {
			delete(st.by, r)
		}
	}
	if st.cur == nil || st.cur.Seq > st.tomb {
		return nil
	}
	st.cur = nil
	return []Event{{Kind: EventRemove, Peer: t.Peer, Reason: ReasonWithdrawn}}
}

// removeLocked notes that reg no longer serves p, and removes p once no
// registry does.
func (w *watch) removeLocked(reg, p peer.ID, reason string) []Event {
	st := w.peers[p]
	if st == nil {
		return nil
	}
	delete(st.by, reg)
	if len(st.by) > 0 || st.cur == nil {
		if st.cur == nil && len(st.by) == 0 && st.tomb == 0 {
			delete(w.peers, p)
		}
		return nil
	}
	st.cur = nil
	if st.tomb == 0 {
		delete(w.peers, p)
	}
	return []Event{{Kind: EventRemove, Peer: p, Reason: reason}}
}

// reconcileLocked ends reg's snapshot: providers reg served before that
// its snapshot did not name are gone from it.
func (w *watch) reconcileLocked(reg peer.ID) []Event {
	snap := w.snaps[reg]
	delete(w.snaps, reg)
	w.synced = true
	var evs []Event
	for p, st := range w.peers {
		if _, ok := st.by[reg]; ok && !snap[p] {
			evs = append(evs, w.removeLocked(reg, p, w.goneReason(st))...)
		}
	}
	if reg != "" {
		if _, polled := w.regs[""]; !polled {
			for p, st := range w.peers { // left over from the DHT poller
				if _, ok := st.by[""]; ok {
					evs = append(evs, w.removeLocked("", p, w.goneReason(st))...)
				}
			}
		}
	}
	return evs
}

// goneReason is why a provider that vanished from a registry's view is
// gone: its record expired, or the registry deleted it.
func (w *watch) goneReason(st *watchPeer) string {
	if st.cur != nil && !w.n.now().Before(st.cur.ExpiresAt) {
		return ReasonExpired
	}
	return ReasonDeregistered
}

// watched returns the records of c's providers in the set of a synced
// watch of this node, or nil when none watches c.
func (n *Node) watched(c cid.Cid) []*record.Service {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	for w := range n.watches {
		if !w.c.Equals(c) {
			continue
		}
		w.mu.Lock()
		if !w.synced {
			w.mu.Unlock()
			continue
		}
		out := make([]*record.Service, 0, len(w.peers))
		now := n.now()
		for _, st := range w.peers {
			if st.cur != nil && now.Before(st.cur.ExpiresAt) {
				out = append(out, st.cur)
			}
		}
		w.mu.Unlock()
		return out
	}
	return nil
}

// offerWatched streams the providers in the set of a watch of this node
// at once, as Source "watch": verified when they arrived, and live.
func (f *search) offerWatched(ctx context.Context) {
	for _, s := range f.n.watched(f.c) {
		first, last, ok := f.claim(s)
		if !ok {
			continue
		}
		select {
		case f.out <- Result{Record: s, Source: SourceWatch, Elapsed: time.Since(f.start)}:
			f.n.metrics.result(SourceWatch, time.Since(f.start), first)
			if last {
				f.cancel()
				return
			}
		case <-ctx.Done():
			f.mu.Lock()
			f.state(s.Peer).done = false
			f.emitted--
			f.mu.Unlock()
			return
		}
	}
}
