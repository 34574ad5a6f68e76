package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// Limits of the control API.
const (
	// MaxBodySize is the largest request body, in bytes; more is 413.
	MaxBodySize = 64 << 10
	// MaxFindTimeout is the longest find a request may ask for.
	MaxFindTimeout = time.Hour
)

// Config configures a Server. Build one with DefaultConfig.
type Config struct {
	// DataDir holds services.json; Listen puts the socket beside it.
	DataDir string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// DHTMode and Version are shown in GET /v1/status (default: empty,
	// left out).
	DHTMode, Version string
	// PublishTimeout bounds how long POST /v1/provide waits for the first
	// publication (default 30s). Past it the service is not provided.
	PublishTimeout time.Duration
	// WithdrawTimeout bounds POST /v1/unprovide's tombstone, and shutdown:
	// draining requests, then withdrawing what the daemon provides
	// (default 10s each).
	WithdrawTimeout time.Duration
	// Registries, if set, serves the registry routes (GET /v1/registries,
	// POST /v1/registries/add and /v1/registries/remove); adding one is
	// bounded by PublishTimeout. Nil: those routes are 404.
	Registries Registrar
}

// DefaultConfig returns the defaults documented on Config for dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, PublishTimeout: 30 * time.Second, WithdrawTimeout: 10 * time.Second}
}

// Validate checks the config without side effects.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: no data dir", ErrBadConfig)
	}
	if c.PublishTimeout <= 0 || c.WithdrawTimeout <= 0 {
		return fmt.Errorf("%w: timeouts must be positive", ErrBadConfig)
	}
	return nil
}

// Node is what the control API needs of the daemon's node: a *dht.Node
// is one. The server depends on this interface, not on the DHT type, so
// that it routes requests and holds the service set, whatever runs them.
type Node interface {
	// Host is the node's libp2p host: its ID and addresses for status.
	Host() host.Host
	Network() string
	RoutingTableSize() int
	StoredRecords() int
	// Registries are the registries the node is connected to now.
	Registries() []peer.ID
	Find(ctx context.Context, name string, opts dht.FindOptions, yield func(dht.Result) bool) error
	// Provide publishes spec and republishes it until ctx ends, reporting
	// each publication to published.
	Provide(ctx context.Context, spec dht.Spec, published func(*record.Service, error)) error
	Withdraw(ctx context.Context, name string) (*record.Service, error)
}

var _ Node = (*dht.Node)(nil)

// Server serves the control API of one node over HTTP on a Unix socket,
// and owns the services that node provides: one republish loop each, and
// their record in services.json.
type Server struct {
	node    Node
	cfg     Config
	log     *slog.Logger
	started time.Time
	restore []dht.Spec // from services.json, started by Serve
	serving atomic.Bool

	opMu   sync.Mutex // serialises changes to the service set and its file
	mu     sync.Mutex // guards the fields below and the provisions' state
	loops  map[string]*provision
	closed bool
	wg     sync.WaitGroup // provide loops
}

