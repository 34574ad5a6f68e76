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

	"github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/channel"
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
	// WithdrawTimeout bounds POST /v1/unprovide's tombstone, and draining
	// requests at shutdown (default 10s each). Withdrawing what the daemon
	// provides at shutdown is the node's Close (netget.Config.CloseTimeout).
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

// Node is what the control API needs of the daemon's node: a
// *netget.Node is one. The node holds the services it provides (their
// republish loops, withdrawn when it closes); the server routes requests
// to it, maps its errors to API errors, and keeps the set in
// services.json for the next start.
type Node interface {
	// Status is a snapshot of the node for GET /v1/status.
	Status() netget.Status
	Network() string
	Find(ctx context.Context, name string, opts netget.FindOptions, yield func(netget.Result) bool) error
	// Provide publishes spec, returns once the first record is findable
	// and keeps it published until Unprovide or the node's Close.
	Provide(ctx context.Context, spec netget.Spec) (*record.Service, error)
	// ProvideLater provides spec in the background, retrying until it
	// lands: the services restored from services.json.
	ProvideLater(spec netget.Spec) error
	// Unprovide stops providing name and publishes its tombstone; it
	// wraps netget.ErrNotProvided when name was not provided.
	Unprovide(ctx context.Context, name string) (*record.Service, error)
	// Services are the services the node provides, sorted by name.
	Services() []netget.ServiceStatus
	// Connect finds a service and opens a channel to a provider of it.
	Connect(ctx context.Context, service string, o netget.ConnectOptions) (*channel.Conn, netget.Result, error)
}

var _ Node = (*netget.Node)(nil)

// Server serves the control API of one node over HTTP on a Unix socket,
// and keeps the services that node provides in services.json.
type Server struct {
	node    Node
	cfg     Config
	log     *slog.Logger
	started time.Time
	restore []dht.Spec // from services.json, provided again by Serve
	serving atomic.Bool
	opMu    sync.Mutex // serialises writes of services.json
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
	s := &Server{node: node, cfg: cfg, log: cfg.Logger, started: time.Now()}
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

// Serve provides the saved services again (the node's ProvideLater), then
// serves the API on ln (from Listen) until ctx ends. Then in-flight
// requests end; the services stay with the node, which withdraws them when
// it closes, and in services.json for the next start. It closes ln, and
// returns nil after a shutdown, or the error that stopped the listener.
// Serve runs once; a second call returns ErrClosed.
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
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("control api: %w", err)
}

// restoreAll has the node provide every service saved by an earlier run.
func (s *Server) restoreAll() {
	for _, spec := range s.restore {
		if err := s.node.ProvideLater(spec); err != nil {
			s.log.Error("not providing saved service", "service", spec.Name, "err", err)
			continue
		}
		s.log.Info("providing saved service", "service", spec.Name)
	}
	s.restore = nil
}

// status describes the node and what it provides.
func (s *Server) status() Status {
	ns := s.node.Status()
	st := Status{
		Peer:          ns.ID.String(),
		Network:       ns.Network,
		DHTMode:       s.cfg.DHTMode,
		Addrs:         append([]string{}, ns.Addrs...),
		RoutingTable:  ns.RoutingTable,
		Registries:    []string{},
		StoredRecords: ns.StoredRecords,
		Services:      servicesStatus(ns.Services),
		DataDir:       s.cfg.DataDir,
		Version:       s.cfg.Version,
		StartedAt:     s.started.UTC(),
		Reachability:  ns.Reachability.State,
		Relays:        []string{},
		RelayAddrs:    append([]string{}, ns.Reachability.RelayAddrs...),
	}
	for _, p := range ns.Reachability.Relays {
		st.Relays = append(st.Relays, p.String())
	}
	for _, r := range ns.Registries {
		if r.Connected {
			st.Registries = append(st.Registries, r.Peer.String())
		}
	}
	if ns.Sync != nil {
		st.Sync = syncStatus(ns.Sync)
	}
	return st
}

// syncStatus is the API's view of a registry's sync.
func syncStatus(s *netget.SyncStatus) *SyncStatus {
	out := &SyncStatus{Peers: make([]string, 0, len(s.Peers)), LastError: s.LastError,
		LastFetched: s.LastFetched, LastBytes: s.LastBytes, Rounds: s.Rounds, Fetched: s.Fetched,
		Forwarded: s.Forwarded, Received: s.Received, Refused: s.Refused}
	if !s.LastRound.IsZero() {
		out.LastRound = s.LastRound.UTC()
	}
	for _, p := range s.Peers {
		out.Peers = append(out.Peers, p.String())
	}
	return out
}

// servicesStatus is the API's view of the node's services.
func servicesStatus(svcs []netget.ServiceStatus) []ServiceStatus {
	out := make([]ServiceStatus, 0, len(svcs))
	for _, v := range svcs {
		st := ServiceStatus{Name: v.Name, Meta: v.Meta, TTL: Duration(v.TTL), Seq: v.Seq,
			PublishedAt: v.PublishedAt, ExpiresAt: v.ExpiresAt}
		if st.Meta == nil {
			st.Meta = map[string]string{}
		}
		if v.LastError != nil {
			st.LastError = v.LastError.Error()
		}
		out = append(out, st)
	}
	return out
}

// provide saves req in services.json, then has the node provide it and
// waits for its first publication, at most cfg.PublishTimeout: the node
// then republishes it until unprovide or shutdown. A first publication
// that fails or does not land in time leaves the service not provided.
func (s *Server) provide(ctx context.Context, req ProvideRequest) (*ProvideResponse, *Error) {
	spec, e := checkSpec(req.Name, req.Meta, req.TTL)
	if e == nil {
		e = s.checkNetwork(req.Network)
	}
	if e != nil {
		return nil, e
	}
	s.opMu.Lock()
	e = s.save(&spec)
	s.opMu.Unlock()
	if e != nil {
		return nil, e
	}
	defer s.resync()
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	svc, err := s.node.Provide(pctx, spec)
	if err != nil {
		return nil, s.provideError(ctx, spec, err)
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
	tomb, err := s.node.Unprovide(ctx, req.Name)
	s.resync()
	was := !errors.Is(err, netget.ErrNotProvided)
	if err != nil && was {
		return nil, publishError(err)
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
