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
	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/record"
)

// role selects a command's defaults.
type role struct {
	identityFile  string   // default key file name under $NETGET_HOME; "" = ephemeral
	listen        []string // default listen addrs
	mode          dht.Mode // default DHT mode
	needBootstrap bool     // refuse to start without bootstrap peers
	joinOptional  bool     // start even when no bootstrap peer is reachable
}

// serviceRole is the long-running node that provides services: stable
// identity, listening on any port, a DHT server, joined through bootstrap.
func serviceRole() role {
	return role{
		identityFile:  "identity.key",
		listen:        []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		mode:          dht.ModeServer,
		needBootstrap: true,
	}
}

// node is a running host + DHT node, joined to its bootstrap peers.
type node struct {
	host   host.Host
	dht    *dht.Node
	log    *slog.Logger
	mode   dht.Mode
	joined []peer.ID
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
	hcfg := p2p.DefaultConfig()
	hcfg.ListenAddrs = r.listen
	if c.IsSet("listen") {
		hcfg.ListenAddrs = c.StringSlice("listen")
	}
	if hcfg.IdentityPath, err = identityPath(c, r); err != nil {
		return nil, err
	}
	h, err := p2p.NewHost(hcfg)
	if err != nil {
		if errors.Is(err, p2p.ErrBadConfig) {
			return nil, usageError("%w", err)
		}
		return nil, err
	}
	dcfg := dht.DefaultConfig(network)
	dcfg.Mode = mode
	dcfg.Logger = log
	d, err := dht.New(h, dcfg)
	if err != nil {
		h.Close()
		return nil, err
	}
	n := &node{host: h, dht: d, log: log.With("peer", h.ID()), mode: mode}
	if len(boot) > 0 {
		bcfg := bootstrap.DefaultConfig()
		bcfg.Logger = log
		n.joined, err = bootstrap.Join(ctx, h, boot, bcfg)
		switch {
		case err != nil && r.joinOptional && ctx.Err() == nil:
			// Registries often list each other; the first to start finds
			// the rest down, and they will connect to it instead.
			n.log.Warn("starting without the other bootstrap peers", "err", err)
		case err != nil:
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// identityPath is --identity, or the role's default under $NETGET_HOME, or
// "" (ephemeral) for roles without one.
func identityPath(c *cli.Context, r role) (string, error) {
	if c.IsSet("identity") {
		return c.String("identity"), nil
	}
	if r.identityFile == "" {
		return "", nil
	}
	home, err := netgetHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, r.identityFile), nil
}

// Close shuts the node down: DHT, then host.
func (n *node) Close() {
	n.dht.Close()
	n.host.Close()
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
