package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// errWriteTimeout is how a write that outlived WriteTimeout fails.
var errWriteTimeout = fmt.Errorf("write: %w", context.DeadlineExceeded)

// send writes one frame within WriteTimeout; a failed write closes the
// connection, which ends the session.
func (s *session) send(ctx context.Context, f any) error {
	b, err := Marshal(f)
	if err != nil {
		s.log.Error("bridge cannot encode frame", "err", err)
		return err
	}
	return s.write(ctx, b)
}

// write sends one encoded text frame within WriteTimeout.
func (s *session) write(ctx context.Context, b []byte) error {
	return s.writeMessage(ctx, websocket.MessageText, b)
}

// writeMessage sends one message within WriteTimeout, unless ctx is done.
// Writes are serialised here (coder/websocket would serialise them too),
// so one timer per session bounds the one in progress: a client that does
// not read for WriteTimeout has its connection closed, and the write fails
// with an error wrapping context.DeadlineExceeded (the writers waiting
// behind it fail too). A write only notes when it started; the timer,
// armed by the first write after it went quiet, looks at the write in
// progress when it fires and fires again at that write's deadline, until
// it finds no write (writeWatch). A context per write cost two timers and
// two context registrations a frame; a timer reset and stopped around each
// write still cost about 1 µs a find (BenchmarkBridgeServer's profile).
// The session's end closes the connection too (run), which ends a write
// in progress.
func (s *session) writeMessage(ctx context.Context, typ websocket.MessageType, b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(ctx, typ, b)
}

// keptWriteBuf is the largest encoding buffer a session keeps.
const keptWriteBuf = 4096

// writeEncoded encodes a text frame with enc into the session's reused
// buffer and sends it as writeMessage does; false, sending nothing, when
// enc declines (appendResult and appendDone do for strings JSON escapes).
func (s *session) writeEncoded(ctx context.Context, enc func([]byte) ([]byte, bool)) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b, ok := enc(s.wbuf[:0])
	if !ok {
		return false, nil
	}
	if cap(b) <= keptWriteBuf {
		s.wbuf = b
	}
	return true, s.writeLocked(ctx, websocket.MessageText, b)
}

// writeLocked is writeMessage with s.wmu held.
func (s *session) writeLocked(ctx context.Context, typ websocket.MessageType, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.wexpired.Load() {
		return errWriteTimeout
	}
	s.wstart.Store(int64(time.Since(s.epoch)) + 1)
	if s.warmed.CompareAndSwap(false, true) {
		s.wtimer.Reset(s.srv.cfg.WriteTimeout)
	}
	// A context that is never done: coder/websocket arms nothing for it.
	err := s.conn.Write(context.Background(), typ, b)
	s.wstart.Store(0)
	if err != nil && s.wexpired.Load() {
		return fmt.Errorf("%w (%w)", errWriteTimeout, err)
	}
	return err
}

// writeHeld sends what the cork held in one write, bounded by WriteTimeout
// as writeLocked's are; s.wmu is held.
func (s *session) writeHeld() error {
	s.wstart.Store(int64(time.Since(s.epoch)) + 1)
	if s.warmed.CompareAndSwap(false, true) {
		s.wtimer.Reset(s.srv.cfg.WriteTimeout)
	}
	err := s.lc.cork.release(s.lc.Conn)
	s.wstart.Store(0)
	if err != nil && s.wexpired.Load() {
		return fmt.Errorf("%w (%w)", errWriteTimeout, err)
	}
	return err
}

// writeWatch is wtimer's function. With no write in progress it disarms
// the timer (the next write arms it); a write that outlived WriteTimeout
// closes the connection; a younger one has the timer fire again at its
// deadline.
func (s *session) writeWatch() {
	start := s.wstart.Load()
	if start == 0 {
		s.warmed.Store(false)
		// A write that started since the Load found the timer armed and
		// left it: take it back, unless that write armed it itself.
		if start = s.wstart.Load(); start == 0 || !s.warmed.CompareAndSwap(false, true) {
			return
		}
	}
	left := time.Duration(start-1) + s.srv.cfg.WriteTimeout - time.Since(s.epoch)
	if left > 0 {
		s.wtimer.Reset(left)
		return
	}
	s.wexpired.Store(true)
	s.conn.CloseNow()
}

// sendErr sends an error frame; internal detail goes to the log only.
func (s *session) sendErr(ctx context.Context, id string, e *Error) error {
	if e.Code == CodeInternal {
		s.log.Warn("bridge internal error", "id", id, "err", e)
	}
	return s.send(ctx, &ErrorFrame{ID: id, Code: e.Code, Message: e.Message})
}
