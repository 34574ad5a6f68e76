package bridge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/record"
)

// Finder is what the bridge needs from a node: verified finds.
//
// Find calls yield with each verified, live provider of service, one call
// at a time on the caller's goroutine, and returns when the search has
// ended: by itself, at opts.Limit (0: no limit), when yield returns false,
// or when ctx ends. The Finder applies Limit and Timeout; the bridge does
// not apply them again. Find returns an error wrapping
// context.DeadlineExceeded when Timeout ended the search (after yielding
// what it found in time), nil when it ended otherwise, and another error
// when the search could not start. dht.Node.Find is this contract.
type Finder interface {
	Find(ctx context.Context, service string, opts FindOptions, yield func(Result) bool) error
}

// FindOptions bound one Find.
type FindOptions struct {
	Limit   int
	Timeout time.Duration
}

// Result is one verified provider.
type Result struct {
	Record  *record.Service // verified by the node; never nil
	Source  string          // which path found it, for the client's curiosity
	Elapsed time.Duration   // since the find started
}

// Server is the bridge: an http.Handler serving the handshaker script,
// the WebSocket endpoint and a health check, and the sessions it runs.
// Build it with New; run it with Serve or ListenAndServe, or mount it in
// your own http.Server (then Shutdown still closes its WebSockets).
type Server struct {
	cfg      Config
	finder   Finder
	watcher  Watcher // the Finder, when it watches too; nil: no watch
	origins  []originPattern
	services map[string]bool // lowercase names; nil = any
	tls      *tls.Config
	log      *slog.Logger
	mux      *http.ServeMux
	http     *http.Server
	stats    counters
	openCap  int           // connections Serve holds at most
	backoff  *tokenBackoff // wrong tokens per address
	records  *recordCache  // JSON of records sent (recordcache.go)

	mu       sync.Mutex
	closed   bool
	conns    int                   // sessions open or being accepted
	byAddr   map[string]int        // conns by addrKey
	sessions map[*session]struct{} // accepted sessions
	wg       sync.WaitGroup        // one per conns
}

var _ http.Handler = (*Server)(nil)

// New validates cfg and builds a Server answering finds with f, and
// watches too when f is also a Watcher. It opens nothing: call Serve, ListenAndServe or mount the Server as a handler.
func New(f Finder, cfg Config) (*Server, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: a Finder is required", ErrBadConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	openCap, err := openConnsCap(&cfg)
	if err != nil {
		return nil, err
	}
	origins, _ := parseOrigins(cfg.Origins) // Validate parsed them
	s := &Server{cfg: cfg, finder: f, origins: origins, tls: tlsCfg, log: cfg.Logger, openCap: openCap,
		backoff: newTokenBackoff(&cfg, time.Now), records: newRecordCache(cfg.RecordCache), byAddr: make(map[string]int),
		sessions: make(map[*session]struct{})}
	s.watcher, _ = f.(Watcher)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Services) > 0 {
		s.services = make(map[string]bool, len(cfg.Services))
		for _, name := range cfg.Services {
			s.services[strings.ToLower(name)] = true
		}
	}
	s.mux = s.routes()
	// HTTP/1.1 only: WebSockets need its upgrade, and a browser that
	// speaks HTTP/2 to the bridge would try to open them over it.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	s.http = &http.Server{
		Handler:           markServed(s.mux),
		Protocols:         protocols,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		ConnState:         s.connState,
		ConnContext:       connContext,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Paths the bridge serves.
const (
	PathScript = "/netget-handshaker.js"  // the classic script (also importable for its side effect)
	PathModule = "/netget-handshaker.mjs" // the ES module: import netget from ".../netget-handshaker.mjs"
	PathWS     = "/ws"                    // the WebSocket endpoint
	PathHealth = "/healthz"               // 200 while serving, 503 once shutting down
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	script, module := scriptAsset(), moduleAsset()
	mux.HandleFunc("GET "+PathScript, script.serve)
	mux.HandleFunc("GET "+PathModule, module.serve)
	mux.HandleFunc("GET "+PathWS, s.serveWS)
	mux.HandleFunc("GET "+PathHealth, s.serveHealth)
	if s.cfg.Extra != nil {
		mux.Handle("/", s.cfg.Extra)
	}
	return mux
}

// ServeHTTP serves the bridge's paths, and Config.Extra for the rest.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bridge listen: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l, over TLS when the config has a
// certificate, until Shutdown or Close; it then returns ErrClosed. It
// closes l. It holds at most MaxOpenConns connections (fewer to keep
// ReserveFDs descriptors free), MaxOpenConnsPerAddr per address, and
// closes any beyond at once.
func (s *Server) Serve(l net.Listener) error {
	l = newLimitListener(l, s.openCap, s.cfg.MaxOpenConnsPerAddr, &s.stats)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		l.Close()
		return ErrClosed
	}
	var err error
	if s.tls != nil {
		err = s.http.ServeTLS(l, "", "")
	} else {
		err = s.http.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return ErrClosed
	}
	return fmt.Errorf("bridge serve: %w", err)
}

