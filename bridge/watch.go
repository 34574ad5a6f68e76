package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/netget/netget-peer/record"
)

// Watcher is what the bridge needs from a node to serve watches. A Finder
// given to New that also implements Watcher serves them, and the welcome
// lists the feature "watch"; without it a watch frame gets unknown_type.
//
// Watch calls yield with the service's verified, live providers (an
// upsert each), then with every change (an upsert for a new or
// republished record, a remove with its reason), one call at a time on
// the caller's goroutine, until ctx ends or yield returns false; it then
// returns nil. Yield blocks while the page is slow to read, up to the
// bridge's WriteTimeout, so a Watch must not queue without bound behind
// it. Watch returns an error when the watch could not start or broke off
// for good. The root package adapts netget.Node.Watch to it.
type Watcher interface {
	Watch(ctx context.Context, service string, yield func(WatchEvent) bool) error
}

// EventKind says what a WatchEvent reports.
type EventKind string

// Watch event kinds, as dht.EventKind names them.
const (
	EventUpsert EventKind = "upsert" // a provider appeared, or republished its record
	EventRemove EventKind = "remove" // a provider is gone: Peer and Reason say who and why
)

// WatchEvent is one change of a watched service's providers.
type WatchEvent struct {
	Kind   EventKind
	Record *record.Service // upsert: verified by the node; never nil
	Source string          // upsert: which path it came by, for the client's curiosity
	Peer   string          // remove: the provider's peer ID
	Reason string          // remove: withdrawn, expired, unhealthy or deregistered
}

