package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
)

// TestChannelEcho: a page opens a channel, a text and a binary message
// come back from the provider, and its close is answered; the provider
// got the page's Origin as the bridge checked it, and the welcome lists
// the feature and the limits.
func TestChannelEcho(t *testing.T) {
	op := newFakeOpener(t)
	s := startServer(t, newFakeFinder(t), channelConfig(op))
	c := dial(t, s, dialOpts{origin: "http://localhost:5173"})
	w := c.hello("")
	if !slices.Contains(w.Features, bridge.FeatureChannel) || w.Limits.MessageBytes != bridge.DefaultMaxMessageSize ||
		w.Limits.Channels != bridge.DefaultMaxChannels {
		t.Fatalf("welcome %+v: want the channel feature and limits", w)
	}
	c.send(&bridge.OpenFrame{ID: "c1", Service: "ChatService", Where: map[string]string{"room": "lobby"}, Token: "t0k"})
	o, ok := c.next().(*bridge.OpenedFrame)
	if !ok || o.ID != "c1" || o.Peer == "" || o.Record.Peer != o.Peer || o.Record.Service != "ChatService" {
		t.Fatalf("got %#v, want opened c1 with the provider's record", o)
	}
	reqs := op.requests()
	want := bridge.OpenRequest{Service: "ChatService", Where: map[string]string{"room": "lobby"}, Token: "t0k",
		Origin: "http://localhost:5173"}
	if len(reqs) != 1 || fmt.Sprint(reqs[0]) != fmt.Sprint(want) {
		t.Fatalf("opener got %+v, want %+v", reqs, want)
	}

	c.send(&bridge.SendFrame{ID: "c1", Data: "héllo"})
	if m, ok := c.nextAny().(*bridge.MessageFrame); !ok || m.ID != "c1" || m.Data != "héllo" {
		t.Fatalf("got %#v, want message c1 héllo", m)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, '{'}
	c.sendBinary("c1", bin)
	if m, ok := c.nextAny().(*bridge.BinaryFrame); !ok || m.ID != "c1" || !bytes.Equal(m.Data, bin) {
		t.Fatalf("got %#v, want binary c1 %x", m, bin)
	}

	c.send(&bridge.CloseFrame{ID: "c1", Code: 4000, Reason: "done"})
	if cf := c.expectClose("c1", 4000); cf.Reason != "done" {
		t.Fatalf("close echo %+v, want reason done", cf)
	}
	if code, reason := op.lastChan().closedWith(t); code != 4000 || reason != "done" {
		t.Fatalf("provider saw close %d %q, want 4000 done", code, reason)
	}
	// The id is free again.
	c.open("c1", "ChatService")
	st := s.Stats()
	if st.ChannelsTotal != 2 || st.MessagesIn != 2 || st.MessagesOut != 2 {
		t.Fatalf("stats %+v: want 2 channels, 2 messages each way", st)
	}
}

