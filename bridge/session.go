package bridge

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// errFrameTooLarge is how session.read reports a frame over MaxFrameSize.
var errFrameTooLarge = errors.New("frame too large")

// session is one WebSocket connection: its checks, its hello, its finds.
// The goroutine that runs run owns it; finds and the pinger are its
// goroutines, and run waits for them.
type session struct {
	srv     *Server
	conn    *websocket.Conn
	addr    string  // addrKey of the client
	req     Request // what Filters see; Token and Client set by hello
	tls     bool
	limiter *rate.Limiter
	log     *slog.Logger
	cancel  context.CancelFunc // ends the session; set by run
	rbuf    []byte             // read's buffer; only the reading goroutine uses it
	ended   chan struct{}      // closed when the read loop has ended
	hand    *handover          // the read loop's, kept for its next find (find.go)
	lc      *limitedConn       // the connection under conn, if Serve accepted it: its cork (sendLast)

	wmu      sync.Mutex   // serialises writes (write.go)
	wbuf     []byte       // encoding buffer, reused under wmu
	epoch    time.Time    // the session's start: wstart counts from it
	wstart   atomic.Int64 // when the write in progress started, ns since epoch + 1; 0: none
	wtimer   *time.Timer  // bounds the write in progress (writeWatch)
	warmed   atomic.Bool  // wtimer is armed
	wexpired atomic.Bool  // a write outlived WriteTimeout

	mu      sync.Mutex
	finds   map[string]*inflight
	watches map[string]*inflight
	chans   *channels      // open channels (channel.go)
	active  time.Time      // last frame read, or find or watch ended
	wg      sync.WaitGroup // finds, watches and the watchdog
}

// inflight is one find or watch in progress.
type inflight struct {
	cancel    context.CancelFunc
	cancelled bool // by the client; guarded by session.mu
}

func newSession(s *Server, conn *websocket.Conn, r *http.Request, addr string) *session {
	// The library's own limit sits above ours, so that session.read sees
	// an oversized frame first and can say so before closing.
	conn.SetReadLimit(int64(s.cfg.readLimit()) + 1)
	ss := &session{
		srv:  s,
		conn: conn,
		addr: addr,
		req: Request{RemoteAddr: r.RemoteAddr, Origin: r.Header.Get("Origin"), Host: r.Host,
			Header: r.Header.Clone()},
		tls:     r.TLS != nil,
		limiter: rate.NewLimiter(rate.Limit(s.cfg.FramesPerSecond), s.cfg.FrameBurst),
		log:     s.log.With("remote", r.RemoteAddr, "origin", r.Header.Get("Origin")),
		finds:   make(map[string]*inflight),
		chans:   newChannels(&s.cfg),
		watches: make(map[string]*inflight),
		ended:   make(chan struct{}),
	}
	ss.lc, _ = r.Context().Value(connKey{}).(*limitedConn)
	ss.epoch = time.Now()
	ss.wtimer = time.AfterFunc(time.Hour, ss.writeWatch)
	ss.wtimer.Stop()
	return ss
}

// run serves the session until the client leaves, a fatal refusal, or
// the server closes it; then it stops its finds and waits for them. The
// read loop starts on run's goroutine and may move to another one
// (find.go's handover); run waits for it wherever it ended.
func (s *session) run() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	defer s.conn.CloseNow()
	defer s.wtimer.Stop()
	defer s.wg.Wait()
	defer cancel()
	if !s.admit(ctx) || !s.hello(ctx) {
		return
	}
	s.touch()
	// The session's end closes the connection, which ends a read or a
	// write in progress: reads and writes need no timer of their own.
	context.AfterFunc(ctx, func() { s.conn.CloseNow() })
	s.wg.Go(func() { s.watchdog(ctx) })
	s.loop(ctx)
	<-s.ended
}

