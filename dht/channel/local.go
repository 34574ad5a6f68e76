package channel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
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
	ls := &localStream{rwc: rw, stop: make(chan struct{})}
	ls.rdl.cancel = make(chan struct{})
	return newConn(ls, p, bufio.NewReaderSize(ls, readBuffer), cl, maxIn, maxOut)
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
// closes it for writes, and reads go through one goroutine (pump) so that
// a read deadline can end a read without closing anything: a Receive
// cancelled by its ctx leaves the channel open.
type localStream struct {
	rwc   io.ReadWriteCloser
	mu    sync.Mutex
	timer *time.Timer

	// Reads without a read deadline of rwc's own.
	pumpOnce  sync.Once
	chunks    chan chunk    // from pump, unbuffered
	pending   chunk         // what a Read has not returned yet; the reader's
	rdl       deadline      // the read deadline
	stop      chan struct{} // closed by Close: pump ends
	closeOnce sync.Once
}

// chunk is one read of pump's.
type chunk struct {
	b   []byte
	err error
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

func (s *localStream) Read(p []byte) (int, error) {
	if _, ok := s.rwc.(readDeadliner); ok {
		return s.rwc.Read(p)
	}
	s.pumpOnce.Do(func() {
		s.chunks = make(chan chunk)
		go s.pump()
	})
	if len(s.pending.b) == 0 && s.pending.err == nil {
		select {
		case s.pending = <-s.chunks:
		case <-s.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		case <-s.stop:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, s.pending.b)
	s.pending.b = s.pending.b[n:]
	if len(s.pending.b) == 0 && s.pending.err != nil {
		return n, s.pending.err
	}
	return n, nil
}

// pump reads rwc until it fails or the stream is closed.
func (s *localStream) pump() {
	for {
		buf := make([]byte, readBuffer)
		n, err := s.rwc.Read(buf)
		select {
		case s.chunks <- chunk{buf[:n], err}:
		case <-s.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (s *localStream) Write(p []byte) (int, error) { return s.rwc.Write(p) }
func (s *localStream) Reset() error                { return s.Close() }

func (s *localStream) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	return s.rwc.Close()
}

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
	s.rdl.set(t)
	return s.closeAt(t)
}

func (s *localStream) SetReadDeadline(t time.Time) error {
	if d, ok := s.rwc.(readDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	s.rdl.set(t)
	return nil
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
		s.timer = time.AfterFunc(time.Until(t), func() { s.Close() })
	}
	return nil
}

// deadline is a read deadline as net.Pipe keeps one: a channel closed
// when it passes.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passed
}

// set moves the deadline to t (none, for the zero time).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until it closed cancel
	}
	d.timer = nil
	passed := isDone(d.cancel)
	if t.IsZero() || time.Until(t) > 0 {
		if passed {
			d.cancel = make(chan struct{})
		}
		if !t.IsZero() {
			cancel := d.cancel
			d.timer = time.AfterFunc(time.Until(t), func() { close(cancel) })
		}
		return
	}
	if !passed {
		close(d.cancel)
	}
}

// wait returns a channel closed once the deadline passed.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
