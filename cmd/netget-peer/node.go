package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/record"
)

// role selects a command's defaults.
type role struct {
	dataDir       string   // default data dir under $NETGET_HOME ("" = $NETGET_HOME itself)
	ephemeral     bool     // a fresh identity each run, not the data dir's key
	persist       bool     // keep records in a datastore in the data dir, and lock it
	listen        []string // default listen addrs
	mode          dht.Mode // default DHT mode
	health        dht.Health
	store         dht.StoreLimits // zero fields: dht's defaults
	needBootstrap bool            // refuse to start without bootstrap peers
	joinOptional  bool            // start even when no bootstrap peer is reachable
	registry      bool            // announce bootstrap.RegistryAgent, so joiners use it as a registry
}

// serviceRole is the node that provides services: stable identity,
// listening on any port, a DHT server, joined through bootstrap.
func serviceRole() role {
	return role{
		listen:        []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		mode:          dht.ModeServer,
		needBootstrap: true,
	}
}

// node is a running host + DHT node, joined to its bootstrap peers.
type node struct {
	host    host.Host
	dht     *dht.Node
	log     *slog.Logger
	mode    dht.Mode
	dataDir string
	joined  []peer.ID
	metrics prometheus.Registerer // --metrics' registry; nil without it
	closers []func()              // run in reverse by Close
}

