package channel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// NewLocal returns the Conn of a channel another process holds and relays
// over rw with Splice (the daemon's control socket): the same frames as on
// the wire, so the Conn behaves as one opened here. p and cl describe the
// channel; maxIn is the largest message this end takes, maxOut the largest
// the provider takes (Splice's end enforces both again).
func NewLocal(rw io.ReadWriteCloser, p peer.ID, cl Claims, maxIn, maxOut int) *Conn {
	return newConn(&localStream{rwc: rw}, p, bufio.NewReaderSize(rw, readBuffer), cl, maxIn, maxOut)
}

// Splice relays c over rw in channel frames, for a Conn made by NewLocal
// at rw's other end: messages and end frames both ways, and close frames
// with their codes. It returns when both directions are done, having
// closed rw and c.
func Splice(ctx context.Context, c *Conn, rw io.ReadWriteCloser) {
	defer rw.Close()
	var wg sync.WaitGroup
	wg.Go(func() { spliceIn(ctx, c, bufio.NewReaderSize(rw, readBuffer)) })
	var out []byte
	for { // channel → local
		m, err := c.Receive(ctx)
		var ce *CloseError
		switch {
		case err == nil:
			out = appendFrame(out[:0], byte(m.Type), m.Data)
		case errors.Is(err, io.EOF):
			out = appendFrame(out[:0], frameEnd, nil)
		case errors.As(err, &ce):
			rw.Write(appendFrame(nil, frameClose, closePayload(ce.Code, ce.Reason)))
			closeLater(rw) // if the local end does not answer
			wg.Wait()
			return
		case errors.Is(err, ErrClosed): // the local end closed: answer it
			rw.Write(appendFrame(nil, frameClose, closePayload(CloseNormal, "")))
			closeLater(rw)
			wg.Wait()
			return
		default: // broken, or ctx: so is the local end
			rw.Close()
			c.Close(CloseGoingAway, "relay ended")
			wg.Wait()
			return
		}
		if _, err := rw.Write(out); err != nil {
			c.Close(CloseGoingAway, "the local end went away")
			wg.Wait()
			return
		}
	}
}

// closeLater closes rw after the closing handshake's bound.
func closeLater(rw io.Closer) { time.AfterFunc(closeWait, func() { rw.Close() }) }

// spliceIn relays the local end's frames to c until it closes.
func spliceIn(ctx context.Context, c *Conn, r *bufio.Reader) {
	for {
		typ, b, err := readFrame(r, c.SendLimit())
		if err != nil {
			c.Close(CloseGoingAway, "the local end went away")
			return
		}
		switch typ {
		case frameText, frameBinary:
			err = c.Send(ctx, Message{Type: MessageType(typ), Data: b})
		case frameEnd:
			err = c.CloseWrite(ctx)
		case frameClose:
			c.Close(int(binary.BigEndian.Uint16(b)), string(b[2:]))
			return
		}
		if err != nil && !errors.Is(err, ErrTooLarge) {
			return
		}
	}
}

// localStream is a stream over a local connection: deadlines and half
// close where the connection has them (a net.Conn), else a deadline
// closes it.
type localStream struct {
	rwc   io.ReadWriteCloser
	mu    sync.Mutex
	timer *time.Timer
}

func (s *localStream) Read(p []byte) (int, error)  { return s.rwc.Read(p) }
func (s *localStream) Write(p []byte) (int, error) { return s.rwc.Write(p) }
func (s *localStream) Close() error                { return s.rwc.Close() }
func (s *localStream) Reset() error                { return s.rwc.Close() }

func (s *localStream) CloseWrite() error {
	if cw, ok := s.rwc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (s *localStream) SetDeadline(t time.Time) error {
	if d, ok := s.rwc.(interface{ SetDeadline(time.Time) error }); ok {
		return d.SetDeadline(t)
	}
	return s.closeAt(t)
}

func (s *localStream) SetWriteDeadline(t time.Time) error {
	if d, ok := s.rwc.(interface{ SetWriteDeadline(time.Time) error }); ok {
		return d.SetWriteDeadline(t)
	}
	return s.closeAt(t)
}

// closeAt closes the connection at t (never, for the zero time).
func (s *localStream) closeAt(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if !t.IsZero() {
		s.timer = time.AfterFunc(time.Until(t), func() { s.rwc.Close() })
	}
	return nil
}
