package channel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/channel"
)

// TestReceiveCancelledMidFrame: Receive reads the stream itself; a
// Receive whose ctx ends while a frame is half there returns ctx's error,
// and the next Receive returns the whole message: nothing is lost, the
// channel stays open.
func TestReceiveCancelledMidFrame(t *testing.T) {
	p := newProvider(t, channel.Config{})
	first := make(chan error, 1)
	type got struct {
		m   channel.Message
		err error
	}
	second := make(chan got, 1)
	p.handle(t, "Half", channel.Accept(func(ctx context.Context, c *channel.Conn) {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := c.Receive(rctx)
		cancel()
		first <- err
		m, err := c.Receive(ctx)
		second <- got{m, err}
	}))
	ctx := testCtx(t)
	s := rawOpen(t, ctx, p, "Half")
	s.Write([]byte{1, 10, 'h', 'e', 'l', 'l', 'o'}) // a text frame of 10 bytes, 5 of them
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with half a frame = %v, want its ctx's deadline", err)
	}
	s.Write([]byte("world"))
	g := <-second
	if g.err != nil || g.m.Type != channel.Text || string(g.m.Data) != "helloworld" {
		t.Fatalf("next Receive = %v %q, %v; want text helloworld", g.m.Type, g.m.Data, g.err)
	}
}

// plainRWC hides a connection's deadlines and half close, as the daemon's
// upgraded HTTP body does.
type plainRWC struct{ c net.Conn }

func (p plainRWC) Read(b []byte) (int, error)  { return p.c.Read(b) }
func (p plainRWC) Write(b []byte) (int, error) { return p.c.Write(b) }
func (p plainRWC) Close() error                { return p.c.Close() }

// TestLocalReceiveCancelled: a Conn over a local connection without
// deadlines (NewLocal) also survives a cancelled Receive: the next one gets
// the message sent after it, and Close still runs its closing handshake.
func TestLocalReceiveCancelled(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := channel.NewLocal(plainRWC{a}, peer.ID("p"), channel.Claims{Service: "Echo"}, 1<<10, 1<<10)
	ctx := testCtx(t)
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Receive(rctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Receive = %v, want context.Canceled", err)
	}
	rctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := c.Receive(rctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with nothing sent = %v, want its ctx's deadline", err)
	}
	go b.Write([]byte{2, 3, 7, 8, 9}) // a binary frame of 3 bytes
	m, err := c.Receive(ctx)
	if err != nil || m.Type != channel.Binary || string(m.Data) != "\x07\x08\x09" {
		t.Fatalf("Receive = %v %x, %v; want binary 070809", m.Type, m.Data, err)
	}
	// The other end reads the close frame and answers with its own.
	closeFrame := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4)
		io.ReadFull(b, buf)
		closeFrame <- buf
		b.Write([]byte{8, 2, 0x03, 0xe8})
	}()
	c.Close(channel.CloseNormal, "")
	if got := <-closeFrame; string(got) != "\x08\x02\x03\xe8" {
		t.Fatalf("the other end read %x, want the close frame 080203e8", got)
	}
	if _, err := c.Receive(ctx); !errors.Is(err, channel.ErrClosed) {
		t.Fatalf("Receive after Close = %v, want ErrClosed", err)
	}
}
