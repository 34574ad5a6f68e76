package channel

import (
	"context"
	"time"
)

// ctxWatch makes the end of a ctx a deadline on one side of a stream (its
// SetReadDeadline or SetWriteDeadline): once ctx ends, the deadline moves
// to the past and a blocked read or write returns. It keeps one
// registration (context.AfterFunc) while calls come with a ctx that ends
// with the same Done channel: a channel's Receive and Send are called
// again and again with one ctx, and registering on each call cost four
// allocations per message. Its user serialises the calls (a Conn's rlock
// for reads, its wmu for writes). Writes release it after each write.
type ctxWatch struct {
	set   func(time.Time) error // the stream's deadline of this side
	done  <-chan struct{}       // the watched ctx's Done; nil for none
	stop  func() bool
	fired chan struct{} // closed once the watch has moved the deadline
}

// watch makes ctx's end move the deadline, from now on. A watch of
// another ctx is released first, and if it had fired, the deadline goes
// back to restore.
func (w *ctxWatch) watch(ctx context.Context, restore time.Time) {
	done := ctx.Done()
	if done == w.done {
		return
	}
	w.release(restore)
	if done == nil {
		return
	}
	fired := make(chan struct{})
	w.done, w.fired = done, fired
	w.stop = context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = w.set(time.Unix(1, 0))
	})
}

// release ends the watch; if it had fired, the deadline goes back to
// restore.
func (w *ctxWatch) release(restore time.Time) {
	if w.stop == nil {
		return
	}
	if !w.stop() {
		<-w.fired
		_ = w.set(restore)
	}
	w.done, w.stop, w.fired = nil, nil, nil
}
