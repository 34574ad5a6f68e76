package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Opener is what the bridge needs from a node to serve channels.
//
// Open finds the providers of req.Service (only req.Peer when set, only
// those whose metadata holds every pair of req.Where) and opens a channel
// to the first that accepts, trying the next when one refuses or cannot be
// reached. It returns the channel and the accepting provider's verified
// record. When none accepts it returns an *Error whose Code is the last
// refusal's (forbidden, unavailable, busy, …), or not_found when there was
// no provider; ctx bounds the whole open (OpenTimeout). The node's adapter
// (the root package's bridge.go) implements it with netget.Node.Connect.
type Opener interface {
	Open(ctx context.Context, req OpenRequest) (Channel, Result, error)
}

// OpenRequest is what a page asked for, with what the bridge checked.
type OpenRequest struct {
	Service string
	Peer    string            // a peer ID, or "" for any provider
	Where   map[string]string // metadata the provider's record must hold; read-only
	Token   string            // the provider's channel token, from the page
	Origin  string            // the page's Origin as the bridge checked it ("" for non-browsers)
}

// Channel is one open channel to a provider, as the bridge uses it.
// Send and Receive may be called from two goroutines at once; Close may
// be called from any and more than once.
type Channel interface {
	// Send passes one message to the provider; it blocks while the
	// provider does not read (flow control), until ctx ends.
	Send(ctx context.Context, m Message) error
	// Receive returns the provider's next message; a *CloseError when the
	// provider closed the channel, another error when it was lost.
	Receive(ctx context.Context) (Message, error)
	// Close ends the channel, telling the provider code and reason.
	Close(code int, reason string) error
}

// Message is one channel message, text or binary.
type Message struct {
	Binary bool
	Data   []byte
}

// CloseError is what Channel.Receive returns once the provider closed the
// channel: its code and reason go to the page in a close frame.
type CloseError struct {
	Code   int
	Reason string
}

// Error says how the channel was closed.
func (e *CloseError) Error() string {
	return fmt.Sprintf("channel closed: %d %s", e.Code, e.Reason)
}

// messageOverhead is what each channel message costs in the session's
// byte budget besides its data: framing, and a floor for tiny messages.
const messageOverhead = 64

// channelQueue is how many messages from the page wait for a slow provider
// per channel; beyond it the session stops reading (flow control).
const channelQueue = 4

// channels are a session's channels.
type channels struct {
	mu    sync.Mutex
	open  map[string]*bchan // open or opening, by id
	bytes *rate.Limiter     // page → providers, all channels
}

func newChannels(cfg *Config) *channels {
	burst := max(cfg.ChannelBytesPerSecond, cfg.MaxMessageSize+messageOverhead)
	return &channels{open: make(map[string]*bchan),
		bytes: rate.NewLimiter(rate.Limit(cfg.ChannelBytesPerSecond), burst)}
}

// count returns how many channels are open or opening.
func (cs *channels) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.open)
}

// bchan is one channel of a session. The session's read loop owns queue
// (it alone sends on it and closes it); runChannel owns the rest.
type bchan struct {
	id     string
	ctx    context.Context // ends with the session, or when the channel does
	cancel context.CancelFunc
	queue  chan Message // page → provider
	closed bool         // queue closed; read loop only

	mu        sync.Mutex
	ch        Channel     // set once opened
	end       *CloseFrame // why it ends; the first reason wins
	announced bool        // its close frame was sent (bridge shutdown)

	// late is set as WriteTimeout cancels a Send the provider does not
	// read: the stream's reset that follows is then this cause (1011),
	// not a lost connection (1006), whichever pump notices first.
	late atomic.Bool
}

// ending records why c ends, unless a reason is already known, and
// returns the reason that holds.
func (c *bchan) ending(code int, reason string) *CloseFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.end == nil {
		c.end = &CloseFrame{ID: c.id, Code: code, Reason: reason}
	}
	return c.end
}

