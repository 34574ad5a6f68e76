package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// find checks a find frame and, if it passes, runs it. Checks, in order:
// service allowlist, duplicate id, in-flight limit, Filters, the
// bridge-wide MaxFinds. The find runs on the read loop's goroutine; if it
// outlives inlineFindGrace another goroutine takes the loop over, and
// find returns false once the find has ended: the caller stops reading.
func (s *session) find(ctx context.Context, f *FindFrame) bool {
	cfg := &s.srv.cfg
	limit, timeout := s.srv.bounds(f)
	if s.srv.services != nil && !s.srv.services[strings.ToLower(f.Service)] {
		s.srv.stats.refuse(ReasonService)
		s.sendErr(ctx, f.ID, &Error{Code: CodeForbidden, Message: "service not allowed on this bridge"})
		return true
	}
	s.mu.Lock()
	dup := s.finds[f.ID] != nil || s.watches[f.ID] != nil
	n := len(s.finds)
	s.mu.Unlock()
	switch {
	case dup:
		s.srv.stats.refuse(ReasonBadFrame)
		s.sendErr(ctx, f.ID, &Error{Code: CodeBadRequest, Message: "a find or watch with this id is in flight"})
		return true
	case n >= cfg.MaxInFlight:
		s.srv.stats.refuse(ReasonInFlight)
		s.sendErr(ctx, f.ID, &Error{Code: CodeRateLimited,
			Message: fmt.Sprintf("%d finds in flight; wait for one to end", n)})
		return true
	}
	s.req.Stage, s.req.Service, s.req.Limit, s.req.Timeout = StageFind, f.Service, limit, timeout
	if e := s.filter(ctx); e != nil {
		s.srv.stats.refuse(ReasonFilter)
		s.log.Debug("bridge filter refused find", "service", f.Service, "err", e)
		s.sendErr(ctx, f.ID, e)
		return true
	}
	if !s.srv.startFind() {
		s.srv.stats.refuse(ReasonFinds)
		s.sendErr(ctx, f.ID, &Error{Code: CodeBusy, Message: "the bridge runs as many finds as it may; retry later"})
		return true
	}
	fctx, cancel := context.WithCancel(ctx) // the Finder applies the timeout
	st := &inflight{cancel: cancel}
	// Only this goroutine adds finds, so the checks above still hold.
	s.mu.Lock()
	s.finds[f.ID] = st
	s.mu.Unlock()
	h := s.handOver(ctx)
	s.runFind(ctx, fctx, st, f, limit, timeout)
	return h.keep(s)
}

// inlineFindGrace is how long a find runs on the read loop's goroutine
// before a new goroutine takes the loop over: the longest the session's
// other frames (a cancel, a ping, another find) wait behind a find. Most
// finds end sooner (an answer in hand), and running them where their
// frame was read saves handing each to a goroutine of its own: the wake-up
// of that goroutine cost the bridge as much CPU as its own work (see the
// README's bridge figures).
const inlineFindGrace = time.Millisecond

// handover hands the read loop to a new goroutine when the find running
// on it outlives inlineFindGrace.
type handover struct {
	t     *time.Timer
	state atomic.Int32 // handInline, handKept or handMoved
}

// handover states.
const (
	handInline = iota // the find runs; nobody reads
	handKept          // the find ended in time: its goroutine reads on
	handMoved         // the grace passed: another goroutine reads
)

// handOver arms the handover of the loop for one find; the session waits
// for the goroutine it may start. The read loop keeps its handover (and
// timer) for its next find; the goroutine that takes the loop over starts
// afresh.
func (s *session) handOver(ctx context.Context) *handover {
	h := s.hand
	if h == nil {
		h = new(handover)
		h.t = time.AfterFunc(time.Hour, func() {
			defer s.wg.Done()
			if h.state.CompareAndSwap(handInline, handMoved) {
				s.hand = nil // the loop's, now on this goroutine
				s.srv.stats.findsMoved.Add(1)
				s.loop(ctx)
			}
		})
		h.t.Stop()
		s.hand = h
	}
	h.state.Store(handInline) // publishes the loop's state to the next reader
	s.wg.Add(1)
	h.t.Reset(inlineFindGrace)
	return h
}

// keep reports, once the find has ended, whether its goroutine still owns
// the read loop. A handover whose timer fired is not used again, even
// when the find won: its function may still run, and must find it kept.
func (h *handover) keep(s *session) bool {
	stopped := h.t.Stop()
	if stopped {
		s.wg.Done() // the timer's function will not run for this find
	}
	if !h.state.CompareAndSwap(handInline, handKept) {
		return false // another goroutine reads now
	}
	if !stopped {
		s.hand = nil
	}
	return true
}

// bounds returns a find's limit and timeout after defaults and caps.
func (s *Server) bounds(f *FindFrame) (int, time.Duration) {
	limit := f.Limit
	if limit == 0 || limit > s.cfg.MaxResults {
		limit = s.cfg.MaxResults
	}
	timeout := time.Duration(f.TimeoutMS) * time.Millisecond
	if f.TimeoutMS == 0 {
		timeout = s.cfg.FindTimeout
	}
	if f.TimeoutMS > s.cfg.MaxFindTimeout.Milliseconds() {
		timeout = s.cfg.MaxFindTimeout
	}
	return limit, timeout
}