// admit runs the connection checks: subprotocol, Host, Origin, Filters.
func (s *session) admit(ctx context.Context) bool {
	cfg := &s.srv.cfg
	if s.conn.Subprotocol() != Subprotocol {
		return s.refuse(ctx, ReasonSubprotocol, &Error{Code: CodeBadRequest,
			Message: "the WebSocket subprotocol " + Subprotocol + " is required"}, websocket.StatusProtocolError)
	}
	if !hostAllowed(cfg.Hosts, s.req.Host, s.tls) {
		return s.refuse(ctx, ReasonHost, &Error{Code: CodeForbidden, Message: "host not allowed",
			Err: fmt.Errorf("host %q", s.req.Host)}, websocket.StatusPolicyViolation)
	}
	if err := s.checkOrigin(); err != nil {
		return s.refuse(ctx, ReasonOrigin, &Error{Code: CodeForbidden, Message: "origin not allowed",
			Err: err}, websocket.StatusPolicyViolation)
	}
	s.req.Stage = StageConnect
	if e := s.filter(ctx); e != nil {
		return s.refuse(ctx, ReasonFilter, e, websocket.StatusPolicyViolation)
	}
	return true
}

// checkOrigin allows no Origin (not a browser), the same origin, and the
// configured ones; never "null".
func (s *session) checkOrigin() error {
	if s.req.Origin == "" {
		return nil
	}
	o, err := parseOriginHeader(s.req.Origin)
	if err != nil {
		return err
	}
	if sameOrigin(o, s.req.Host, s.tls) {
		return nil
	}
	for _, p := range s.srv.origins {
		if p.match(o) {
			return nil
		}
	}
	return fmt.Errorf("origin %q not in the allowlist", s.req.Origin)
}

// hello waits for the client's hello and answers it with a welcome.
func (s *session) hello(ctx context.Context) bool {
	cfg := &s.srv.cfg
	hctx, cancel := context.WithTimeout(ctx, cfg.HelloTimeout)
	_, b, err := s.read(hctx)
	cancel()
	if err != nil {
		return s.readFailed(ctx, err, ReasonHello)
	}
	f, err := ParseClientFrame(b)
	h, ok := f.(*HelloFrame)
	switch {
	case err != nil:
		return s.refuse(ctx, ReasonHello, publicError(err), websocket.StatusProtocolError)
	case !ok:
		return s.refuse(ctx, ReasonHello, &Error{Code: CodeBadRequest, Message: "the first frame must be hello"},
			websocket.StatusProtocolError)
	case h.Network != "" && h.Network != cfg.Network:
		return s.refuse(ctx, ReasonNetwork, &Error{Code: CodeBadRequest,
			Message: fmt.Sprintf("this bridge finds on network %q, not %q", cfg.Network, h.Network)},
			websocket.StatusPolicyViolation)
	case cfg.Token != "" && h.Token == "":
		return s.refuse(ctx, ReasonToken, &Error{Code: CodeForbidden, Message: "token required"},
			websocket.StatusPolicyViolation)
	case cfg.Token != "" && !s.checkToken(ctx, h.Token):
		return false
	}
	s.req.Stage, s.req.Token, s.req.Client = StageHello, h.Token, truncate(h.Client, 64)
	if e := s.filter(ctx); e != nil {
		return s.refuse(ctx, ReasonFilter, e, websocket.StatusPolicyViolation)
	}
	s.log.Debug("bridge session open", "client", s.req.Client)
	return s.send(ctx, &WelcomeFrame{Version: min(h.Version, Version), Peer: cfg.PeerID,
		Network: cfg.Network, Limits: s.srv.limits(), Features: s.srv.features()}) == nil
}

// checkToken compares a hello's token with the bridge's, unless the
// client's address is barred after wrong tokens; a wrong one bars it
// longer. It answers a refusal itself.
func (s *session) checkToken(ctx context.Context, token string) bool {
	b := s.srv.backoff
	if d := b.barred(s.addr); d > 0 {
		return s.refuse(ctx, ReasonTokenBackoff, &Error{Code: CodeRateLimited,
			Message: fmt.Sprintf("too many wrong tokens from your address; retry in %ds", retrySeconds(d))},
			websocket.StatusPolicyViolation)
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.srv.cfg.Token)) != 1 {
		d := b.fail(s.addr)
		return s.refuse(ctx, ReasonToken, &Error{Code: CodeForbidden, Message: "invalid token",
			Err: fmt.Errorf("address %s barred for %s", s.addr, d)}, websocket.StatusPolicyViolation)
	}
	b.succeed(s.addr)
	return true
}

