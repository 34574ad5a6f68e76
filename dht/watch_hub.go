package dht

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/dht/registry"
)

// WatchLimits bound the watches a node serves (as a registry).
type WatchLimits struct {
	// PerPeer is how many watches one remote peer may hold at once
	// (default 16); one more is dropped at once with ErrWatcherQuota.
	PerPeer int
	// Max is how many watches the node serves in all (default 4096); one
	// more is dropped at once with ErrTooManyWatchers.
	Max int
	// Queue is how many changes may wait for one watcher (default 256).
	// A watcher whose queue is full is dropped ("slow watcher") and may
	// watch again with a fresh snapshot: a registry's memory never grows
	// with a watcher that does not read.
	Queue int
}

// DefaultWatchLimits returns the defaults documented on WatchLimits.
func DefaultWatchLimits() WatchLimits { return WatchLimits{PerPeer: 16, Max: 4096, Queue: 256} }

func (l WatchLimits) withDefaults() WatchLimits {
	d := DefaultWatchLimits()
	if l.PerPeer == 0 {
		l.PerPeer = d.PerPeer
	}
	if l.Max == 0 {
		l.Max = d.Max
	}
	if l.Queue == 0 {
		l.Queue = d.Queue
	}
	return l
}

// watchHub is a node's side of the watch protocol as a registry: it
// learns of every change to the records of watched services from one hook
// (the store's changed, plus the health monitor's verdicts and an expiry
// timer; no polling), works out what each change means to a watcher (the
// provider is served, withdrawn, unhealthy, pending or gone) and hands one
// encoded message per change to every watcher of the service, each through
// a bounded queue: a watcher whose queue is full is dropped ("slow
// watcher"), so watchers never grow the node's memory beyond
// Config.WatchQueue messages each, and those messages are shared.
type watchHub struct {
	n      *Node
	limits WatchLimits
	active atomic.Int64 // watchers subscribed
	drops  *prometheus.CounterVec

	pmu     sync.Mutex // a leaf lock: notify runs under the store's lock
	pending map[change]struct{}
	watched map[cid.Cid]int // watchers per service, for notify's filter
	kick    chan struct{}   // cap 1: pending is not empty

	mu      sync.Mutex
	feeds   map[cid.Cid]*feed
	perPeer map[peer.ID]int
	total   int
	next    time.Time // earliest expiry of a served record in any feed
	expiry  *time.Timer

	// wrote, if set (by a benchmark, before any watcher subscribes), is
	// told of each change message written to a watcher: the registry's
	// fan-out time, first write to last.
	wrote func()
}

// change is one provider's record of one service that changed.
type change struct {
	c cid.Cid
	p peer.ID
}

// feed is one watched service: what its watchers have been told of each
// provider, and the watchers.
type feed struct {
	state map[peer.ID]watchState
	subs  map[*watcher]struct{}
}

// watchKind is what a watcher was told of a provider.
type watchKind uint8

const (
	watchAbsent watchKind = iota
	watchServed
	watchWithdrawn
	watchUnhealthy
	watchPending
)

type watchState struct {
	kind    watchKind
	seq     uint64
	expires time.Time
	sum     [32]byte // of the envelope last sent (served, withdrawn)
}

// watcher is one watch stream being served.
type watcher struct {
	remote peer.ID
	c      cid.Cid
	quit   chan struct{} // closed when the hub drops it; reason says why
	reason string

	// The queue of messages waiting for the writer: at most limit
	// (Config.Watch.Queue), a shared pointer each. It is a slice grown on
	// demand and let go when drained, not a channel of limit slots: an
	// idle watcher, the usual one, holds no queue at all.
	mu    sync.Mutex
	queue []*watchOut
	limit int
	ready chan struct{} // cap 1: the queue may be non-empty
}

// push queues out for w's writer, or reports false if limit messages wait
// already (a slow watcher).
func (w *watcher) push(out *watchOut) bool {
	w.mu.Lock()
	if len(w.queue) >= w.limit {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, out)
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest queued message, if any, keeping ready set while
// more wait.
func (w *watcher) pop() (*watchOut, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil, false
	}
	out := w.queue[0]
	w.queue[0] = nil
	if w.queue = w.queue[1:]; len(w.queue) == 0 {
		w.queue = nil
	} else {
		select {
		case w.ready <- struct{}{}:
		default:
		}
	}
	return out, true
}

// watchOut is one queued message: encoded once for all watchers, or the
// snapshot, whose envelopes the watcher's own writer reads.
type watchOut struct {
	enc  []byte
	snap map[peer.ID]watchState
}