// startNode builds the host and DHT from the global flags and joins the
// network. On error, nothing is left running.
func startNode(ctx context.Context, c *cli.Context, r role) (*node, error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	network := c.String("network")
	if err := record.ValidateNetwork(network); err != nil {
		return nil, usageError("--network: %w", err)
	}
	boot, err := bootstrap.ParseAddrs(c.StringSlice("bootstrap"), os.Getenv(bootstrap.EnvVar))
	if err != nil {
		return nil, usageError("--bootstrap: %w", err)
	}
	if r.needBootstrap && len(boot) == 0 {
		return nil, usageError("no bootstrap peers: pass --bootstrap ADDR or set %s "+
			"(start a network with `netget-peer registry`)", bootstrap.EnvVar)
	}
	mode := r.mode
	if s := c.String("dht-mode"); s != "" {
		if mode, err = dht.ParseMode(s); err != nil {
			return nil, usageError("--dht-mode: %w", err)
		}
	}
	dir, err := dataDir(c, r)
	if err != nil {
		return nil, err
	}
	n := &node{log: log, mode: mode, dataDir: dir}
	if err := n.start(ctx, c, r, network, boot); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// start builds what startNode promised, recording how to undo each step.
func (n *node) start(ctx context.Context, c *cli.Context, r role, network string, boot []ma.Multiaddr) error {
	hcfg := p2p.DefaultConfig()
	hcfg.ListenAddrs = r.listen
	if c.IsSet("listen") {
		hcfg.ListenAddrs = c.StringSlice("listen")
	}
	if !r.ephemeral || c.IsSet("identity") {
		hcfg.IdentityPath = identityPath(c, n.dataDir)
	}
	if path := c.String("psk"); path != "" {
		psk, err := p2p.LoadPSK(path)
		if err != nil {
			return fmt.Errorf("--psk: %w", err)
		}
		hcfg.PrivateNetwork = psk
	}
	if r.registry {
		hcfg.UserAgent = bootstrap.RegistryAgent
	}
	dcfg := dht.DefaultConfig(network)
	dcfg.Mode, dcfg.Logger, dcfg.Health, dcfg.Store = n.mode, n.log, r.health, r.store
	dcfg.DisableFastPath = c.Bool("no-fast-path")
	if err := applyProviderFlags(c, &dcfg); err != nil {
		return err
	}
	if dcfg.WalkDialTimeout = c.Duration("walk-dial-timeout"); dcfg.WalkDialTimeout <= 0 {
		return usageError("--walk-dial-timeout %s: must be positive", dcfg.WalkDialTimeout)
	}
	// A find's node is throwaway: it never locks a data dir a daemon may
	// hold. Any other node whose identity comes from the data dir locks
	// it, so two never run with one peer ID.
	if r.persist || (!r.ephemeral && (c.IsSet("data-dir") || !c.IsSet("identity"))) {
		unlock, err := lockDataDir(n.dataDir)
		if err != nil {
			return err
		}
		n.closers = append(n.closers, unlock)
		store, err := dht.OpenDatastore(filepath.Join(n.dataDir, "datastore"))
		if err != nil {
			return err
		}
		n.closers = append(n.closers, func() { store.Close() })
		dcfg.Datastore = store
	}
	var metrics *metricsServer
	if addr := c.String("metrics"); addr != "" {
		var err error
		if metrics, err = listenMetrics(addr); err != nil {
			return err
		}
		n.closers = append(n.closers, metrics.close)
		hcfg.Registerer, dcfg.Registerer, n.metrics = metrics.reg, metrics.reg, metrics.reg
	}
	h, err := p2p.NewHost(hcfg)
	if err != nil {
		if errors.Is(err, p2p.ErrBadConfig) {
			return usageError("%w", err)
		}
		return err
	}
	n.host = h
	n.closers = append(n.closers, func() { h.Close() })
	if n.dht, err = dht.New(h, dcfg); err != nil {
		if errors.Is(err, dht.ErrBadConfig) {
			return usageError("%w", err)
		}
		return err
	}
	n.closers = append(n.closers, func() { n.dht.Close() })
	n.log = n.log.With("peer", h.ID())
	if metrics != nil {
		metrics.serve(n.healthz, n.log)
		n.closers = append(n.closers, metrics.close) // stop serving first
	}
	if len(boot) == 0 {
		return nil
	}
	bcfg := bootstrap.DefaultConfig()
	bcfg.Logger, bcfg.Network = n.log, network
	n.joined, err = bootstrap.Join(ctx, h, boot, bcfg)
	var wrong *bootstrap.NetworkError
	switch {
	case errors.As(err, &wrong) && !r.joinOptional:
		return usageError("%w (pass --network %s)", err, wrong.Speaks[0])
	case err != nil && r.joinOptional && ctx.Err() == nil:
		// Registries often list each other; the first to start finds
		// the rest down, and they will connect to it instead.
		n.log.Warn("starting without the other bootstrap peers", "err", err)
	case err != nil:
		return pskHint(c, err)
	}
	for _, p := range n.joined {
		if !bootstrap.IsRegistry(h, p) {
			// Its records still come, by the DHT path, labelled as such.
			n.log.Debug("bootstrap peer is not a registry; asking it as a DHT peer", "bootstrap", p)
			continue
		}
		n.dht.AddRegistry(p)
	}
	return nil
}

// pskHint adds to a failed join what a private network looks like from
// outside: a peer holding another pre-shared key (or none) accepts the TCP
// connection and never completes the handshake, so the dial times out.
func pskHint(c *cli.Context, err error) error {
	if !errors.Is(err, bootstrap.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if c.String("psk") == "" {
		return fmt.Errorf("%w; a private network looks like this: if it is one, pass its key file with --psk", err)
	}
	return fmt.Errorf("%w; on a private network this means another pre-shared key: check that --psk %s is the network's", err, c.String("psk"))
}

// healthz describes the node for the metrics server's /healthz.
func (n *node) healthz() healthz { return nodeHealthz(n.dht) }

// nodeHealthz describes DHT node d for a metrics server's /healthz.
func nodeHealthz(d *dht.Node) healthz {
	return healthz{Status: "ok", Peer: d.Host().ID().String(), Network: d.Network(),
		RoutingTable: d.RoutingTableSize(), Registries: len(d.Registries())}
}

// dataDir is --data-dir, or the role's default under $NETGET_HOME.
func dataDir(c *cli.Context, r role) (string, error) {
	if c.IsSet("data-dir") {
		return c.String("data-dir"), nil
	}
	home, err := netgetHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, r.dataDir), nil
}

// identityPath is --identity, or identity.key in the data dir.
func identityPath(c *cli.Context, dir string) string {
	if c.IsSet("identity") {
		return c.String("identity")
	}
	return filepath.Join(dir, "identity.key")
}

// Close shuts the node down in reverse order of start: DHT, host,
// datastore, data-dir lock.
func (n *node) Close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// fullAddrs returns the host's listen addrs with /p2p/<id> appended: what
// others pass to --bootstrap.
func (n *node) fullAddrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// describe is the node's one-line self-description for logs.
func (n *node) describe() string {
	return fmt.Sprintf("peer %s on network %q, dht %s", n.host.ID(), n.dht.Network(), n.mode)
}