// NewServer returns a server for node, configured by cfg, with the service set
// saved in cfg.DataDir/services.json (ErrServicesFile if it is unreadable
// or invalid). Nothing runs until Serve.
func NewServer(node Node, cfg Config) (*Server, error) {
	if node == nil {
		return nil, fmt.Errorf("%w: nil node", ErrBadConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{node: node, cfg: cfg, log: cfg.Logger, started: time.Now(), loops: make(map[string]*provision)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.restore, err = loadServices(s.servicesPath()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) servicesPath() string { return filepath.Join(s.cfg.DataDir, ServicesName) }

// Serve provides the saved services again, then serves the API on ln
// (from Listen) until ctx ends. Then it shuts down: in-flight requests
// end, provide loops stop, and the services provided are withdrawn (they
// stay in services.json for the next start). It closes ln, and returns nil
// after a shutdown, or the error that stopped the listener. Serve runs
// once; a second call returns ErrClosed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.serving.CompareAndSwap(false, true) {
		ln.Close()
		return ErrClosed
	}
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	hs := &http.Server{
		Handler:           s.routes(),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.restoreAll()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Streams and waits end now; then the server drains.
	endRequests()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WithdrawTimeout)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil {
		hs.Close()
	}
	if err == nil {
		err = <-errc
	}
	wctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WithdrawTimeout)
	defer cancel2()
	s.stopAll(wctx)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("control api: %w", err)
}

// restoreAll starts a loop for every service saved by an earlier run.
func (s *Server) restoreAll() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	for _, spec := range s.restore {
		s.start(spec)
		s.log.Info("providing saved service", "service", spec.Name)
	}
	s.restore = nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// status describes the node and what it provides.
func (s *Server) status() Status {
	h := s.node.Host()
	st := Status{
		Peer:          h.ID().String(),
		Network:       s.node.Network(),
		DHTMode:       s.cfg.DHTMode,
		Addrs:         []string{},
		RoutingTable:  s.node.RoutingTableSize(),
		Registries:    []string{},
		StoredRecords: s.node.StoredRecords(),
		Services:      s.servicesStatus(),
		DataDir:       s.cfg.DataDir,
		Version:       s.cfg.Version,
		StartedAt:     s.started.UTC(),
	}
	if addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err == nil {
		for _, a := range addrs {
			st.Addrs = append(st.Addrs, a.String())
		}
	}
	for _, p := range s.node.Registries() {
		st.Registries = append(st.Registries, p.String())
	}
	return st
}

// provide makes req a provided service and waits for its first
// publication, at most cfg.PublishTimeout: the daemon then republishes it
// until unprovide or shutdown. A first publication that fails or does not
// land in time leaves the service not provided.
func (s *Server) provide(ctx context.Context, req ProvideRequest) (*ProvideResponse, *Error) {
	spec, e := checkSpec(req.Name, req.Meta, req.TTL)
	if e == nil {
		e = s.checkNetwork(req.Network)
	}
	if e != nil {
		return nil, e
	}
	p, e := s.put(spec)
	if e != nil {
		return nil, e
	}
	t := time.NewTimer(s.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case <-p.first: // always closed before the loop can end
	case <-ctx.Done():
		return nil, unavailable()
	case <-t.C:
		s.drop(p)
		if s.node.RoutingTableSize() == 0 {
			return nil, publishError(fmt.Errorf("provide %s: %w", spec.Name, dht.ErrNotReady))
		}
		return nil, &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout,
			Message: fmt.Sprintf("provide %s: first publication did not land within %s", spec.Name, s.cfg.PublishTimeout)}
	}
	s.mu.Lock()
	svc, err := p.firstSvc, p.firstErr
	s.mu.Unlock()
	switch {
	case errors.Is(err, context.Canceled) && !s.isClosed():
		return nil, &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: fmt.Sprintf("provide %s: replaced or withdrawn by another request before its first publication", spec.Name)}
	case err != nil:
		s.drop(p)
		return nil, publishError(err)
	}
	return &ProvideResponse{Service: svc}, nil
}

// unprovide stops providing req.Name and publishes its tombstone.
func (s *Server) unprovide(ctx context.Context, req UnprovideRequest) (*UnprovideResponse, *Error) {
	if _, e := checkSpec(req.Name, nil, 0); e != nil {
		return nil, e
	}
	if e := s.checkNetwork(req.Network); e != nil {
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WithdrawTimeout)
	defer cancel()
	tomb, was, e := s.withdraw(ctx, req.Name)
	if e != nil {
		return nil, e
	}
	s.log.Info("withdrawn", "service", tomb.Name, "seq", tomb.Seq, "was_provided", was)
	return &UnprovideResponse{Service: tomb, WasProvided: was}, nil
}

// checkNetwork refuses a request meant for another network.
func (s *Server) checkNetwork(network string) *Error {
	if network == "" || network == s.node.Network() {
		return nil
	}
	return &Error{Status: http.StatusConflict, Code: CodeWrongNetwork,
		Message: fmt.Sprintf("the daemon is on network %q, not %q", s.node.Network(), network)}
}