func newWatchHub(n *Node, limits WatchLimits) *watchHub {
	h := &watchHub{n: n, limits: limits.withDefaults(), pending: make(map[change]struct{}), watched: make(map[cid.Cid]int),
		kick: make(chan struct{}, 1), feeds: make(map[cid.Cid]*feed), perPeer: make(map[peer.ID]int),
		expiry: time.NewTimer(time.Hour),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netget_watch_drops_total",
			Help: "Watches this node refused or dropped, by reason (peer_quota, full, slow)."}, []string{"reason"})}
	h.expiry.Stop()
	return h
}

// notify is the store's change hook: it notes that p's record for c
// changed, if anyone watches c. It never blocks.
func (h *watchHub) notify(c cid.Cid, p peer.ID) {
	h.pmu.Lock()
	defer h.pmu.Unlock()
	if h.watched[c] == 0 {
		return
	}
	h.pending[change{c, p}] = struct{}{}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// peerChanged notes that p's health verdict may have changed, for every
// service the store holds a record of p for.
func (h *watchHub) peerChanged(p peer.ID) {
	if h.active.Load() == 0 {
		return
	}
	for _, c := range h.n.store.ServicesOf(p) {
		h.notify(c, p)
	}
}

// run applies the noted changes and expiries until ctx ends, then drops
// every watcher.
func (h *watchHub) run(ctx context.Context) {
	defer h.expiry.Stop()
	for {
		expired := false
		select {
		case <-ctx.Done():
			h.mu.Lock()
			for _, f := range h.feeds {
				for w := range f.subs {
					h.dropLocked(w, "registry closing")
				}
			}
			h.mu.Unlock()
			return
		case <-h.kick:
		case <-h.expiry.C:
			expired = true
		}
		h.flush(ctx)
		if expired {
			now := h.n.now()
			h.mu.Lock()
			h.next = time.Time{}
			for c, f := range h.feeds {
				for p, st := range f.state {
					if st.kind == watchServed && !now.Before(st.expires) {
						h.refreshLocked(ctx, c, p, now)
					}
				}
			}
			h.rearmLocked(now)
			h.mu.Unlock()
		}
	}
}

// flush applies the changes noted so far. run calls it when kicked; a
// registry-protocol put calls it too, in its own goroutine, as soon as
// its record is stored, so that the change is queued for every watcher
// without waiting for run to be scheduled (one goroutine hand-off fewer).
// Either may take any batch: each change is applied as the store's state
// now, compared with what watchers were told, so batches applied in any
// order send each state once.
func (h *watchHub) flush(ctx context.Context) {
	h.pmu.Lock()
	if len(h.pending) == 0 {
		h.pmu.Unlock()
		return
	}
	batch := h.pending
	h.pending = make(map[change]struct{})
	h.pmu.Unlock()
	now := h.n.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for v := range batch {
		h.refreshLocked(ctx, v.c, v.p, now)
	}
}

// status is what the store says of p's record for c now.
func (h *watchHub) status(c cid.Cid, p peer.ID, now time.Time) watchState {
	e, ok := h.n.store.Entry(c, p)
	st := watchState{seq: e.Seq, expires: e.Expires, sum: e.Sum}
	switch {
	case !ok || !now.Before(e.Expires):
		st.kind = watchAbsent
	case e.Withdrawn:
		st.kind = watchWithdrawn
	case !h.n.health.serves(p):
		ps := ProviderState{Peer: p}
		h.n.health.state(&ps)
		st.kind = watchUnhealthy
		if ps.Pending {
			st.kind = watchPending
		}
	default:
		st.kind = watchServed
	}
	return st
}

// refreshLocked compares what c's watchers were told of p with the store
// and, if it changed, tells them. h.mu must be held.
func (h *watchHub) refreshLocked(ctx context.Context, c cid.Cid, p peer.ID, now time.Time) {
	f := h.feeds[c]
	if f == nil {
		return
	}
	prev := f.state[p]
	cur := h.status(c, p, now)
	if prev.kind == cur.kind && (cur.kind == watchAbsent || prev.sum == cur.sum) {
		return
	}
	msg := registry.WatchMsg{Type: registry.WatchRemove, Peer: p.String()}
	switch cur.kind {
	case watchServed, watchWithdrawn:
		env, ok := h.n.store.Envelope(ctx, c, p)
		if !ok || sha256.Sum256(env) != cur.sum {
			return // being written or deleted: its own notice follows
		}
		msg.Record = env
		if cur.kind == watchServed {
			msg = registry.WatchMsg{Type: registry.WatchUpsert, Record: env}
			h.armLocked(cur.expires)
		} else {
			msg.Reason = registry.ReasonWithdrawn
		}
	case watchUnhealthy:
		msg.Reason = registry.ReasonUnhealthy
	case watchPending:
		msg = registry.WatchMsg{Type: registry.WatchPending, Peer: p.String()}
	case watchAbsent:
		msg.Reason = registry.ReasonDeregistered
		if !prev.expires.IsZero() && !now.Before(prev.expires) {
			msg.Reason = registry.ReasonExpired
		}
	}
	if cur.kind == watchAbsent {
		delete(f.state, p)
	} else {
		f.state[p] = cur
	}
	enc, err := registry.EncodeWatchMsg(msg)
	if err != nil {
		h.n.log.Error("watch message not encoded", "err", err)
		return
	}
	out := &watchOut{enc: enc} // one for every watcher
	for w := range f.subs {
		if !w.push(out) {
			h.drops.WithLabelValues("slow").Inc()
			h.dropLocked(w, fmt.Sprintf("slow watcher: %d messages queued", w.limit))
		}
	}
}

// armLocked makes sure the expiry timer fires by t. h.mu must be held.
func (h *watchHub) armLocked(t time.Time) {
	if !h.next.IsZero() && !t.Before(h.next) {
		return
	}
	h.next = t
	// The node's clock decides expiry (a test's may not be the wall's).
	h.expiry.Reset(max(t.Sub(h.n.now()), 0) + time.Millisecond)
}

// rearmLocked sets the expiry timer to the earliest served record's
// expiry. h.mu must be held.
func (h *watchHub) rearmLocked(now time.Time) {
	for _, f := range h.feeds {
		for _, st := range f.state {
			if st.kind == watchServed && now.Before(st.expires) {
				h.armLocked(st.expires)
			}
		}
	}
}

// subscribe registers a watcher of c for remote, within the bounds per
// peer and in all, and queues its snapshot.
func (h *watchHub) subscribe(remote peer.ID, c cid.Cid) (*watcher, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.total >= h.limits.Max:
		h.drops.WithLabelValues("full").Inc()
		return nil, fmt.Errorf("%w: %d", ErrTooManyWatchers, h.limits.Max)
	case h.perPeer[remote] >= h.limits.PerPeer && remote != h.n.host.ID(): // the node's own watches: one per service
		h.drops.WithLabelValues("peer_quota").Inc()
		return nil, fmt.Errorf("%w: %d", ErrWatcherQuota, h.limits.PerPeer)
	}
	f := h.feeds[c]
	if f == nil {
		f = &feed{state: make(map[peer.ID]watchState), subs: make(map[*watcher]struct{})}
		h.feeds[c] = f
		h.pmu.Lock()
		h.watched[c]++ // from now on, changes to c are noted
		h.pmu.Unlock()
		now := h.n.now()
		for _, p := range h.n.store.Peers(c) {
			if st := h.status(c, p, now); st.kind != watchAbsent {
				f.state[p] = st
				if st.kind == watchServed {
					h.armLocked(st.expires)
				}
			}
		}
	} else {
		h.pmu.Lock()
		h.watched[c]++
		h.pmu.Unlock()
	}
	w := &watcher{remote: remote, c: c, quit: make(chan struct{}), limit: h.limits.Queue, ready: make(chan struct{}, 1)}
	snap := make(map[peer.ID]watchState, len(f.state))
	for p, st := range f.state {
		snap[p] = st
	}
	w.push(&watchOut{snap: snap})
	f.subs[w] = struct{}{}
	h.perPeer[remote]++
	h.total++
	h.active.Add(1)
	return w, nil
}