// watch checks a watch frame and, if it passes, starts it. Checks, in
// order: the node watches at all, the service allowlist, a unique id,
// MaxSessionWatches, Filters at StageWatch, MaxWatches bridge-wide.
func (s *session) watch(ctx context.Context, f *WatchFrame) {
	srv := s.srv
	if srv.watcher == nil {
		srv.stats.refuse(ReasonBadFrame)
		s.sendErr(ctx, f.ID, &Error{Code: CodeUnknownType, Message: "this bridge does not serve watch"})
		return
	}
	if srv.services != nil && !srv.services[strings.ToLower(f.Service)] {
		srv.stats.refuse(ReasonService)
		s.sendErr(ctx, f.ID, &Error{Code: CodeForbidden, Message: "service not allowed on this bridge"})
		return
	}
	s.mu.Lock()
	dup := s.finds[f.ID] != nil || s.watches[f.ID] != nil
	n := len(s.watches)
	s.mu.Unlock()
	switch {
	case dup:
		srv.stats.refuse(ReasonBadFrame)
		s.sendErr(ctx, f.ID, &Error{Code: CodeBadRequest, Message: "a find or watch with this id is in flight"})
		return
	case n >= srv.cfg.MaxSessionWatches:
		srv.stats.refuse(ReasonSessionWatches)
		s.sendErr(ctx, f.ID, &Error{Code: CodeRateLimited,
			Message: fmt.Sprintf("%d watches open; cancel one first", n)})
		return
	}
	limit := srv.watchLimit(f)
	s.req.Stage, s.req.Service, s.req.Limit, s.req.Timeout = StageWatch, f.Service, limit, 0
	s.req.Where = cloneWhere(f.Where)
	e := s.filter(ctx)
	s.req.Where = nil
	if e != nil {
		srv.stats.refuse(ReasonFilter)
		s.log.Debug("bridge filter refused watch", "service", f.Service, "err", e)
		s.sendErr(ctx, f.ID, e)
		return
	}
	if !srv.startWatch() {
		srv.stats.refuse(ReasonWatches)
		s.sendErr(ctx, f.ID, &Error{Code: CodeBusy, Message: "the bridge runs as many watches as it may; retry later"})
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	st := &inflight{cancel: cancel}
	// Only this goroutine adds watches, so the checks above still hold.
	s.mu.Lock()
	s.watches[f.ID] = st
	s.mu.Unlock()
	s.wg.Go(func() { s.runWatch(ctx, wctx, st, f, limit) })
}

// watchLimit is how many providers a watch shows at once: its limit,
// defaulted and capped by MaxResults as a find's is.
func (s *Server) watchLimit(f *WatchFrame) int {
	if f.Limit == 0 || f.Limit > s.cfg.MaxResults {
		return s.cfg.MaxResults
	}
	return f.Limit
}

// runWatch follows one watch until the client cancels it, the session
// ends or the Watcher stops, then answers its end.
func (s *session) runWatch(ctx, wctx context.Context, st *inflight, f *WatchFrame, limit int) {
	s.srv.stats.watches.Add(1)
	v := &watchView{s: s, ctx: ctx, wctx: wctx, f: f, limit: limit, start: time.Now(), shown: map[string]struct{}{}}
	err := s.srv.watcher.Watch(wctx, f.Service, v.yield)
	st.cancel()
	s.mu.Lock()
	cancelled := st.cancelled
	delete(s.watches, f.ID)
	s.active = time.Now()
	s.mu.Unlock()
	s.srv.endWatch()
	switch {
	case ctx.Err() != nil:
		// The session is ending (or was dropped as too slow): nobody to answer.
	case cancelled:
		s.send(ctx, &DoneFrame{ID: f.ID, Count: v.count, Cancelled: true})
	case err != nil:
		s.sendErr(ctx, f.ID, &Error{Code: CodeInternal, Message: "watch failed", Err: err})
	default:
		// The node stopped watching by itself (it is closing).
		s.send(ctx, &DoneFrame{ID: f.ID, Count: v.count})
	}
}

// watchView is what one watch has shown the client: the peers it sent a
// result for and not yet a removed, at most limit of them. It lives on the
// Watcher's goroutine only.
type watchView struct {
	s         *session
	ctx, wctx context.Context
	f         *WatchFrame
	limit     int
	start     time.Time
	shown     map[string]struct{}
	count     int // result frames sent
}

// yield turns one event into the frame the client needs, if any, and
// sends it. A send that fails (the client did not read within
// WriteTimeout, or is gone) drops the session: a slow page never makes
// the bridge or the node queue for it.
func (v *watchView) yield(ev WatchEvent) bool {
	if v.wctx.Err() != nil {
		return false
	}
	var frame any
	switch ev.Kind {
	case EventUpsert:
		if ev.Record == nil {
			return true
		}
		frame = v.upsert(ev)
	case EventRemove:
		if _, ok := v.shown[ev.Peer]; ok {
			delete(v.shown, ev.Peer)
			frame = &RemovedFrame{ID: v.f.ID, Peer: ev.Peer, Reason: ev.Reason}
		}
	}
	if frame == nil {
		return true
	}
	if err := v.s.send(v.ctx, frame); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			v.s.srv.stats.refuse(ReasonSlow)
			v.s.log.Debug("bridge dropped a slow watcher", "id", v.f.ID, "err", err)
		}
		v.s.cancel()
		return false
	}
	if _, ok := frame.(*ResultFrame); ok {
		v.count++
		v.s.srv.stats.results.Add(1)
	} else {
		v.s.srv.stats.removed.Add(1)
	}
	return true
}

// upsert returns the frame an upsert needs: a result for a matching
// record (unless the watch shows limit peers already and this is a new
// one), a removed for a shown peer whose record stopped matching, or nil.
func (v *watchView) upsert(ev WatchEvent) any {
	p := ev.Record.Peer.String()
	_, shown := v.shown[p]
	switch {
	case !matches(ev.Record.Meta, v.f.Where):
		if !shown {
			return nil
		}
		delete(v.shown, p)
		return &RemovedFrame{ID: v.f.ID, Peer: p, Reason: RemovedUnmatched}
	case !shown && len(v.shown) >= v.limit:
		v.s.srv.stats.watchOverLimit.Add(1)
		return nil
	}
	v.shown[p] = struct{}{}
	return &ResultFrame{ID: v.f.ID, Record: recordOf(ev.Record), Source: ev.Source,
		ElapsedMS: float64(time.Since(v.start).Microseconds()) / 1000}
}

// startWatch takes one of the bridge's MaxWatches slots; false when full.
func (s *Server) startWatch() bool {
	for {
		n := s.stats.watchesRunning.Load()
		if n >= int64(s.cfg.MaxWatches) {
			return false
		}
		if s.stats.watchesRunning.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) endWatch() { s.stats.watchesRunning.Add(-1) }

// FeatureWatch is listed in the welcome when the bridge's node can watch
// (watch, result, removed, done, cancel); see FeatureFind.
const FeatureWatch = "watch"
