package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/record"
)

// role is a command's node: a netget preset and where its data dir is.
type role struct {
	preset  func() netget.Config
	dataDir string // default data dir under $NETGET_HOME ("" = $NETGET_HOME itself)
}

// serviceRole is the node that provides services (netget.Service).
func serviceRole() role { return role{preset: netget.Service} }

// node is a running netget node with what the CLI adds around it.
type node struct {
	*netget.Node
	dht     *dht.Node
	log     *slog.Logger
	mode    dht.Mode
	dataDir string
	metrics prometheus.Registerer // --metrics' registry; nil without it
	closers []func()              // run in reverse by Close
}

// startNode builds the node of role r through netget.New, its Config
// filled from the global flags, and joins the network. On error, nothing
// is left running.
func startNode(ctx context.Context, c *cli.Context, r role, adjust ...func(*netget.Config) error) (*node, error) {
	cfg, err := nodeConfig(c, r)
	if err != nil {
		return nil, err
	}
	n := &node{log: cfg.Logger, dataDir: cfg.DataDir}
	var metrics *metricsServer
	if addr := c.String("metrics"); addr != "" {
		// Listening first: a port in use fails before the node starts.
		if metrics, err = listenMetrics(addr); err != nil {
			return nil, err
		}
		n.closers = append(n.closers, metrics.close)
		cfg.Registerer, n.metrics = metrics.reg, metrics.reg
	}
	for _, f := range adjust {
		if err := f(&cfg); err != nil {
			n.Close()
			return nil, err
		}
	}
	n.mode = cfg.DHT.Mode
	if n.Node, err = netget.New(ctx, cfg); err != nil {
		n.Close()
		return nil, startError(c, err)
	}
	n.closers = append(n.closers, func() { n.Node.Close() })
	n.dht, n.log = n.DHT(), cfg.Logger.With("peer", n.ID())
	if metrics != nil {
		metrics.serve(n.healthz, n.log)
		n.closers = append(n.closers, metrics.close) // stop serving first
	}
	return n, nil
}

// nodeConfig is r's preset with the global flags applied.
func nodeConfig(c *cli.Context, r role) (netget.Config, error) {
	cfg := r.preset()
	var err error
	if cfg.Logger, err = newLogger(c); err != nil {
		return cfg, err
	}
	cfg.Network = c.String("network")
	if err := record.ValidateNetwork(cfg.Network); err != nil {
		return cfg, usageError("--network: %w", err)
	}
	if cfg.Bootstrap, err = bootstrap.ParseAddrs(c.StringSlice("bootstrap"), os.Getenv(bootstrap.EnvVar)); err != nil {
		return cfg, usageError("--bootstrap: %w", err)
	}
	if cfg.RequireBootstrap && len(cfg.Bootstrap) == 0 {
		return cfg, usageError("no bootstrap peers: pass --bootstrap ADDR or set %s "+
			"(start a network with `netget-peer registry`)", bootstrap.EnvVar)
	}
	if s := c.String("dht-mode"); s != "" {
		if cfg.DHT.Mode, err = dht.ParseMode(s); err != nil {
			return cfg, usageError("--dht-mode: %w", err)
		}
	}
	if cfg.DataDir, err = dataDir(c, r); err != nil {
		return cfg, err
	}
	if c.IsSet("identity") {
		cfg.IdentityFile = c.String("identity")
	}
	// A find's node is throwaway (Ephemeral): it never locks a data dir a
	// daemon may hold. Any other node whose identity comes from the data
	// dir keeps its records there, and so locks it.
	if !cfg.Ephemeral && (c.IsSet("data-dir") || !c.IsSet("identity")) {
		cfg.Persist = true
	}
	// 0 would mean the default to the Config; on the command line the
	// default is written out, so 0 is a mistake.
	mib := c.Int("datastore-memtable-mib")
	if mib < 1 {
		return cfg, usageError("--datastore-memtable-mib %d: want 1 to 1024", mib)
	}
	cfg.Datastore.MemtableBytes = int64(mib) << 20
	if err := cfg.Datastore.Validate(); err != nil {
		return cfg, usageError("--datastore-memtable-mib: %w", err)
	}
	if c.IsSet("listen") {
		cfg.Host.ListenAddrs = c.StringSlice("listen")
	}
	if err := applyReachability(c, &cfg); err != nil {
		return cfg, err
	}
	applyConnFlags(c, &cfg.Host)
	if path := c.String("psk"); path != "" {
		if cfg.Host.PrivateNetwork, err = p2p.LoadPSK(path); err != nil {
			return cfg, fmt.Errorf("--psk: %w", err)
		}
	}
	cfg.DHT.DisableFastPath = c.Bool("no-fast-path")
	if err := applyProviderFlags(c, &cfg.DHT); err != nil {
		return cfg, err
	}
	if cfg.DHT.WalkDialTimeout = c.Duration("walk-dial-timeout"); cfg.DHT.WalkDialTimeout <= 0 {
		return cfg, usageError("--walk-dial-timeout %s: must be positive", cfg.DHT.WalkDialTimeout)
	}
	return cfg, nil
}

// startError maps what netget.New returned to the CLI's errors: a bad
// config is a usage error, a bootstrap peer on another network names the
// flag that fixes it, and a join that timed out hints at --psk.
func startError(c *cli.Context, err error) error {
	var wrong *bootstrap.NetworkError
	switch {
	case errors.As(err, &wrong):
		return usageError("%w (pass --network %s)", err, wrong.Speaks[0])
	case errors.Is(err, netget.ErrBadConfig), errors.Is(err, p2p.ErrBadConfig),
		errors.Is(err, dht.ErrBadConfig), errors.Is(err, bootstrap.ErrBadConfig), errors.Is(err, bridge.ErrBadConfig):
		return usageError("%w", err)
	}
	return pskHint(c, err)
}

// pskHint adds to a failed join what a private network looks like from
// outside: a peer holding another pre-shared key (or none) accepts the TCP
// connection and never completes the handshake, so the dial times out.
func pskHint(c *cli.Context, err error) error {
	// A peer that refused the connection is down; one reached whose
	// handshake timed out or came back garbled (the pre-shared key
	// scrambles it) may be on a private network.
	if !errors.Is(err, bootstrap.ErrUnreachable) || errors.Is(err, syscall.ECONNREFUSED) {
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

// Close shuts the node down, then stops serving metrics.
func (n *node) Close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// describe is the node's one-line self-description for logs.
func (n *node) describe() string {
	return fmt.Sprintf("peer %s on network %q, dht %s", n.ID(), n.Network(), n.mode)
}

// applyConnFlags reads --conn-low, --conn-high and --max-conns into h
// where they are set (the presets differ: a registry holds many more);
// p2p.Config.Validate judges them.
func applyConnFlags(c *cli.Context, h *p2p.Config) {
	if c.IsSet("conn-low") {
		h.ConnLow = c.Int("conn-low")
	}
	if c.IsSet("conn-high") {
		h.ConnHigh = c.Int("conn-high")
	}
	if c.IsSet("max-conns") {
		h.MaxConns = c.Int("max-conns")
	}
}