// open begins an open frame's channel: the checks, then its goroutine.
// Checks, in order: channels served, service allowlist, a unique id,
// MaxChannels, Filters at StageOpen, MaxChannelsTotal.
func (s *session) open(ctx context.Context, f *OpenFrame) {
	cfg := &s.srv.cfg
	refuse := func(reason Reason, e *Error) {
		s.srv.stats.refuse(reason)
		s.sendErr(ctx, f.ID, e)
	}
	if cfg.Opener == nil {
		refuse(ReasonChannelsOff, &Error{Code: CodeForbidden, Message: "this bridge serves no channels"})
		return
	}
	if !s.srv.serviceAllowed(f.Service) {
		refuse(ReasonService, &Error{Code: CodeForbidden, Message: "service not allowed on this bridge"})
		return
	}
	cs := s.chans
	cs.mu.Lock()
	_, dup := cs.open[f.ID]
	n := len(cs.open)
	cs.mu.Unlock()
	switch {
	case dup:
		refuse(ReasonBadFrame, &Error{Code: CodeBadRequest, Message: "a channel with this id is open"})
		return
	case n >= cfg.MaxChannels:
		refuse(ReasonChannels, &Error{Code: CodeRateLimited,
			Message: fmt.Sprintf("%d channels open; close one first", n)})
		return
	}
	s.req.Stage, s.req.Service, s.req.Peer, s.req.Where = StageOpen, f.Service, f.Peer, f.Where
	e := s.filter(ctx)
	s.req.Peer, s.req.Where = "", nil // a find's filter must not see them
	if e != nil {
		s.log.Debug("bridge filter refused open", "service", f.Service, "err", e)
		refuse(ReasonFilter, e)
		return
	}
	if !s.srv.startChannel() {
		refuse(ReasonChannelsTotal, &Error{Code: CodeBusy, Message: "the bridge has as many channels open as it may; retry later"})
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &bchan{id: f.ID, ctx: cctx, cancel: cancel, queue: make(chan Message, channelQueue)}
	cs.mu.Lock()
	cs.open[f.ID] = c
	cs.mu.Unlock()
	req := OpenRequest{Service: f.Service, Peer: f.Peer, Where: f.Where, Token: f.Token, Origin: s.req.Origin}
	s.wg.Go(func() { s.runChannel(ctx, c, req) })
}

// runChannel opens c, answers opened or error, then relays the provider's
// messages to the page until the channel ends, and tells the page how.
func (s *session) runChannel(ctx context.Context, c *bchan, req OpenRequest) {
	defer s.srv.endChannel()
	defer c.cancel()
	octx, cancel := context.WithTimeout(c.ctx, s.srv.cfg.OpenTimeout)
	ch, res, err := s.srv.cfg.Opener.Open(octx, req)
	cancel()
	if err != nil {
		s.forget(c)
		s.openFailed(ctx, c, req.Service, err)
		return
	}
	ch = &onceChannel{Channel: ch}
	c.mu.Lock()
	ended := c.end != nil
	c.ch = ch
	c.mu.Unlock()
	if !ended {
		s.srv.stats.channelsTotal.Add(1)
		if res.Record != nil && s.send(ctx, &OpenedFrame{ID: c.id, Peer: res.Record.Peer.String(), Record: recordOf(res.Record)}) != nil {
			s.cancel()
		}
		var writer sync.WaitGroup
		writer.Go(func() { s.pumpOut(c, ch) })
		s.pumpIn(ctx, c, ch)
		c.cancel()
		writer.Wait()
	}
	end := c.ending(CloseNormal, "")
	ch.Close(end.Code, end.Reason)
	s.forget(c)
	s.closed(ctx, c, end)
}

// openFailed answers a failed open: the page's own close when it closed
// the channel while it opened, else an error with a public code.
func (s *session) openFailed(ctx context.Context, c *bchan, service string, err error) {
	c.mu.Lock()
	end := c.end
	c.mu.Unlock()
	s.log.Debug("bridge open failed", "id", c.id, "service", service, "err", err)
	switch {
	case end != nil:
		s.closed(ctx, c, end)
	case errors.Is(err, context.DeadlineExceeded):
		s.sendErr(ctx, c.id, &Error{Code: CodeTimeout,
			Message: fmt.Sprintf("no provider of %s accepted within %s", service, s.srv.cfg.OpenTimeout), Err: err})
	default:
		e := publicError(err)
		if e.Code == CodeInternal {
			e = &Error{Code: CodeInternal, Message: "open failed", Err: err}
		}
		s.sendErr(ctx, c.id, e)
	}
}

// closed tells the page that c ended, unless the session is gone or the
// bridge said so already.
func (s *session) closed(ctx context.Context, c *bchan, end *CloseFrame) {
	c.mu.Lock()
	announced := c.announced
	c.mu.Unlock()
	if ctx.Err() == nil && !announced {
		s.send(ctx, &CloseFrame{ID: c.id, Code: end.Code, Reason: end.Reason})
	}
}

// pumpIn relays the provider's messages to the page until the channel
// ends, and records why it ended.
func (s *session) pumpIn(ctx context.Context, c *bchan, ch Channel) {
	for {
		m, err := ch.Receive(c.ctx)
		if err != nil {
			var ce *CloseError
			switch {
			case errors.As(err, &ce):
				c.ending(ce.Code, truncate(ce.Reason, MaxCloseReason))
			case ctx.Err() != nil:
				c.ending(CloseGoingAway, "bridge session ended")
			case c.late.Load():
				c.ending(CloseInternal, "the provider does not read")
			default:
				s.log.Debug("bridge channel lost", "id", c.id, "err", err)
				c.ending(CloseLost, "connection to the provider lost")
			}
			return
		}
		if err := s.deliver(ctx, c.id, m); err != nil {
			s.cancel() // the page does not read: the session ends
			return
		}
		s.srv.stats.messagesOut.Add(1)
	}
}

// deliver writes one provider message to the page within WriteTimeout.
func (s *session) deliver(ctx context.Context, id string, m Message) error {
	if !m.Binary {
		return s.send(ctx, &MessageFrame{ID: id, Data: string(m.Data)})
	}
	b := AppendBinaryFrame(make([]byte, 0, 2+len(id)+len(m.Data)), BinaryFrame{ID: id, Data: m.Data})
	return s.writeMessage(ctx, websocketBinary, b)
}

// pumpOut passes the page's queued messages to the provider, each within
// WriteTimeout (a provider that reads nothing for that long ends the
// channel, 1011); once the page closed the channel (queue closed), it
// closes the provider's side with the page's code.
func (s *session) pumpOut(c *bchan, ch Channel) {
	// One ctx for every Send, cancelled by a timer that each Send arms:
	// no ctx and timer made per message, and a Send's ctx that stays the
	// same is what lets the channel keep one deadline watch.
	var (
		sctx   context.Context
		cancel context.CancelFunc
		late   *time.Timer
	)
	arm := func() {
		sctx, cancel = context.WithCancel(c.ctx)
		stop := cancel
		late = time.AfterFunc(time.Hour, func() { c.late.Store(true); stop() })
		late.Stop()
	}
	arm()
	defer func() { cancel() }()
	for {
		select {
		case <-c.ctx.Done():
			return
		case m, ok := <-c.queue:
			if !ok {
				end := c.ending(CloseNormal, "")
				ch.Close(end.Code, end.Reason) // Receive returns; pumpIn ends
				return
			}
			late.Reset(s.srv.cfg.WriteTimeout)
			err := ch.Send(sctx, m)
			if !late.Stop() && err == nil {
				// WriteTimeout passed just as the Send returned: it made it,
				// and the next Send gets a ctx of its own.
				c.late.Store(false)
				arm()
			}
			if s.sent(c, m, err) != nil {
				c.cancel()
				return
			}
		}
	}
}

// sent accounts for one Send of pumpOut: a message over the provider's
// limit ends the channel with too_large, a provider that did not read it
// within WriteTimeout with 1011.
func (s *session) sent(c *bchan, m Message, err error) error {
	switch {
	case err == nil:
		s.srv.stats.messagesIn.Add(1)
		return nil
	case errors.Is(err, ErrMessageTooLarge):
		s.srv.stats.refuse(ReasonMessageSize)
		s.sendErr(c.ctx, c.id, &Error{Code: CodeTooLarge,
			Message: fmt.Sprintf("message of %d bytes, over the provider's limit", len(m.Data))})
		c.ending(CloseTooLarge, "message too large")
	case c.ctx.Err() == nil:
		s.log.Debug("bridge channel send failed", "id", c.id, "err", err)
		c.ending(CloseInternal, "the provider does not read")
	}
	return err
}

// forget removes c from the session's channels.
func (s *session) forget(c *bchan) {
	s.chans.mu.Lock()
	if s.chans.open[c.id] == c {
		delete(s.chans.open, c.id)
	}
	s.chans.mu.Unlock()
}

// onceChannel closes its Channel once, whoever asks first.
type onceChannel struct {
	Channel
	once sync.Once
	err  error
}

func (o *onceChannel) Close(code int, reason string) error {
	o.once.Do(func() { o.err = o.Channel.Close(code, reason) })
	return o.err
}
