package channel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// closeWait bounds a closing handshake: how long Close waits for the
// other side's close frame before it resets the stream.
const closeWait = 2 * time.Second

// readBuffer is the size of each channel's read buffer.
const readBuffer = 4 << 10

// keptFrame is the largest frame buffer a channel keeps for its next
// Send: small messages cost no allocation, big ones hold no memory.
const keptFrame = 1 << 10

// MessageType says how a message's data is meant: text (UTF-8) or binary.
type MessageType uint8

// Message types, as WebSocket's.
const (
	Text   MessageType = MessageType(frameText)
	Binary MessageType = MessageType(frameBinary)
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is one channel message.
type Message struct {
	Type MessageType
	Data []byte
}

// Claims are what the opener of a channel says about itself, as the
// provider sees them.
type Claims struct {
	// Service is the service the channel is for.
	Service string
	// Origin is the web page's origin as the bridge checked it; empty for
	// a Go program or the CLI.
	Origin string
	// Token is the opener's token for the provider, if any.
	Token string
	// Peer is the opener's peer ID, set by the provider side from the
	// connection (a bridge's peer ID for a web page).
	Peer peer.ID
}

// Conn is one open channel: ordered, reliable messages both ways over a
// libp2p stream, with flow control end to end (Send blocks while the other
// side does not read). Send and Receive may be called concurrently with
// each other and with Close. Receive reads the stream itself, one frame
// at a time (no goroutine reads ahead), so at most one message per channel
// waits in memory, and none is read before the channel's user asks.
type Conn struct {
	s      stream
	peer   peer.ID
	claims Claims
	maxIn  int // the largest message this side takes
	maxOut int // the largest message the other side takes

	// rlock is held by whoever reads the stream (Receive, Close's drain);
	// a channel so that a Receive waiting for it can give up with its ctx.
	rlock     chan struct{}
	fr        frameReader // guarded by rlock
	ended     bool        // the other side sent its end frame; guarded by rlock
	eofSeen   bool        // Receive returned io.EOF once; guarded by rlock
	readDone  bool        // the read side is finished (rerr set); guarded by rlock
	closed    chan struct{}
	closeOnce sync.Once

	rwatch ctxWatch // Receive's ctx as a read deadline; guarded by rlock

	wmu       sync.Mutex // serialises writes
	sentClose bool       // guarded by wmu
	sentEnd   bool       // guarded by wmu
	wbuf      []byte     // the last frame written, reused; guarded by wmu
	wwatch    ctxWatch   // Send's ctx as a write deadline; guarded by wmu

	mu   sync.Mutex
	rerr error     // why the read side finished
	dl   time.Time // the deadline when no ctx has ended: zero, or the closing handshake's bound

	last atomic.Int64 // unix nanos of the last message either way
	idle *time.Timer  // the provider's idle timeout, nil without
}

// stream is what a Conn runs over: a libp2p stream, or a local
// connection (NewLocal).
type stream interface {
	io.ReadWriteCloser
	CloseWrite() error
	Reset() error
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

var _ stream = network.Stream(nil)

// newConn starts a channel over s, with peer p, after a successful open.
func newConn(s stream, p peer.ID, br *bufio.Reader, cl Claims, maxIn, maxOut int) *Conn {
	c := &Conn{
		s: s, peer: p, claims: cl, maxIn: maxIn, maxOut: maxOut, fr: frameReader{r: br},
		rlock: make(chan struct{}, 1), closed: make(chan struct{}),
	}
	c.rwatch.set, c.wwatch.set = s.SetReadDeadline, s.SetWriteDeadline
	c.touch()
	return c
}

// Peer returns the peer at the other end.
func (c *Conn) Peer() peer.ID { return c.peer }

// Claims returns the opener's claims (on the provider side; on the
// opener's side, those it sent).
func (c *Conn) Claims() Claims { return c.claims }

// SendLimit returns the largest message the other side takes.
func (c *Conn) SendLimit() int { return c.maxOut }

// Send sends m, blocking while the other side is not reading (flow
// control). A message larger than SendLimit returns ErrTooLarge and is not
// sent; the channel stays open. If ctx ends while Send is blocked, the
// channel is broken (the frame may be half written): the stream is reset
// and Send returns ctx's error.
func (c *Conn) Send(ctx context.Context, m Message) error {
	switch {
	case m.Type != Text && m.Type != Binary:
		return fmt.Errorf("send: %w: type %d", ErrBadMessage, m.Type)
	case len(m.Data) > c.maxOut:
		return fmt.Errorf("send: %w: %d bytes, the other side takes at most %d", ErrTooLarge, len(m.Data), c.maxOut)
	case m.Type == Text && !utf8.Valid(m.Data):
		return fmt.Errorf("send: %w: text is not UTF-8", ErrBadMessage)
	}
	if err := c.writeFrame(ctx, byte(m.Type), m.Data); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	c.touch()
	return nil
}

// CloseWrite tells the other side this side sends nothing more: its
// Receive returns io.EOF once it has read every message before. The
// channel stays open the other way until either side closes it.
func (c *Conn) CloseWrite(ctx context.Context) error {
	return c.writeFrame(ctx, frameEnd, nil)
}

// writeFrame writes one frame, under wmu, honouring ctx.
func (c *Conn) writeFrame(ctx context.Context, typ byte, payload []byte) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sentClose || c.sentEnd {
		if c.sentClose {
			return c.err()
		}
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The write watch ends with the write: a local stream without
	// deadlines (NewLocal) is closed by a past write deadline, so one must
	// not stay armed on a ctx that ends after its Send.
	c.wwatch.watch(ctx, c.deadline())
	b := appendFrame(c.wbuf[:0], typ, payload)
	if cap(b) <= keptFrame {
		c.wbuf = b // the stream copied it (yamux) or wrote it (a local one)
	}
	_, err := c.s.Write(b)
	c.wwatch.release(c.deadline())
	if err != nil {
		c.s.Reset()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rerr := c.err(); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%w: %w", ErrBroken, err)
	}
	if typ == frameEnd {
		c.sentEnd = true
	}
	return nil
}

// Receive returns the next message. After the other side's CloseWrite it
// returns io.EOF; once the channel is closed it returns a *CloseError
// (errors.As) with the code and reason of the close frame, or ErrClosed
// when this side closed it; when the stream died without a close frame
// (the other node was killed), an error wrapping ErrBroken. If ctx ends
// first, Receive returns ctx's error and the channel stays open (a frame
// half read is kept for the next Receive).
//
// Receive reads the stream in the caller's goroutine: the other side's
// close frame is seen, and answered, by a Receive (or by Close).
func (c *Conn) Receive(ctx context.Context) (Message, error) {
	if c.isClosed() { // this side closed: that wins over whatever the peer said
		return Message{}, ErrClosed
	}
	select {
	case c.rlock <- struct{}{}:
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
	defer func() { <-c.rlock }()
	for {
		switch {
		case c.isClosed():
			return Message{}, ErrClosed
		case c.ended && !c.eofSeen:
			c.eofSeen = true
			return Message{}, io.EOF
		case c.readDone:
			c.rwatch.release(c.deadline()) // nothing to read: let go of ctx
			return Message{}, c.err()
		}
		typ, b, err := c.readCtx(ctx)
		if err != nil && ctx.Err() != nil && isTimeout(err) {
			return Message{}, ctx.Err()
		}
		if m, ok := c.handleFrame(typ, b, err); ok && !c.isClosed() {
			return m, nil
		}
	}
}

// readCtx reads the next frame, with ctx's end as a read deadline. The
// caller holds rlock.
func (c *Conn) readCtx(ctx context.Context) (byte, []byte, error) {
	c.rwatch.watch(ctx, c.deadline())
	return c.fr.next(c.maxIn)
}

// deadline is the stream's deadline when no ctx has ended.
func (c *Conn) deadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dl
}

// bound sets the closing handshake's deadline on the stream, both ways.
func (c *Conn) bound() {
	c.mu.Lock()
	c.dl = time.Now().Add(closeWait)
	_ = c.s.SetDeadline(c.dl)
	c.mu.Unlock()
}

// handleFrame does what a frame read says: a message is returned (ok); an
// end frame is noted; a close frame, or a frame that breaks the rules, or
// a failed read finishes the read side. The caller holds rlock.
func (c *Conn) handleFrame(typ byte, b []byte, err error) (Message, bool) {
	if err == nil && c.ended && typ != frameClose {
		err = &frameError{CloseProtocolError, fmt.Errorf("%w: a frame after the end frame", ErrBadMessage)}
	}
	if err != nil {
		c.readFailed(err)
		c.readDone = true
		return Message{}, false
	}
	c.touch()
	switch typ {
	case frameClose:
		ce := &CloseError{Code: int(binary.BigEndian.Uint16(b)), Reason: string(b[2:])}
		c.setErr(ce)
		c.sendClose(ce.Code, "")
		c.s.Close()
		c.readDone = true
		return Message{}, false
	case frameEnd:
		c.ended = true
		return Message{}, false
	}
	return Message{Type: MessageType(typ), Data: b}, true
}

// isTimeout reports whether err is a read deadline's.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Close closes the channel with code (1000, or 3000-4999 for an
// application's own; the codes of this package otherwise) and reason (cut
// to MaxCloseReason bytes): it sends a close frame, waits up to two
// seconds for the other side's (discarding the messages before it), and
// releases the stream. Later calls do nothing and return nil.
func (c *Conn) Close(code int, reason string) error {
	if !validCloseCode(code) {
		return fmt.Errorf("close: %w: %d", ErrBadCloseCode, code)
	}
	c.closeOnce.Do(func() {
		close(c.closed)
		if c.idle != nil {
			c.idle.Stop()
		}
		// Everything below is bounded by the deadline, a blocked Send or
		// Receive too.
		c.bound()
		c.sendClose(code, reason)
		c.rlock <- struct{}{} // a Receive under way returns ErrClosed
		c.rwatch.release(c.deadline())
		for !c.readDone {
			typ, b, err := c.fr.next(c.maxIn)
			c.handleFrame(typ, b, err)
		}
		<-c.rlock
		c.s.Close()
	})
	return nil
}

// sendClose writes the close frame once and closes the write side.
func (c *Conn) sendClose(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sentClose {
		return
	}
	c.sentClose = true
	c.wwatch.release(c.deadline()) // whatever a Send's ctx did, the close gets its bound
	if _, err := c.s.Write(appendFrame(nil, frameClose, closePayload(code, reason))); err != nil {
		c.s.Reset()
		return
	}
	_ = c.s.CloseWrite()
}

// readFailed records why the stream ended: a frame that broke the rules
// closes the channel with its code (the other side is told); anything else
// breaks it. The caller holds rlock.
func (c *Conn) readFailed(err error) {
	var fe *frameError
	switch {
	case errors.As(err, &fe):
		ce := &CloseError{Code: fe.code, Reason: fe.err.Error()}
		c.setErr(ce)
		c.bound()
		c.rwatch.release(c.deadline())
		c.sendClose(fe.code, truncate(fe.err.Error(), MaxCloseReason))
		_, _ = io.Copy(io.Discard, c.fr.r) // until the other side's close or the deadline
		c.s.Reset()
	case errors.Is(err, io.EOF):
		c.setErr(fmt.Errorf("%w: the stream ended without a close frame", ErrBroken))
		c.s.Reset()
	default:
		c.setErr(fmt.Errorf("%w: %w", ErrBroken, err))
		c.s.Reset()
	}
}

func (c *Conn) setErr(err error) {
	c.mu.Lock()
	if c.rerr == nil {
		c.rerr = err
	}
	c.mu.Unlock()
}

func (c *Conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rerr
}

func (c *Conn) touch() { c.last.Store(time.Now().UnixNano()) }

// closeWhenIdle closes the channel with CloseGoingAway once no message
// went either way for d.
func (c *Conn) closeWhenIdle(d time.Duration) {
	var check func()
	check = func() {
		left := d - time.Since(time.Unix(0, c.last.Load()))
		if left > 0 {
			c.idle.Reset(left)
			return
		}
		c.Close(CloseGoingAway, fmt.Sprintf("idle for %s", d))
	}
	c.idle = time.AfterFunc(d, check)
}