// limits is what the welcome tells clients.
func (s *Server) limits() Limits {
	c := &s.cfg
	l := Limits{FrameBytes: c.MaxFrameSize, InFlight: c.MaxInFlight, MaxResults: c.MaxResults,
		FramesPerSecond: c.FramesPerSecond, FindTimeoutMS: c.FindTimeout.Milliseconds(),
		MaxFindTimeoutMS: c.MaxFindTimeout.Milliseconds(), MessageBytes: c.channelLimit(c.MaxMessageSize),
		Channels: c.channelLimit(c.MaxChannels), ChannelBytesPerSecond: c.channelLimit(c.ChannelBytesPerSecond)}
	if s.watcher != nil {
		l.Watches = c.MaxSessionWatches
	}
	return l
}

// loop reads and handles frames until the connection ends; then it ends
// the session's finds, watches and channels (cancel) and closes s.ended.
// It returns early, leaving both, when a find it ran outlived its grace
// and another goroutine took the loop over (find.go). One goroutine at a
// time runs it.
func (s *session) loop(ctx context.Context) {
	// Reads end when the session ends (run closes the connection), so
	// they take a context that is never done: coder/websocket then arms no
	// timer per read.
	rctx := context.WithoutCancel(ctx)
	for {
		typ, b, err := s.read(rctx)
		if err != nil {
			s.readFailed(ctx, err, "")
			s.cancel()
			close(s.ended)
			return
		}
		s.touch()
		if typ == websocket.MessageBinary && s.srv.cfg.Opener != nil {
			s.binary(ctx, b)
			continue
		}
		f, perr := ParseClientFrame(b)
		if !isChannelData(typ, f) && !s.limiter.Allow() {
			s.srv.stats.refuse(ReasonRate)
			s.sendErr(ctx, peekID(b), &Error{Code: CodeRateLimited, Message: "too many frames; slow down"})
			continue
		}
		if perr != nil {
			s.srv.stats.refuse(ReasonBadFrame)
			s.sendErr(ctx, peekID(b), publicError(perr))
			continue
		}
		switch f := f.(type) {
		case *HelloFrame:
			s.srv.stats.refuse(ReasonBadFrame)
			s.sendErr(ctx, "", &Error{Code: CodeBadRequest, Message: "hello already received"})
		case *FindFrame:
			if !s.find(ctx, f) {
				return // another goroutine reads now
			}
		case *CancelFrame:
			s.cancelFind(f.ID)
		case *WatchFrame:
			s.watch(ctx, f)
		case *PingFrame:
			s.send(ctx, &PongFrame{ID: f.ID})
		case *OpenFrame:
			s.open(ctx, f)
		case *SendFrame:
			s.data(ctx, f.ID, Message{Data: []byte(f.Data)})
		case *CloseFrame:
			s.closeChannel(f)
		}
	}
}

// keptReadBuf is the largest read buffer a session keeps between frames.
const keptReadBuf = 1024

// readFrame appends at most limit bytes of r to buf, growing it as needed.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// read returns the next message: a text frame of at most MaxFrameSize
// bytes (send frames: see Config.frameTooLarge), or, when the bridge
// serves channels, a binary one. Without channels a binary message reads
// as empty, which fails to parse. The bytes are the session's read
// buffer: valid until the next read, so a caller that keeps any of them
// copies them (the parsers do; binary copies a channel message's data).
func (s *session) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, r, err := s.conn.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	cfg := &s.srv.cfg
	b, err := readFrame(r, s.rbuf[:0], cfg.readLimit()+1)
	if cap(b) <= keptReadBuf {
		s.rbuf = b
	} else {
		s.rbuf = nil // an outsized frame's buffer is not kept
	}
	if err != nil {
		return 0, nil, err
	}
	if cfg.frameTooLarge(typ, b) {
		return 0, nil, errFrameTooLarge
	}
	if typ != websocket.MessageText && cfg.Opener == nil {
		return websocket.MessageText, []byte{}, nil // fails to parse: "want a JSON object"
	}
	return typ, b, nil
}

