package devnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// Config shapes a devnet. Build one with DefaultConfig.
type Config struct {
	// Network is the netget network name (default "devnet").
	Network string
	// Registries is how many registries to run (default 2).
	Registries int
	// Nodes is how many service nodes to run (default 6); they provide
	// the Samples in turn.
	Nodes int
	// Churn, if not zero, stops or restarts one service node every Churn,
	// in turn, so health checks and withdrawals can be watched.
	Churn time.Duration
	// Health is the registries' health checking, quick so that a stopped
	// node disappears within seconds (default: every second, unhealthy
	// after 2 failures, deregistered after 30s).
	Health dht.Health
	// TTL is the service records' lifetime (default 2m; republished at half).
	TTL time.Duration
	// Logger receives the devnet's logs; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, receives the gateway's metrics (its host's, its
	// DHT node's and its bridge's): the node the bridge finds through.
	Registerer prometheus.Registerer
	// Gateway, if set, adjusts the gateway's config before it starts: the
	// command gives it a bridge (netget.Config.BridgeListener, Bridge)
	// serving page, the devnet's Handler, for the paths the bridge does
	// not serve itself.
	Gateway func(cfg *netget.Config, page http.Handler)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Network:    "devnet",
		Registries: 2,
		Nodes:      6,
		Health:     dht.Health{Interval: time.Second, Failures: 2, DeregisterAfter: 30 * time.Second, Timeout: 500 * time.Millisecond},
		TTL:        2 * time.Minute,
	}
}

// Validate checks the config without side effects.
func (c Config) Validate() error {
	if err := record.ValidateNetwork(c.Network); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	switch {
	case c.Registries < 1 || c.Registries > 16:
		return fmt.Errorf("%w: registries %d: want 1 to 16", ErrBadConfig, c.Registries)
	case c.Nodes < 1 || c.Nodes > 64:
		return fmt.Errorf("%w: nodes %d: want 1 to 64", ErrBadConfig, c.Nodes)
	case c.Churn < 0:
		return fmt.Errorf("%w: churn %s: must not be negative", ErrBadConfig, c.Churn)
	case c.TTL <= 0 || c.TTL > record.MaxTTL:
		return fmt.Errorf("%w: ttl %s: want (0, %s]", ErrBadConfig, c.TTL, record.MaxTTL)
	}
	return nil
}

// ErrBadConfig is returned by Start when the Config fails validation.
var ErrBadConfig = errors.New("invalid devnet config")

// Devnet is a running network: registries, service nodes and a gateway
// node, all in this process on 127.0.0.1, each built by netget.New.
type Devnet struct {
	cfg Config
	log *slog.Logger

	registries []*netget.Node
	gateway    *netget.Node
	started    time.Time
	chat       *chatServer  // the ChatService target (chat.go)
	chatNode   *netget.Node // the ChatService provider

	mu    sync.Mutex // guards nodes' running state (churn)
	nodes []*member
}

// member is one service node of the devnet. It keeps its identity key
// across churn restarts, so it comes back as the same peer.
type member struct {
	key  crypto.PrivKey
	id   peer.ID
	spec netget.Spec
	node *netget.Node // nil while down

	state string // "running", withdrawn, crashed or stopped
	since time.Time
}

