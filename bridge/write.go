package bridge

import (
	"context"
	"fmt"

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
// so one timer per session, reset for each write, bounds the one in
// progress: a client that does not read for WriteTimeout has its
// connection closed, and the write fails with an error wrapping
// context.DeadlineExceeded (the writers waiting behind it fail too). A
// context per write cost two timers and two context registrations a
// frame, for the same effect. The session's end closes the connection
// too (run), which ends a write in progress.
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
	s.wtimer.Reset(s.srv.cfg.WriteTimeout)
	// A context that is never done: coder/websocket arms nothing for it.
	err := s.conn.Write(context.Background(), typ, b)
	s.wtimer.Stop()
	if err != nil && s.wexpired.Load() {
		return fmt.Errorf("%w (%w)", errWriteTimeout, err)
	}
	return err
}

// writeExpired is wtimer's function: the write in progress outlived
// WriteTimeout.
func (s *session) writeExpired() {
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