// readFailed ends the session after a failed read: it answers an
// oversized frame, and counts a failed hello as reason (if set).
func (s *session) readFailed(ctx context.Context, err error, reason Reason) bool {
	if errors.Is(err, errFrameTooLarge) {
		return s.refuse(ctx, ReasonTooLarge, &Error{Code: CodeTooLarge,
			Message: fmt.Sprintf("frame over %d bytes", s.srv.cfg.MaxFrameSize)}, websocket.StatusMessageTooBig)
	}
	if reason != "" {
		s.srv.stats.refuse(reason)
	}
	s.log.Debug("bridge session closed", "err", err)
	return false
}

// refuse counts a fatal refusal, tells the client why and closes.
func (s *session) refuse(ctx context.Context, reason Reason, e *Error, status websocket.StatusCode) bool {
	s.srv.stats.refuse(reason)
	s.log.Debug("bridge refused session", "reason", reason, "code", e.Code, "err", e)
	if s.sendErr(ctx, "", e) == nil {
		s.conn.Close(status, string(e.Code))
	}
	return false
}

// filter runs the Filters on s.req; the first refusal wins.
func (s *session) filter(ctx context.Context) *Error {
	for _, f := range s.srv.cfg.Filters {
		req := s.req // a copy: filters cannot change the session's view
		if err := f.Check(ctx, &req); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return e
			}
			return &Error{Code: CodeForbidden, Message: "refused", Err: err}
		}
	}
	return nil
}

// touch marks the session active now.
func (s *session) touch() {
	s.mu.Lock()
	s.active = time.Now()
	s.mu.Unlock()
}

// idleFor returns how long the session has been idle: no frame read, no
// find or watch in flight and no channel open (a channel's provider
// applies its own idle timeout).
func (s *session) idleFor() time.Duration {
	if s.chans.count() > 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.finds) > 0 || len(s.watches) > 0 {
		return 0
	}
	return time.Since(s.active)
}

// watchdog ends the session once it has been idle for IdleTimeout, and
// pings the client every PingInterval (if set): a client that does not
// answer within WriteTimeout is disconnected.
func (s *session) watchdog(ctx context.Context) {
	cfg := &s.srv.cfg
	var ping <-chan time.Time
	if cfg.PingInterval > 0 {
		t := time.NewTicker(cfg.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	idle := time.NewTimer(cfg.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping:
			pctx, cancel := context.WithTimeout(ctx, cfg.WriteTimeout)
			err := s.conn.Ping(pctx)
			cancel()
			if err != nil {
				s.log.Debug("bridge client did not answer ping", "err", err)
				s.cancel()
				return
			}
		case <-idle.C:
			if d := s.idleFor(); d < cfg.IdleTimeout {
				idle.Reset(cfg.IdleTimeout - d)
				continue
			}
			s.refuse(ctx, ReasonIdle, &Error{Code: CodeIdle,
				Message: fmt.Sprintf("no frame for %s; closing", cfg.IdleTimeout)}, websocket.StatusNormalClosure)
			s.cancel()
			return
		}
	}
}

// goAway closes the connection with 1001 (going away): server shutdown.
// Its channels get a close frame (1001) first.
func (s *session) goAway() {
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.WriteTimeout)
	defer cancel()
	s.announceClose(ctx, CloseGoingAway, "bridge shutting down")
	s.conn.Close(websocket.StatusGoingAway, "bridge shutting down")
}

// closeNow drops the connection.
func (s *session) closeNow() { s.conn.CloseNow() }

// peekID returns the id of a frame that may not parse, so that its error
// frame reaches the right find; "" when there is no valid id.
func peekID(b []byte) string {
	var f struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &f) != nil || checkID(f.ID) != nil {
		return ""
	}
	return f.ID
}
