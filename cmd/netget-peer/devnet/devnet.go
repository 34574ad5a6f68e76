package devnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p"
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
	// Registerer, if set, receives the gateway's metrics (its host's and
	// its DHT node's): the node the bridge finds through.
	Registerer prometheus.Registerer
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
// node, all in this process on 127.0.0.1.
type Devnet struct {
	cfg Config
	log *slog.Logger

	registries []*member
	gateway    *member
	started    time.Time

	mu    sync.Mutex // guards nodes' running state (churn)
	nodes []*member
	wg    sync.WaitGroup // provide loops
}

// member is one node of the devnet. Service nodes keep their identity key
// across churn restarts, so they come back as the same peer.
type member struct {
	role   string // "registry", "service" or "gateway"
	key    crypto.PrivKey
	spec   dht.Spec
	host   host.Host
	dht    *dht.Node
	cancel context.CancelFunc // ends the provide loop
	done   chan struct{}      // closed when the provide loop returned

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
		r, err := d.newMember(ctx, "registry", nil, dht.ModeServer, d.cfg.Health, nil)
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
		s := samples[i%len(samples)]
		m := &member{role: "service", key: key, spec: dht.Spec{Name: s.Name, Meta: s.Meta, TTL: d.cfg.TTL}}
		d.nodes = append(d.nodes, m)
		if err := d.run(ctx, m); err != nil {
			return fmt.Errorf("service node %d: %w", i, err)
		}
	}
	gw, err := d.newMember(ctx, "gateway", nil, dht.ModeClient, dht.Health{}, d.cfg.Registerer)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	d.gateway = gw
	return nil
}

// newMember starts a host and DHT node on 127.0.0.1 that joins every
// registry started so far and uses them as its registries; reg, if set,
// receives their metrics.
func (d *Devnet) newMember(ctx context.Context, role string, key crypto.PrivKey, mode dht.Mode, health dht.Health, reg prometheus.Registerer) (*member, error) {
	hcfg := p2p.DefaultConfig()
	hcfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	hcfg.Identity, hcfg.Registerer = key, reg
	if role == "registry" {
		hcfg.UserAgent = bootstrap.RegistryAgent
	}
	h, err := p2p.NewHost(hcfg)
	if err != nil {
		return nil, err
	}
	dcfg := dht.DefaultConfig(d.cfg.Network)
	dcfg.Mode, dcfg.Health, dcfg.Logger, dcfg.Registerer = mode, health, d.log.With("role", role), reg
	n, err := dht.New(h, dcfg)
	if err != nil {
		h.Close()
		return nil, err
	}
	m := &member{role: role, key: key, host: h, dht: n, state: "running", since: time.Now()}
	if err := d.join(ctx, m); err != nil {
		n.Close()
		h.Close()
		return nil, err
	}
	return m, nil
}

// join connects m to every registry (but itself) and makes them its
// registries.
func (d *Devnet) join(ctx context.Context, m *member) error {
	var peers []peer.AddrInfo
	for _, r := range d.registries {
		if r != m {
			peers = append(peers, peer.AddrInfo{ID: r.host.ID(), Addrs: r.host.Addrs()})
		}
	}
	if len(peers) == 0 {
		return nil // the first registry
	}
	joined, err := bootstrap.Connect(ctx, m.host, peers, bootstrap.DefaultConfig())
	if err != nil {
		return err
	}
	for _, p := range joined {
		m.dht.AddRegistry(p)
	}
	return nil
}

// run starts service node m (again, after churn) and its provide loop,
// and returns once its first publication is out.
func (d *Devnet) run(ctx context.Context, m *member) error {
	fresh, err := d.newMember(ctx, "service", m.key, dht.ModeServer, dht.Health{}, nil)
	if err != nil {
		return err
	}
	d.mu.Lock()
	m.host, m.dht = fresh.host, fresh.dht
	d.mu.Unlock()
	pctx, cancel := context.WithCancel(context.Background())
	published := make(chan error, 1)
	m.cancel, m.done = cancel, make(chan struct{})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(m.done)
		err := m.dht.Provide(pctx, m.spec, func(_ *record.Service, err error) {
			select {
			case published <- err:
			default:
			}
		})
		if err != nil {
			select {
			case published <- err:
			default:
			}
		}
	}()
	select {
	case err = <-published:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		d.stop(m, stopped)
		return err
	}
	d.mu.Lock()
	m.state, m.since = "running", time.Now()
	d.mu.Unlock()
	d.log.Info("service node up", "peer", m.host.ID(), "service", m.spec.Name)
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
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	state := how
	if how == withdrawn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := m.dht.Withdraw(ctx, m.spec.Name); err != nil {
			d.log.Warn("withdraw failed", "peer", m.host.ID(), "err", err)
		}
		cancel()
	}
	m.dht.Close()
	m.host.Close()
	m.cancel = nil
	d.mu.Lock()
	m.state, m.since = state, time.Now()
	d.mu.Unlock()
	d.log.Info("service node down", "peer", m.host.ID(), "service", m.spec.Name, "state", state)
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
		addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: r.host.ID(), Addrs: r.host.Addrs()})
		if err != nil {
			continue
		}
		for _, a := range addrs {
			out = append(out, a.String())
		}
	}
	return out
}

// Gateway returns the node web pages find through (the bridge's node).
func (d *Devnet) Gateway() *dht.Node { return d.gateway.dht }

// Network returns the devnet's network name.
func (d *Devnet) Network() string { return d.cfg.Network }

// Close stops everything: gateway, service nodes (without withdrawing),
// registries. It is idempotent.
func (d *Devnet) Close() {
	if d.gateway != nil {
		d.gateway.dht.Close()
		d.gateway.host.Close()
		d.gateway = nil
	}
	for _, m := range d.nodes {
		d.stop(m, stopped)
	}
	d.wg.Wait()
	for _, r := range d.registries {
		r.dht.Close()
		r.host.Close()
	}
	d.registries = nil
}
