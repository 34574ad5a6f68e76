package channel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/record"
)

// Handler decides whether to open a channel for a service, seeing the
// opener's Claims before anything reaches the service: it returns the
// ServeFunc that serves the accepted channel, or an error that refuses it
// (a *RefusedError, from Refuse, sends its code and reason; any other
// error refuses with CodeUnavailable, its text kept in the provider's
// log). ctx is bounded by Config.OpenTimeout.
type Handler func(ctx context.Context, cl Claims) (ServeFunc, error)

// ServeFunc serves one accepted channel. The channel is closed with
// CloseNormal when it returns, unless it was closed already; ctx ends when
// the node closes.
type ServeFunc func(ctx context.Context, c *Conn)

// Accept returns a Handler that accepts every channel and serves it with
// f.
func Accept(f ServeFunc) Handler {
	return func(context.Context, Claims) (ServeFunc, error) { return f, nil }
}

// Server is the provider side of the channel protocol on one host: the
// handlers of the services it serves, the admission limits of Config, and
// the channels it serves, which Close ends.
type Server struct {
	host  host.Host
	proto protocol.ID
	cfg   Config
	log   *slog.Logger
	rate  *registry.Limiter // opens per opener peer
	ctx   context.Context   // ends at Close
	stop  context.CancelFunc

	mu       sync.Mutex
	handlers map[string]Handler // by lowercased service name
	open     int                // channels opening or open
	perPeer  map[peer.ID]int
	conns    map[*Conn]struct{}
	closed   bool
	wg       sync.WaitGroup // stream handlers
}

// NewServer serves the channel protocol of network on h, bounded by cfg.
// It serves no service until Handle.
func NewServer(h host.Host, network string, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		host: h, proto: Protocol(network), cfg: cfg, log: cfg.Logger, ctx: ctx, stop: stop,
		rate:     registry.NewLimiter(cfg.OpenRate, cfg.OpenBurst),
		handlers: make(map[string]Handler), perPeer: make(map[peer.ID]int), conns: make(map[*Conn]struct{}),
	}
	h.SetStreamHandler(s.proto, s.handleStream)
	return s, nil
}

// Handle serves channels for service with h, replacing the handler it had;
// a nil h stops serving it (channels open stay open).
func (s *Server) Handle(service string, h Handler) error {
	if err := record.ValidateName(service); err != nil {
		return fmt.Errorf("handle: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if h == nil {
		delete(s.handlers, strings.ToLower(service))
	} else {
		s.handlers[strings.ToLower(service)] = h
	}
	return nil
}

// Handles reports whether the server has a handler for service.
func (s *Server) Handles(service string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handlers[strings.ToLower(service)] != nil
}

// Open returns the number of channels the server has open or opening.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Close stops taking channels and closes those open with CloseGoingAway,
// concurrently, each bounded by its closing handshake (two seconds), then
// waits for their handlers. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.host.RemoveStreamHandler(s.proto)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.Close(CloseGoingAway, "node closing") })
	}
	wg.Wait()
	s.stop()
	s.wg.Wait()
	return nil
}

// admit takes a channel slot for p, or says why not.
func (s *Server) admit(p peer.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Refuse(CodeUnavailable, "node closing")
	case !s.rate.Allow(p):
		return Refuse(CodeRateLimited, "more than %g channels a second from your peer", s.cfg.OpenRate)
	case s.open >= s.cfg.MaxChannels:
		return Refuse(CodeBusy, "%d channels open, the most this provider serves", s.open)
	case s.perPeer[p] >= s.cfg.MaxChannelsPerPeer:
		return Refuse(CodeBusy, "%d channels open from your peer, the most this provider allows", s.perPeer[p])
	}
	s.open++
	s.perPeer[p]++
	s.wg.Add(1)
	return nil
}

// release gives back p's slot.
func (s *Server) release(p peer.ID) {
	s.mu.Lock()
	s.open--
	if s.perPeer[p]--; s.perPeer[p] <= 0 {
		delete(s.perPeer, p)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// handleStream serves one channel: admission, the open request, the
// handler's decision, then the channel until its ServeFunc returns.
func (s *Server) handleStream(st network.Stream) {
	remote := st.Conn().RemotePeer()
	log := s.log.With("peer", remote, "protocol", st.Protocol())
	if err := st.Scope().SetService(ServiceName); err != nil {
		log.Debug("channel stream refused by resource manager", "err", err)
		st.Reset()
		return
	}
	full := s.admit(remote)
	if full == nil {
		defer s.release(remote)
	}
	// The request is read even to refuse it: a refusal written while it
	// is still on its way could be lost to the stream's reset.
	_ = st.SetDeadline(time.Now().Add(s.cfg.OpenTimeout))
	br := bufio.NewReaderSize(st, readBuffer)
	b, err := readJSON(br)
	if err != nil {
		log.Info("channel stream reset: bad open request", "err", fmt.Errorf("%w: %w", ErrBadMessage, err))
		st.Reset()
		return
	}
	req, err := decodeOpen(b)
	if err != nil {
		log.Info("channel stream reset: bad open request", "err", err)
		st.Reset()
		return
	}
	if full != nil {
		s.refuse(st, log, full)
		return
	}
	cl := Claims{Service: req.Service, Origin: req.Origin, Token: req.Token, Peer: remote}
	serve, err := s.decide(cl)
	if err != nil {
		s.refuse(st, log.With("service", req.Service), err)
		return
	}
	if err := writeJSON(st, openResponse{OK: true, MaxMessage: s.cfg.MaxMessageSize}); err != nil {
		log.Debug("channel accept not sent", "err", err)
		st.Reset()
		return
	}
	_ = st.SetDeadline(time.Time{})
	c := newConn(st, remote, br, cl, s.cfg.MaxMessageSize, req.MaxMessage)
	c.closeWhenIdle(s.cfg.IdleTimeout)
	if !s.track(c) {
		c.Close(CloseGoingAway, "node closing")
		return
	}
	log.Debug("channel open", "service", req.Service, "origin", req.Origin)
	defer s.untrack(c)
	serve(s.ctx, c)
	if s.ctx.Err() != nil {
		c.Close(CloseGoingAway, "node closing")
	}
	c.Close(CloseNormal, "")
}

// decide runs the service's handler on cl.
func (s *Server) decide(cl Claims) (ServeFunc, error) {
	s.mu.Lock()
	h := s.handlers[strings.ToLower(cl.Service)]
	s.mu.Unlock()
	if h == nil {
		return nil, Refuse(CodeNotFound, "this provider serves no channels for %s", cl.Service)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpenTimeout)
	defer cancel()
	serve, err := h(ctx, cl)
	if err == nil && serve == nil {
		err = errors.New("handler returned no ServeFunc")
	}
	return serve, err
}

// refuse answers an open with err's code and closes the stream. An error
// that is not a *RefusedError is logged, and the opener told only
// CodeUnavailable.
func (s *Server) refuse(st network.Stream, log *slog.Logger, err error) {
	var re *RefusedError
	if !errors.As(err, &re) {
		log.Warn("channel refused: handler failed", "err", err)
		re = &RefusedError{Code: CodeUnavailable, Reason: "the service failed to take the channel"}
	} else {
		log.Debug("channel refused", "code", re.Code, "reason", re.Reason)
	}
	_ = st.SetDeadline(time.Now().Add(closeWait))
	if err := writeJSON(st, openResponse{Code: re.Code, Reason: truncate(re.Reason, MaxCloseReason)}); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// track records c as open, unless the server closed meanwhile.
func (s *Server) track(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
