package dht

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/record"
)

// maxWatchStrikes is how many records a registry's watch stream may carry
// that fail verification before the watcher resets it and subscribes again
// later (with backoff): a hostile registry costs a bounded number of
// verifications per stream.
const maxWatchStrikes = 16

// registriesOf returns the registries a watch uses: every registry of the
// node, connected or not (a registry restarting comes back), unless the
// fast path is off; and the node itself when it is a registry (its health
// monitor runs), read from its own hub without a stream.
func (w *watch) registriesOf() []peer.ID {
	var out []peer.ID
	if w.n.cfg.Health.Interval > 0 {
		out = append(out, w.n.host.ID())
	}
	if w.n.cfg.DisableFastPath {
		return out
	}
	return append(out, w.n.KnownRegistries()...)
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
			w.wg.Go(func() { w.send(ctx, regMsg{reg: p, kind: msgForget}) }) // the merger is the caller: not inline
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

// watchSource is where a reader gets one registry's watch messages: a
// stream (registry.WatchStream), or this node's own hub (localWatch).
type watchSource interface {
	Next() (registry.WatchMsg, peer.ID, error)
	Close()
}

// open subscribes to the service on reg: this node's hub when reg is
// itself, else a stream, dialling reg if need be.
func (w *watch) open(ctx context.Context, reg peer.ID) (watchSource, error) {
	if reg == w.n.host.ID() {
		sub, err := w.n.watchHub.subscribe(reg, w.c)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", registry.ErrWatchDropped, err)
		}
		return &localWatch{n: w.n, w: sub}, nil
	}
	// Our own backoff paces the dials: the swarm's (5s and up, per
	// address) would keep a registry that restarted unreachable.
	dctx := network.WithForceDirectDial(network.WithDialPeerTimeout(ctx, w.n.cfg.WalkDialTimeout), "watch")
	return registry.OpenWatch(dctx, w.n.host, w.n.watchProto, reg, w.c)
}

// follow watches the service on registry reg, subscribing again with
// backoff whenever the stream ends, until ctx ends.
func (w *watch) follow(ctx context.Context, reg peer.ID) {
	backoff := watchRetryMin
	for ctx.Err() == nil {
		ws, err := w.open(ctx, reg)
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
		log := w.n.log.Debug
		if errors.Is(err, registry.ErrWatchDropped) {
			log = w.n.log.Warn // the registry said why: a bound, or a slow reader
		}
		log("watch stream ended; subscribing again", "registry", reg, "service", w.name, "err", err, "in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}

// read passes one stream's messages, verified, to the merger until it
// ends. It reports whether the snapshot completed.
func (w *watch) read(ctx context.Context, reg peer.ID, ws watchSource) (synced bool, err error) {
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
		if !sleep(ctx, interval) {
			return
		}
	}
}

// sleep waits d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// localWatch is a watch of this node's own hub, as a registry watching a
// service reads it: the hub's messages as a stream would carry them.
type localWatch struct {
	n     *Node
	w     *watcher
	queue []localMsg // the rest of a snapshot
}

type localMsg struct {
	m registry.WatchMsg
	p peer.ID
}

// Next returns the next message, waiting for the hub; Close ends the wait.
func (l *localWatch) Next() (registry.WatchMsg, peer.ID, error) {
	for len(l.queue) == 0 {
		select {
		case <-l.w.ready:
			out, ok := l.w.pop()
			if !ok {
				continue
			}
			if out.snap == nil {
				return registry.DecodeWatchMsg(out.enc)
			}
			for p, st := range out.snap {
				if m, ok := l.n.snapshotMsg(l.w, p, st); ok {
					l.queue = append(l.queue, localMsg{m, p})
				}
			}
			l.queue = append(l.queue, localMsg{m: registry.WatchMsg{Type: registry.WatchSynced}})
		case <-l.w.quit:
			return registry.WatchMsg{}, "", fmt.Errorf("%w: %s", registry.ErrWatchDropped, l.w.reason)
		}
	}
	next := l.queue[0]
	l.queue = l.queue[1:]
	if next.m.Type == registry.WatchUpsert {
		next.p = "" // an upsert names its peer in its record, as on the wire
	}
	return next.m, next.p, nil
}

// Close unsubscribes; a Next waiting returns.
func (l *localWatch) Close() {
	l.n.watchHub.mu.Lock()
	defer l.n.watchHub.mu.Unlock()
	l.n.watchHub.dropLocked(l.w, "closed")
}