// TestChannelRefusals: each refusal reaches the page as an error frame
// with the provider's code, or the bridge's own.
func TestChannelRefusals(t *testing.T) {
	op := newFakeOpener(t)
	op.refuse["Forbidden"] = &bridge.Error{Code: bridge.CodeForbidden, Message: "origin not allowed by the provider"}
	op.refuse["Down"] = &bridge.Error{Code: bridge.CodeUnavailable, Message: "the provider's target is not listening"}
	op.refuse["Nobody"] = &bridge.Error{Code: bridge.CodeNotFound, Message: "no provider of Nobody found"}
	op.hold["Slow"] = true
	cfg := channelConfig(op)
	cfg.OpenTimeout = 300 * time.Millisecond
	cfg.Services = []string{"Forbidden", "Down", "Nobody", "Slow", "Echo"}
	cfg.Filters = []bridge.Filter{bridge.FilterFunc(func(_ context.Context, r *bridge.Request) error {
		if r.Stage == bridge.StageOpen && r.Peer == "12D3KooWBanned" {
			return &bridge.Error{Code: bridge.CodeForbidden, Message: "peer banned here"}
		}
		return nil
	})}
	s := startServer(t, newFakeFinder(t), cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	tests := []struct {
		name  string
		frame any
		code  bridge.Code
	}{
		{"provider forbids", &bridge.OpenFrame{ID: "a", Service: "Forbidden"}, bridge.CodeForbidden},
		{"target down", &bridge.OpenFrame{ID: "b", Service: "Down"}, bridge.CodeUnavailable},
		{"no provider", &bridge.OpenFrame{ID: "c", Service: "Nobody"}, bridge.CodeNotFound},
		{"open timeout", &bridge.OpenFrame{ID: "d", Service: "Slow"}, bridge.CodeTimeout},
		{"service allowlist", &bridge.OpenFrame{ID: "e", Service: "Other"}, bridge.CodeForbidden},
		{"filter", &bridge.OpenFrame{ID: "f", Service: "Echo", Peer: "12D3KooWBanned"}, bridge.CodeForbidden},
		{"bad where", `{"type":"open","id":"g","service":"Echo","where":{"":"x"}}`, bridge.CodeBadRequest},
		{"send unknown id", &bridge.SendFrame{ID: "zz", Data: "x"}, bridge.CodeBadRequest},
		{"bad close code", `{"type":"close","id":"h","code":1006}`, bridge.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.send(tt.frame)
			id := map[string]string{"bad where": "g", "send unknown id": "zz", "bad close code": "h"}[tt.name]
			if f, ok := tt.frame.(*bridge.OpenFrame); ok {
				id = f.ID
			}
			c.expectError(id, tt.code)
		})
	}
	t.Run("binary garbage", func(t *testing.T) {
		c.t = t
		c.sendRaw(websocket.MessageBinary, []byte{0x07, 0x00})
		c.expectError("", bridge.CodeBadRequest)
	})
	t.Run("no opener", func(t *testing.T) {
		s := startServer(t, newFakeFinder(t), testConfig())
		c := dial(t, s, dialOpts{})
		if w := c.hello(""); slices.Contains(w.Features, bridge.FeatureChannel) || w.Limits.MessageBytes != 0 {
			t.Fatalf("welcome %+v lists channels without an opener", w)
		}
		c.send(&bridge.OpenFrame{ID: "a", Service: "Echo"})
		c.expectError("a", bridge.CodeForbidden)
	})
	c.t = t
	c.open("ok", "Echo") // the session survived every refusal
}