// runFind runs one find to its end and answers it: results as they come,
// then done, or an error when nothing was found.
func (s *session) runFind(ctx, fctx context.Context, st *inflight, f *FindFrame, limit int, timeout time.Duration) {
	s.srv.stats.finds.Add(1)
	count, answered := 0, false
	err := s.srv.finder.Find(fctx, f.Service, FindOptions{Limit: limit, Timeout: timeout}, func(r Result) bool {
		if count+1 == limit && s.sendLast(ctx, fctx, st, f.ID, r, count+1) {
			answered = true
			return false
		}
		if !s.sendResult(ctx, fctx, f.ID, r) {
			return false
		}
		count++
		return true
	})
	if answered {
		return
	}
	timedOut := errors.Is(err, context.DeadlineExceeded)
	cancelled := s.forgetFind(st, f.ID, false)
	switch {
	case ctx.Err() != nil:
		// The session is ending: nobody to answer.
	case cancelled:
		s.sendDone(ctx, f.ID, count, true)
	case count > 0:
		s.sendDone(ctx, f.ID, count, false)
	case timedOut:
		s.sendErr(ctx, f.ID, &Error{Code: CodeTimeout,
			Message: fmt.Sprintf("no provider of %s found within %s", f.Service, timeout), Err: err})
	case err != nil:
		s.sendErr(ctx, f.ID, &Error{Code: CodeInternal, Message: "find failed", Err: err})
	default:
		s.sendErr(ctx, f.ID, &Error{Code: CodeNotFound, Message: "no provider of " + f.Service + " found"})
	}
}

// forgetFind ends a find's context and forgets it, before it is
// answered: once the client reads the end, the id and the slot are free
// again. It reports whether the client cancelled the find; then, with
// unlessCancelled, it leaves the find as it was.
func (s *session) forgetFind(st *inflight, id string, unlessCancelled bool) (cancelled bool) {
	s.mu.Lock()
	cancelled = st.cancelled
	if cancelled && unlessCancelled {
		s.mu.Unlock()
		return true
	}
	delete(s.finds, id)
	s.active = time.Now()
	s.mu.Unlock()
	st.cancel()
	s.srv.endFind()
	return cancelled
}

// sendLast sends a find's last result r, its count-th and the find's
// limit, and its done frame in one write, when the connection has a cork:
// the Finder returns as soon as it yields its limit (its contract), so
// the bridge knows the find is over without waiting for that, and ends it
// first (the Finder's context is cancelled, the find forgotten). That is
// one system call where two were; nothing waits for the cork. It reports
// false, doing nothing, when it cannot: no cork (a Server mounted in
// another http.Server), a find cancelled, or a frame the fast encoders
// decline; the caller then sends the result as any other.
func (s *session) sendLast(ctx, fctx context.Context, st *inflight, id string, r Result, count int) bool {
	if s.lc == nil || fctx.Err() != nil {
		return false
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b, ok := appendResult(s.wbuf[:0], id, r, s.srv.records)
	n := len(b)
	if ok {
		b, ok = appendDone(b, id, count, false)
	}
	if !ok {
		return false
	}
	if cap(b) <= keptWriteBuf {
		s.wbuf = b
	}
	if s.forgetFind(st, id, true) {
		return false // the client's cancel came first: answered as cancelled
	}
	s.lc.cork.hold()
	err := s.writeLocked(ctx, websocket.MessageText, b[:n])
	if err == nil {
		err = s.writeLocked(ctx, websocket.MessageText, b[n:])
	}
	if rerr := s.writeHeld(); err == nil {
		err = rerr
	}
	if err != nil {
		s.cancel() // a connection gone or stuck ends the session, as in sendResult
		return true
	}
	s.srv.stats.results.Add(1)
	return true
}

// sendResult sends one result as a frame, unless the find was cancelled.
// It reports whether the find should go on: false once it was cancelled or
// the connection is gone or stuck (then it ends the session).
func (s *session) sendResult(ctx, fctx context.Context, id string, r Result) bool {
	if fctx.Err() != nil {
		return false
	}
	ok, err := s.writeEncoded(ctx, func(b []byte) ([]byte, bool) { return appendResult(b, id, r, s.srv.records) })
	if !ok {
		err = s.send(ctx, &ResultFrame{ID: id, Record: recordOf(r.Record), Source: r.Source,
			ElapsedMS: float64(r.Elapsed.Microseconds()) / 1000})
	}
	if err != nil {
		s.cancel()
		return false
	}
	s.srv.stats.results.Add(1)
	return true
}

// sendDone sends a find's done frame.
func (s *session) sendDone(ctx context.Context, id string, count int, cancelled bool) error {
	if ok, err := s.writeEncoded(ctx, func(b []byte) ([]byte, bool) { return appendDone(b, id, count, cancelled) }); ok {
		return err
	}
	return s.send(ctx, &DoneFrame{ID: id, Count: count, Cancelled: cancelled})
}

// cancelFind stops the find or watch id, if it is in flight.
func (s *session) cancelFind(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.finds[id]
	if st == nil {
		st = s.watches[id]
	}
	if st != nil {
		st.cancelled = true
		st.cancel()
	}
}