// unsubscribe removes w, if the hub has not dropped it already.
func (h *watchHub) unsubscribe(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(w)
}

// dropLocked removes w and tells its writer why. h.mu must be held.
func (h *watchHub) dropLocked(w *watcher, reason string) {
	if h.removeLocked(w) {
		w.reason = reason
		close(w.quit)
	}
}

// removeLocked takes w out of its feed and the counts, forgetting a feed
// nobody watches any more. It reports whether w was subscribed.
func (h *watchHub) removeLocked(w *watcher) bool {
	f := h.feeds[w.c]
	if f == nil {
		return false
	}
	if _, ok := f.subs[w]; !ok {
		return false
	}
	delete(f.subs, w)
	if h.perPeer[w.remote]--; h.perPeer[w.remote] <= 0 {
		delete(h.perPeer, w.remote)
	}
	h.total--
	h.active.Add(-1)
	h.pmu.Lock()
	if h.watched[w.c]--; h.watched[w.c] <= 0 {
		delete(h.watched, w.c)
	}
	h.pmu.Unlock()
	if len(f.subs) == 0 {
		delete(h.feeds, w.c)
	}
	return true
}

// collectors are the hub's metrics: watches served, and refused or
// dropped by reason.
func (h *watchHub) collectors() []prometheus.Collector {
	served := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netget_watchers",
		Help: "Watches this node serves (registry watch protocol)."}, func() float64 { return float64(h.watchers()) })
	return []prometheus.Collector{served, h.drops}
}

// watchers returns how many watchers the hub serves.
func (h *watchHub) watchers() int { return int(h.active.Load()) }