// Start builds the devnet: registries, then the service nodes, each
// joining every registry and providing its sample service, then the
// gateway. It returns once every service is published. On error nothing
// is left running.
func Start(ctx context.Context, cfg Config) (*Devnet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Devnet{cfg: cfg, log: log, started: time.Now()}
	if err := d.start(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Devnet) start(ctx context.Context) error {
	for i := range d.cfg.Registries {
		r, err := d.newNode(ctx, "registry", netget.Registry())
		if err != nil {
			return fmt.Errorf("registry %d: %w", i, err)
		}
		d.registries = append(d.registries, r)
	}
	samples := Samples()
	for i := range d.cfg.Nodes {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return err
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return err
		}
		s := samples[i%len(samples)]
		m := &member{key: key, id: id, spec: netget.Spec{Name: s.Name, Meta: s.Meta, TTL: d.cfg.TTL}}
		d.nodes = append(d.nodes, m)
		if err := d.run(ctx, m); err != nil {
			return fmt.Errorf("service node %d: %w", i, err)
		}
	}
	if err := d.startChatNode(ctx); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	gw := netget.Client()
	gw.Registerer = d.cfg.Registerer
	if d.cfg.Gateway != nil {
		d.cfg.Gateway(&gw, d.Handler())
	}
	var err error
	if d.gateway, err = d.newNode(ctx, "gateway", gw); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// newNode builds a node from preset cfg on 127.0.0.1 that joins every
// registry started so far and uses them as its registries. Registries
// keep their records in memory and check health at Config.Health.
func (d *Devnet) newNode(ctx context.Context, role string, cfg netget.Config) (*netget.Node, error) {
	cfg.Network, cfg.Logger = d.cfg.Network, d.log.With("role", role)
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	if role == "registry" {
		cfg.Persist, cfg.DHT.Health = false, d.cfg.Health
	}
	for _, r := range d.registries {
		for _, a := range r.Addrs() {
			cfg.Bootstrap = append(cfg.Bootstrap, ma.StringCast(a))
		}
	}
	return netget.New(ctx, cfg)
}

// run starts service node m (again, after churn), providing its service,
// and returns once its first publication is out. Its Close leaves the
// record in place (KeepOnClose): stop withdraws it only when asked to.
func (d *Devnet) run(ctx context.Context, m *member) error {
	cfg := netget.Service()
	cfg.Identity, cfg.KeepOnClose = m.key, true
	n, err := d.newNode(ctx, "service", cfg)
	if err != nil {
		return err
	}
	if _, err := n.Provide(ctx, m.spec); err != nil {
		n.Close()
		return err
	}
	d.mu.Lock()
	m.node, m.state, m.since = n, "running", time.Now()
	d.mu.Unlock()
	d.log.Info("service node up", "peer", m.id, "service", m.spec.Name)
	return nil
}

// How a service node stops, and the state it is left in.
const (
	withdrawn = "withdrawn" // a signed tombstone first: finds stop returning it at once
	crashed   = "crashed"   // it just dies (churn); the registries' health checks notice
	stopped   = "stopped"   // the devnet shuts down, or the node did not come up
)

// stop ends service node m, leaving it in state how (withdrawn, crashed or
// stopped); only withdrawn publishes a tombstone.
func (d *Devnet) stop(m *member, how string) {
	d.mu.Lock()
	n := m.node
	m.node = nil
	d.mu.Unlock()
	if n == nil {
		return
	}
	if how == withdrawn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := n.Unprovide(ctx, m.spec.Name); err != nil {
			d.log.Warn("withdraw failed", "peer", m.id, "err", err)
		}
		cancel()
	}
	n.Close()
	d.mu.Lock()
	m.state, m.since = how, time.Now()
	d.mu.Unlock()
	d.log.Info("service node down", "peer", m.id, "service", m.spec.Name, "state", how)
}

// Run churns the service nodes, when Config.Churn is set, until ctx ends:
// every Churn it stops the next running node (cleanly or by crashing, in
// turn) or restarts the next stopped one. Without churn it just waits.
func (d *Devnet) Run(ctx context.Context) {
	if d.cfg.Churn == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(d.cfg.Churn)
	defer t.Stop()
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m := d.nodes[step%len(d.nodes)]
		d.mu.Lock()
		running := m.state == "running"
		d.mu.Unlock()
		if running {
			// Stopping rounds alternate: withdraw cleanly, then crash.
			how := crashed
			if (step/len(d.nodes)/2)%2 == 0 {
				how = withdrawn
			}
			d.stop(m, how)
			continue
		}
		if err := d.run(ctx, m); err != nil && ctx.Err() == nil {
			d.log.Warn("service node did not come back", "service", m.spec.Name, "err", err)
		}
	}
}

// Bootstrap returns the registries' full multiaddrs (with /p2p/ID): what
// other processes pass as --bootstrap to join the devnet.
func (d *Devnet) Bootstrap() []string {
	var out []string
	for _, r := range d.registries {
		out = append(out, r.Addrs()...)
	}
	return out
}

// Gateway returns the node web pages find through (the bridge's node).
func (d *Devnet) Gateway() *netget.Node { return d.gateway }

// Network returns the devnet's network name.
func (d *Devnet) Network() string { return d.cfg.Network }

// Close stops everything: gateway, service nodes (without withdrawing),
// registries. It is idempotent.
func (d *Devnet) Close() {
	if d.gateway != nil {
		d.gateway.Close()
		d.gateway = nil
	}
	for _, m := range d.nodes {
		d.stop(m, stopped)
	}
	d.closeChat()
	for _, r := range d.registries {
		r.Close()
	}
	d.registries = nil
}