// TestChannelTooLarge: a message over MaxMessageSize, text or binary,
// gets too_large and closes its channel (1009), and only that one: the
// other channel and the session go on.
func TestChannelTooLarge(t *testing.T) {
	op := newFakeOpener(t)
	cfg := channelConfig(op)
	cfg.MaxMessageSize = 1024
	s := startServer(t, newFakeFinder(t), cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.open("big", "Echo")
	bigProvider := op.lastChan()
	c.open("small", "Echo")
	c.open("bin", "Echo")
	binProvider := op.lastChan()

	c.send(&bridge.SendFrame{ID: "big", Data: strings.Repeat("x", 1025)})
	c.expectError("big", bridge.CodeTooLarge)
	c.expectClose("big", bridge.CloseTooLarge)
	if code, _ := bigProvider.closedWith(t); code != bridge.CloseTooLarge {
		t.Fatalf("provider saw close %d, want %d", code, bridge.CloseTooLarge)
	}
	c.sendBinary("bin", make([]byte, 2000))
	c.expectError("bin", bridge.CodeTooLarge)
	c.expectClose("bin", bridge.CloseTooLarge)
	if code, _ := binProvider.closedWith(t); code != bridge.CloseTooLarge {
		t.Fatalf("provider saw close %d, want %d", code, bridge.CloseTooLarge)
	}

	c.send(&bridge.SendFrame{ID: "small", Data: strings.Repeat("y", 1024)})
	if m, ok := c.nextAny().(*bridge.MessageFrame); !ok || len(m.Data) != 1024 {
		t.Fatalf("got %#v, want the 1024-byte echo on the other channel", m)
	}
	// Beyond twice the limit the session itself closes, as for any frame.
	c.send(&bridge.SendFrame{ID: "small", Data: strings.Repeat("z", cfg.MaxFrameSize+2*1024+1)})
	c.expectError("", bridge.CodeTooLarge)
	c.expectClosed(websocket.StatusMessageTooBig)
	if got := s.Stats().Refusals[bridge.ReasonMessageSize]; got != 2 {
		t.Fatalf("message_size refusals %d, want 2", got)
	}
}

// TestChannelOpenFlood: opens beyond MaxChannels get rate_limited, beyond
// the frame rate rate_limited, beyond MaxChannelsTotal busy; closing a
// channel frees its slot.
func TestChannelOpenFlood(t *testing.T) {
	op := newFakeOpener(t)
	cfg := channelConfig(op)
	cfg.MaxChannels, cfg.MaxChannelsTotal = 2, 3
	cfg.FramesPerSecond, cfg.FrameBurst = 1, 6
	s := startServer(t, newFakeFinder(t), cfg)
	c := dial(t, s, dialOpts{})
	c.hello("") // hello is not rate-limited: the burst is still 6
	c.open("a", "Echo")
	c.open("b", "Echo")
	c.send(&bridge.OpenFrame{ID: "c", Service: "Echo"})
	c.expectError("c", bridge.CodeRateLimited)

	other := dial(t, s, dialOpts{})
	other.hello("")
	other.open("x", "Echo")
	other.send(&bridge.OpenFrame{ID: "y", Service: "Echo"})
	other.expectError("y", bridge.CodeBusy)

	c.send(&bridge.CloseFrame{ID: "a"})
	c.expectClose("a", bridge.CloseNormal)
	// The burst is spent now: a flood of opens is refused frame by frame.
	for i := range 3 {
		c.send(&bridge.OpenFrame{ID: fmt.Sprintf("f%d", i), Service: "Echo"})
	}
	var codes []bridge.Code
	for range 3 {
		switch f := c.next().(type) {
		case *bridge.ErrorFrame:
			codes = append(codes, f.Code)
		case *bridge.OpenedFrame:
			codes = append(codes, "opened")
		}
	}
	if !slices.Contains(codes, bridge.CodeRateLimited) {
		t.Fatalf("a flood of opens got %v, want rate_limited among them", codes)
	}
	st := s.Stats()
	// channels_total: "y", and on a slow machine a flood open the frame
	// rate let through (its bucket refills at 1/s) that found the bridge full.
	if st.Refusals[bridge.ReasonChannels] == 0 || st.Refusals[bridge.ReasonChannelsTotal] < 1 || st.Refusals[bridge.ReasonRate] == 0 {
		t.Fatalf("refusals %v: want channels > 0, channels_total ≥ 1, rate > 0", st.Refusals)
	}
}

// TestChannelProviderEnds: a provider's close reaches the page with its
// code; a provider that vanishes (killed) gives close 1006.
func TestChannelProviderEnds(t *testing.T) {
	op := newFakeOpener(t)
	s := startServer(t, newFakeFinder(t), channelConfig(op))
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.open("a", "Echo")
	op.lastChan().remote <- &bridge.CloseError{Code: 4001, Reason: "room closed"}
	if cf := c.expectClose("a", 4001); cf.Reason != "room closed" {
		t.Fatalf("close %+v, want reason room closed", cf)
	}
	c.open("b", "Echo")
	op.lastChan().kill()
	c.expectClose("b", bridge.CloseLost)
	if got := s.Stats().Channels; got != 0 {
		eventually(t, "no channel left open", func() bool { return s.Stats().Channels == 0 })
	}
}

// TestChannelShutdown: on shutdown every open channel gets a close frame
// (1001) before the WebSocket closes, and the provider's side is closed.
func TestChannelShutdown(t *testing.T) {
	op := newFakeOpener(t)
	s := startServer(t, newFakeFinder(t), channelConfig(op))
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.open("a", "Echo")
	pa := op.lastChan()
	c.open("b", "Echo")
	pb := op.lastChan()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	got := map[string]int{}
	for range 2 {
		cf, ok := c.next().(*bridge.CloseFrame)
		if !ok {
			t.Fatalf("got %#v, want a close frame", cf)
		}
		got[cf.ID] = cf.Code
	}
	if got["a"] != bridge.CloseGoingAway || got["b"] != bridge.CloseGoingAway {
		t.Fatalf("close frames %v, want a and b with 1001", got)
	}
	c.expectClosed(websocket.StatusGoingAway)
	for _, p := range []*fakeChan{pa, pb} {
		if code, _ := p.closedWith(t); code != bridge.CloseGoingAway {
			t.Fatalf("provider saw close %d, want 1001", code)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestChannelByteBudget: a page over ChannelBytesPerSecond is slowed down,
// not cut off: every message arrives, in order, and no sooner than the
// budget allows.
func TestChannelByteBudget(t *testing.T) {
	op := newFakeOpener(t)
	cfg := channelConfig(op)
	cfg.MaxMessageSize, cfg.ChannelBytesPerSecond = 256, 2000
	s := startServer(t, newFakeFinder(t), cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.open("a", "Echo")
	const n, size = 12, 200 // 12 × (200 + 64) = 3168 bytes against a 2000-byte burst
	start := time.Now()
	go func() {
		for i := range n {
			c.send(&bridge.SendFrame{ID: "a", Data: fmt.Sprintf("%03d", i) + strings.Repeat(".", size-3)})
		}
	}()
	for i := range n {
		m, ok := c.nextAny().(*bridge.MessageFrame)
		if !ok || !strings.HasPrefix(m.Data, fmt.Sprintf("%03d", i)) {
			t.Fatalf("message %d: got %#v", i, m)
		}
	}
	// The limiter cannot let 3168 bytes through a 2000 B/s budget with a
	// 2000-byte burst in less than (3168-2000)/2000 s.
	if el, min := time.Since(start), 584*time.Millisecond-50*time.Millisecond; el < min {
		t.Fatalf("12 messages passed in %s, under the budget's floor %s", el, min)
	}
	if st := s.Stats(); st.Refusals[bridge.ReasonRate] != 0 {
		t.Fatalf("channel messages counted against the frame rate: %v", st.Refusals)
	}
}

// TestChannelClosedWhileOpening: a page that closes a channel before it
// opened gets its close echoed, and the open is abandoned.
func TestChannelClosedWhileOpening(t *testing.T) {
	op := newFakeOpener(t)
	op.hold["Slow"] = true
	s := startServer(t, newFakeFinder(t), channelConfig(op))
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.send(&bridge.OpenFrame{ID: "a", Service: "Slow"})
	eventually(t, "the open to reach the opener", func() bool { return len(op.requests()) == 1 })
	c.send(&bridge.SendFrame{ID: "a", Data: "early"})
	c.expectError("a", bridge.CodeBadRequest)
	c.send(&bridge.CloseFrame{ID: "a", Reason: "changed my mind"})
	c.expectClose("a", bridge.CloseNormal)
	eventually(t, "the channel slot to be freed", func() bool { return s.Stats().Channels == 0 })
}

// TestChannelKeepsSessionAlive: a session with an open channel is not
// closed as idle, however quiet; once the channel ends it is.
func TestChannelKeepsSessionAlive(t *testing.T) {
	op := newFakeOpener(t)
	cfg := channelConfig(op)
	cfg.IdleTimeout = 100 * time.Millisecond
	s := startServer(t, newFakeFinder(t), cfg)
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.open("a", "Echo")
	p := op.lastChan()
	// Three idle timeouts pass with the channel open (the time passing is
	// what is tested, not a synchronisation): the provider's message
	// still reaches the page on the same session.
	<-time.After(3 * cfg.IdleTimeout)
	p.fromProvider <- bridge.Message{Data: []byte("still here")}
	if m, ok := c.nextAny().(*bridge.MessageFrame); !ok || m.Data != "still here" {
		t.Fatalf("got %#v, want the provider's message", m)
	}
	p.remote <- &bridge.CloseError{Code: 1000}
	c.expectClose("a", 1000)
	c.expectError("", bridge.CodeIdle)
}

// TestChannelBinaryBurstKeepsBytes: binary messages sent back to back
// each arrive intact. The session reads every frame into one reused
// buffer, and a channel message waits in the channel's queue after the
// next read: it must be a copy.
func TestChannelBinaryBurstKeepsBytes(t *testing.T) {
	op := newFakeOpener(t)
	s := startServer(t, newFakeFinder(t), channelConfig(op))
	c := dial(t, s, dialOpts{})
	c.hello("")
	c.open("b", "Echo")
	const n = 32
	for i := range n {
		c.sendBinary("b", bytes.Repeat([]byte{byte(i)}, 100+i))
	}
	for i := range n {
		m, ok := c.nextAny().(*bridge.BinaryFrame)
		if !ok || !bytes.Equal(m.Data, bytes.Repeat([]byte{byte(i)}, 100+i)) {
			t.Fatalf("message %d: got %#v, want %d bytes of %d", i, m, 100+i, i)
		}
	}
}