// TLS reports whether Serve speaks TLS (wss://).
func (s *Server) TLS() bool { return s.tls != nil }

// Stats returns a snapshot of the bridge's counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Shutdown stops accepting connections, closes every WebSocket with status
// 1001 (going away) and waits for sessions and their finds to end, or for
// ctx; then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	sessions := s.close()
	// WebSockets first: http.Server.Shutdown may wait seconds for idle
	// browser connections, and pages should learn at once.
	var closing sync.WaitGroup
	for _, ss := range sessions {
		closing.Go(func() { ss.goAway() })
	}
	err := s.http.Shutdown(ctx)
	if werr := s.wait(ctx); werr != nil {
		for _, ss := range sessions {
			ss.closeNow()
		}
		s.wg.Wait()
		err = werr
	}
	closing.Wait()
	return err
}

// Close closes the listeners and every WebSocket at once, and waits for
// sessions to end. It is idempotent.
func (s *Server) Close() error {
	sessions := s.close()
	err := s.http.Close()
	for _, ss := range sessions {
		ss.closeNow()
	}
	s.wg.Wait()
	return err
}

// close marks the server closed and returns the open sessions.
func (s *Server) close() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	out := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

// wait waits for every session to end, or for ctx.
func (s *Server) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire reserves a session slot for the address key; it returns the
// refusal reason when closed or full.
func (s *Server) acquire(key string) Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed || s.conns >= s.cfg.MaxConns:
		return ReasonMaxConns
	case s.byAddr[key] >= s.cfg.MaxSessionsPerAddr:
		return ReasonAddrSessions
	}
	s.conns++
	s.byAddr[key]++
	s.wg.Add(1)
	return ""
}

func (s *Server) release(key string) {
	s.mu.Lock()
	s.conns--
	if s.byAddr[key]--; s.byAddr[key] <= 0 {
		delete(s.byAddr, key)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// startFind takes one of the bridge's MaxFinds slots; false when full.
func (s *Server) startFind() bool {
	for {
		n := s.stats.findsRunning.Load()
		if n >= int64(s.cfg.MaxFinds) {
			return false
		}
		if s.stats.findsRunning.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) endFind() { s.stats.findsRunning.Add(-1) }

// register records an accepted session; false once closed.
func (s *Server) register(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[ss] = struct{}{}
	return true
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	key := addrKey(r.RemoteAddr)
	if !s.admitAddr(w, r, key) {
		return
	}
	defer s.release(key)
	// Origin and Host are checked right after the upgrade, so that a page
	// learns why in an error frame rather than from an opaque failure.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.log.Debug("bridge upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ss := newSession(s, conn, r, key)
	if !s.register(ss) {
		conn.Close(websocket.StatusGoingAway, "bridge shutting down")
		return
	}
	defer s.unregister(ss)
	s.stats.sessions.Add(1)
	s.stats.sessionsTotal.Add(1)
	defer s.stats.sessions.Add(-1)
	ss.run()
}

// admitAddr takes a session slot for the client's address key, or
// answers the upgrade request with why not: HTTP 429 while the address is
// barred after wrong tokens or holds MaxSessionsPerAddr sessions, 503 when
// the bridge holds MaxConns. Both say when to retry.
func (s *Server) admitAddr(w http.ResponseWriter, r *http.Request, key string) bool {
	refuse := func(reason Reason, status int, retry time.Duration, msg string) bool {
		s.stats.refuse(reason)
		s.log.Debug("bridge refused connection", "remote", r.RemoteAddr, "reason", reason)
		w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(retry)))
		http.Error(w, msg, status)
		return false
	}
	if s.cfg.Token != "" {
		if d := s.backoff.barred(key); d > 0 {
			return refuse(ReasonTokenBackoff, http.StatusTooManyRequests, d, "too many wrong tokens from your address")
		}
	}
	switch s.acquire(key) {
	case ReasonMaxConns:
		return refuse(ReasonMaxConns, http.StatusServiceUnavailable, time.Second, "too many connections")
	case ReasonAddrSessions:
		return refuse(ReasonAddrSessions, http.StatusTooManyRequests, time.Second, "too many connections from your address")
	}
	return true
}

// retrySeconds is d in whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int64 { return max(int64((d+time.Second-1)/time.Second), 1) }

// health is the body of GET /healthz.
type health struct {
	Status   string `json:"status"` // "ok" or "shutting_down"
	Version  int    `json:"version"`
	Network  string `json:"network"`
	Sessions int    `json:"sessions"`
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	h := health{Status: "ok", Version: Version, Network: s.cfg.Network, Sessions: int(s.stats.sessions.Load())}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if closed {
		h.Status = "shutting_down"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}
