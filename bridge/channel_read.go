package bridge

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/coder/websocket"
)

// websocketBinary is a binary WebSocket message.
const websocketBinary = websocket.MessageBinary

// What the session's read loop does with channel frames: it alone queues
// the page's messages and closes a channel's queue, so a channel's
// messages reach the provider in the order the page sent them.

// data queues one message of the page for its channel. A channel not open
// gets bad_request; a message over MaxMessageSize gets too_large and ends
// its channel (1009). The session's byte budget may pause the read loop
// here; so may a full queue of a provider that reads slowly.
func (s *session) data(ctx context.Context, id string, m Message) {
	cfg := &s.srv.cfg
	s.chans.mu.Lock()
	c := s.chans.open[id]
	s.chans.mu.Unlock()
	opened := false
	if c != nil {
		c.mu.Lock()
		opened = c.ch != nil && c.end == nil
		c.mu.Unlock()
	}
	switch {
	case c == nil || c.closed:
		s.srv.stats.refuse(ReasonBadFrame)
		s.sendErr(ctx, id, &Error{Code: CodeBadRequest, Message: "no open channel with this id"})
		return
	case len(m.Data) > cfg.MaxMessageSize:
		s.srv.stats.refuse(ReasonMessageSize)
		msg := fmt.Sprintf("message of %d bytes, over %d", len(m.Data), cfg.MaxMessageSize)
		s.sendErr(ctx, id, &Error{Code: CodeTooLarge, Message: msg})
		s.endChannel(c, CloseTooLarge, "message too large")
		return
	case !opened:
		s.srv.stats.refuse(ReasonBadFrame)
		s.sendErr(ctx, id, &Error{Code: CodeBadRequest, Message: "channel not open yet; wait for opened"})
		return
	}
	if err := s.chans.bytes.WaitN(ctx, len(m.Data)+messageOverhead); err != nil {
		return // the session ends
	}
	select {
	case c.queue <- m:
	case <-c.ctx.Done(): // the channel ended meanwhile; its close frame says so
	}
}

// closeChannel handles the page's close frame: the channel ends with the
// page's code (1000 by default) once the messages queued before it reached
// the provider; the bridge answers with a close frame. An unknown id is
// ignored, as a find's cancel is.
func (s *session) closeChannel(f *CloseFrame) {
	s.chans.mu.Lock()
	c := s.chans.open[f.ID]
	s.chans.mu.Unlock()
	if c == nil {
		return
	}
	code := f.Code
	if code == 0 {
		code = CloseNormal
	}
	s.endChannel(c, code, f.Reason)
}

// endChannel ends c with code and reason: an opening channel at once, an
// open one after its queue drained.
func (s *session) endChannel(c *bchan, code int, reason string) {
	if c.closed {
		return
	}
	c.ending(code, reason)
	c.closed = true
	c.mu.Lock()
	opened := c.ch != nil
	c.mu.Unlock()
	if opened {
		close(c.queue) // pumpOut drains it, then closes the provider's side
	} else {
		c.cancel() // the open stops; runChannel answers the close
	}
}

// binary handles a binary WebSocket message: one binary channel message.
func (s *session) binary(ctx context.Context, b []byte) {
	f, err := ParseBinaryFrame(b)
	if err != nil {
		s.srv.stats.refuse(ReasonBadFrame)
		s.sendErr(ctx, "", publicError(err))
		return
	}
	// f.Data is the session's read buffer; the message is queued: copy it.
	s.data(ctx, f.ID, Message{Binary: true, Data: bytes.Clone(f.Data)})
}

// announceClose tells the page that each of its channels ends with code
// and reason, before the bridge closes the WebSocket (shutdown).
func (s *session) announceClose(ctx context.Context, code int, reason string) {
	s.chans.mu.Lock()
	open := make([]*bchan, 0, len(s.chans.open))
	for _, c := range s.chans.open {
		open = append(open, c)
	}
	s.chans.mu.Unlock()
	for _, c := range open {
		end := c.ending(code, reason)
		c.mu.Lock()
		announced := c.announced
		c.announced = true
		c.mu.Unlock()
		if !announced {
			s.send(ctx, &CloseFrame{ID: c.id, Code: end.Code, Reason: end.Reason})
		}
	}
}

// readLimit is the largest WebSocket message a session reads: frames, and
// send frames and binary messages up to twice MaxMessageSize, so that an
// oversized message ends only its channel.
func (c *Config) readLimit() int {
	if c.Opener == nil {
		return c.MaxFrameSize
	}
	return c.MaxFrameSize + 2*c.MaxMessageSize
}

// frameTooLarge reports whether a message the session read is over its
// limit: MaxFrameSize for every JSON frame but send, readLimit for the rest.
func (c *Config) frameTooLarge(typ websocket.MessageType, b []byte) bool {
	switch {
	case len(b) > c.readLimit():
		return true
	case len(b) <= c.MaxFrameSize:
		return false
	case typ == websocket.MessageBinary:
		return false
	}
	return peekType(b) != TypeSend
}

// isChannelData reports whether f carries a channel message: those are
// bounded by ChannelBytesPerSecond, not by FramesPerSecond.
func isChannelData(typ websocket.MessageType, f ClientFrame) bool {
	if typ == websocket.MessageBinary {
		return true
	}
	_, ok := f.(*SendFrame)
	return ok
}

// serviceAllowed applies the Services allowlist.
func (s *Server) serviceAllowed(name string) bool {
	return s.services == nil || s.services[strings.ToLower(name)]
}

// startChannel takes one of the bridge's MaxChannelsTotal slots.
func (s *Server) startChannel() bool {
	for {
		n := s.stats.channels.Load()
		if n >= int64(s.cfg.MaxChannelsTotal) {
			return false
		}
		if s.stats.channels.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) endChannel() { s.stats.channels.Add(-1) }

// features is the welcome's list.
func (s *Server) features() []string {
	f := []string{FeatureFind}
	if s.cfg.Opener != nil {
		f = append(f, FeatureChannel)
	}
	if s.watcher != nil {
		f = append(f, FeatureWatch)
	}
	return f
}
