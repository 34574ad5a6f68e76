package bridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/record"
)

// fakeOpener is a node's channel side without the network: each service
// is a provider that echoes (or joins a chat hub, or refuses, or never
// answers), and every channel is a pair of Go channels.
type fakeOpener struct {
	t       testing.TB
	refuse  map[string]*bridge.Error // service → refusal
	hold    map[string]bool          // services whose open waits for ctx
	hub     *chatHub                 // services in chat join it; nil: echo
	chat    map[string]bool
	records map[string]*record.Service

	mu    sync.Mutex
	reqs  []bridge.OpenRequest
	chans []*fakeChan
}

func newFakeOpener(t testing.TB) *fakeOpener {
	return &fakeOpener{t: t, refuse: map[string]*bridge.Error{}, hold: map[string]bool{},
		chat: map[string]bool{}, records: map[string]*record.Service{}}
}

func (o *fakeOpener) Open(ctx context.Context, req bridge.OpenRequest) (bridge.Channel, bridge.Result, error) {
	o.mu.Lock()
	o.reqs = append(o.reqs, req)
	o.mu.Unlock()
	if e := o.refuse[req.Service]; e != nil {
		return nil, bridge.Result{}, e
	}
	if o.hold[req.Service] {
		<-ctx.Done()
		return nil, bridge.Result{}, ctx.Err()
	}
	o.mu.Lock()
	rec := o.records[req.Service]
	if rec == nil {
		rec = newRecord(o.t, req.Service, map[string]string{"kind": "echo"})
		o.records[req.Service] = rec
	}
	c := newFakeChan()
	o.chans = append(o.chans, c)
	o.mu.Unlock()
	if o.chat[req.Service] && o.hub != nil {
		o.hub.join(c)
	} else {
		go c.echo()
	}
	return c, bridge.Result{Record: rec, Source: "registry"}, nil
}

// lastChan returns the provider side of the last channel opened.
func (o *fakeOpener) lastChan() *fakeChan {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.chans) == 0 {
		o.t.Fatal("no channel opened")
	}
	return o.chans[len(o.chans)-1]
}

func (o *fakeOpener) requests() []bridge.OpenRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]bridge.OpenRequest(nil), o.reqs...)
}

// fakeChan is one channel: the bridge's side implements bridge.Channel,
// the provider's side is toProvider / fromProvider and the kill switches.
type fakeChan struct {
	toProvider   chan bridge.Message
	fromProvider chan bridge.Message
	done         chan struct{} // closed by Close (the bridge's side)
	remote       chan *bridge.CloseError
	lost         chan struct{}

	once     sync.Once
	code     int
	reason   string
	lostOnce sync.Once
}

func newFakeChan() *fakeChan {
	return &fakeChan{toProvider: make(chan bridge.Message, 1), fromProvider: make(chan bridge.Message, 1),
		done: make(chan struct{}), remote: make(chan *bridge.CloseError, 1), lost: make(chan struct{})}
}

var errChanClosed = errors.New("channel closed")

func (c *fakeChan) Send(ctx context.Context, m bridge.Message) error {
	select {
	case c.toProvider <- m:
		return nil
	case <-c.done:
		return errChanClosed
	case <-c.lost:
		return errors.New("stream reset")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *fakeChan) Receive(ctx context.Context) (bridge.Message, error) {
	select {
	case m := <-c.fromProvider:
		return m, nil
	case e := <-c.remote:
		return bridge.Message{}, e
	case <-c.lost:
		return bridge.Message{}, errors.New("stream reset")
	case <-c.done:
		return bridge.Message{}, errChanClosed
	case <-ctx.Done():
		return bridge.Message{}, ctx.Err()
	}
}

func (c *fakeChan) Close(code int, reason string) error {
	c.once.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
	})
	return nil
}

// closedWith waits for the bridge to close the channel and returns how.
func (c *fakeChan) closedWith(t testing.TB) (int, string) {
	t.Helper()
	eventually(t, "the bridge to close the provider's channel", func() bool {
		select {
		case <-c.done:
			return true
		default:
			return false
		}
	})
	return c.code, c.reason
}

// kill makes the provider vanish: Send and Receive fail.
func (c *fakeChan) kill() { c.lostOnce.Do(func() { close(c.lost) }) }

// echo sends every message back until the channel ends.
func (c *fakeChan) echo() {
	for {
		select {
		case m := <-c.toProvider:
			select {
			case c.fromProvider <- m:
			case <-c.done:
				return
			case <-c.lost:
				return
			}
		case <-c.done:
			return
		case <-c.lost:
			return
		}
	}
}

// chatHub relays each member's messages to every member.
type chatHub struct {
	mu      sync.Mutex
	members []*fakeChan
}

func (h *chatHub) join(c *fakeChan) {
	h.mu.Lock()
	h.members = append(h.members, c)
	h.mu.Unlock()
	go func() {
		for {
			select {
			case m := <-c.toProvider:
				h.mu.Lock()
				members := append([]*fakeChan(nil), h.members...)
				h.mu.Unlock()
				for _, o := range members {
					select {
					case o.fromProvider <- m:
					case <-o.done:
					case <-o.lost:
					}
				}
			case <-c.done:
				return
			case <-c.lost:
				return
			}
		}
	}()
}

// channelConfig is testConfig with channels served by o.
func channelConfig(o bridge.Opener) bridge.Config {
	cfg := testConfig()
	cfg.Opener = o
	return cfg
}

// open sends an open frame and returns the opened frame.
func (c *client) open(id, service string) *bridge.OpenedFrame {
	c.t.Helper()
	c.send(&bridge.OpenFrame{ID: id, Service: service})
	f := c.next()
	o, ok := f.(*bridge.OpenedFrame)
	if !ok || o.ID != id {
		c.t.Fatalf("after open %s: got %#v, want opened", id, f)
	}
	return o
}

// sendBinary writes one binary channel message.
func (c *client) sendBinary(id string, data []byte) {
	c.t.Helper()
	c.sendRaw(websocket.MessageBinary, bridge.AppendBinaryFrame(nil, bridge.BinaryFrame{ID: id, Data: data}))
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.conn.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// nextAny reads the next frame, text or binary: a binary one comes
// back as a *bridge.BinaryFrame.
func (c *client) nextAny() any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ == websocket.MessageBinary {
		f, err := bridge.ParseBinaryFrame(b)
		if err != nil {
			c.t.Fatalf("binary frame %x: %v", b, err)
		}
		return &f
	}
	f, err := bridge.ParseServerFrame(b)
	if err != nil {
		c.t.Fatalf("parse %s: %v", b, err)
	}
	return f
}

// expectClose reads a close frame for id and checks its code.
func (c *client) expectClose(id string, code int) *bridge.CloseFrame {
	c.t.Helper()
	f := c.next()
	cf, ok := f.(*bridge.CloseFrame)
	if !ok || cf.ID != id || cf.Code != code {
		c.t.Fatalf("got %#v, want close id %q code %d", f, id, code)
	}
	return cf
}
