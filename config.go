package netget

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/record"
)

// Config describes a Node. Start from a preset (Service, Registry, Client,
// Daemon), set Network and Bootstrap, and adjust what you need: each field
// documents its default, and the Host, DHT and Join fields carry every
// limit of the layers below with theirs.
type Config struct {
	// Network is the netget network to join (default "development").
	// Nodes on different networks never talk to each other.
	Network string
	// Bootstrap are the peers to join through: full multiaddrs ending in
	// /p2p/<peer ID> (/dns4, /dns6 and /dnsaddr are resolved). Each peer
	// joined that announces bootstrap.RegistryAgent becomes one of the
	// node's registries (the fast path); the others are DHT peers only.
	// A peer on another network fails New at once (bootstrap.NetworkError),
	// unless JoinOptional.
	Bootstrap []ma.Multiaddr
	// RequireBootstrap makes New fail without Bootstrap (Service, Daemon).
	RequireBootstrap bool
	// JoinOptional lets New succeed when no bootstrap peer is reachable
	// (Registry: registries often list each other, and the first to start
	// finds the others down).
	JoinOptional bool

	// DataDir holds the node's state on disk: identity.key, and with
	// Persist the record datastore and registries.json. A node whose
	// identity or records live there checks that no other user can change
	// the dir (CheckDataDir) and locks it, so that no second process runs
	// with the same peer ID. Empty keeps nothing on disk: a fresh identity
	// each run, records in memory.
	DataDir string
	// Identity, when set, is the node's key; it wins over the key file.
	Identity crypto.PrivKey
	// IdentityFile is the key file, created (0600) on first use (default
	// DataDir/identity.key; none without DataDir: a fresh key).
	IdentityFile string
	// Ephemeral uses a fresh key each run even with DataDir (Client).
	Ephemeral bool
	// Persist keeps the node's records in a Pebble datastore in DataDir,
	// with synced writes, and locks DataDir so that no second process
	// shares it (Registry, Daemon). Needs DataDir.
	Persist bool
	// Datastore tunes the Pebble datastore Persist opens: its memtable
	// size (zero: store.DefaultMemtableBytes, 32 MiB; 1 MiB to 1 GiB).
	Datastore dht.DatastoreOptions

	// Host configures the libp2p host: listen addresses, connection
	// manager, private-network key (PrivateNetwork, read with p2p.LoadPSK),
	// user agent, reachability, relay and AutoNAT services
	// (p2p.DefaultConfig). Its identity fields are set from Identity,
	// IdentityFile and DataDir; its Relays, when nil, from the node's
	// registries: a node that is not public reserves a relay slot on them.
	Host p2p.Config
	// RelayWait bounds how long a node that believes itself private waits
	// for a relay slot before its first publication, so that its record
	// carries the relay addresses (default 10s; 0 does not wait). Records
	// are published again whenever the node's addresses change.
	RelayWait time.Duration
	// DHT configures the DHT node: mode, timeouts, limits, health checks
	// (dht.DefaultConfig). Its Network, Logger, Registerer and Datastore
	// are set from this Config.
	DHT dht.Config
	// Join configures joining: dial attempts, backoff, timeouts
	// (bootstrap.DefaultConfig). Its Network is set from this Config.
	Join bootstrap.Config

	// BridgeAddr, when set, serves the WebSocket bridge for web pages on
	// this TCP address (e.g. 127.0.0.1:8080; port 0 picks one).
	BridgeAddr string
	// BridgeListener, when set, serves the bridge on this listener instead
	// of BridgeAddr: a caller that listens first learns of a port in use
	// before the node starts. New owns it: Close closes it, and so does a
	// New that fails.
	BridgeListener net.Listener
	// Bridge configures the bridge (bridge.DefaultConfig); its PeerID,
	// Network and Logger are set from the node.
	Bridge bridge.Config

	// Channel bounds the channels the node serves and opens: message
	// size, channels at once (in all and per opener peer), idle and open
	// timeouts (channel.DefaultConfig; the zero value takes the defaults).
	// Its Logger is set from this Config.
	Channel channel.Config

	// Registerer, if set, receives the node's Prometheus metrics: the
	// host's, the DHT's and the bridge's.
	Registerer prometheus.Registerer
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// CloseTimeout bounds what Close does before it stops: withdrawing the
	// services the node provides and closing the bridge's WebSockets
	// (default 10s).
	CloseTimeout time.Duration
	// KeepOnClose makes Close stop providing without withdrawing: the
	// records stay findable until they expire or a registry's health
	// checks drop them, as after a crash (default false: Close withdraws).
	KeepOnClose bool
}

// Service is the preset of a node that provides services: a stable
// identity when DataDir is set, listening on every interface (TCP and
// QUIC, any port), a DHT server, joined through Bootstrap (required).
func Service() Config {
	return Config{
		Network:          record.DefaultNetwork,
		RequireBootstrap: true,
		Host:             p2p.DefaultConfig(),
		DHT:              dht.DefaultConfig(record.DefaultNetwork),
		Join:             bootstrap.DefaultConfig(),
		CloseTimeout:     10 * time.Second,
		RelayWait:        10 * time.Second,
	}
}

// Registry is the preset of a registry: a long-lived DHT server others
// bootstrap from, on TCP and QUIC port 4001, announcing
// bootstrap.RegistryAgent (so joiners use it as a registry), keeping its
// records in DataDir (Persist), health-checking the providers it holds
// records for and syncing with the other registries it is connected to
// (dht.RegistrySync). Bootstrap is optional (other registries), and so is
// reaching it. It is a stable public node: it says so
// (p2p.ReachabilityPublic) and offers peers behind NAT a bounded relay
// service and AutoNAT dial-backs. Everyone joins through it, so it holds
// up to 4096 connections (p2p.Config.MaxConns) and trims from 2000 to
// 1000.
func Registry() Config {
	c := Service()
	c.RequireBootstrap, c.JoinOptional, c.Persist = false, true, true
	c.Host.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	c.Host.ConnLow, c.Host.ConnHigh, c.Host.MaxConns = 1000, 2000, 4096
	c.Host.UserAgent = bootstrap.RegistryAgent
	c.Host.Reachability = p2p.ReachabilityPublic
	c.Host.RelayService.Enabled, c.Host.AutoNATService.Enabled = true, true
	c.DHT.Health = dht.RegistryHealth()
	c.DHT.Sync = dht.RegistrySync()
	return c
}

// Client is the preset of a short-lived node that only finds: a fresh
// identity each run, listening nowhere, a DHT client.
func Client() Config {
	c := Service()
	c.RequireBootstrap, c.Ephemeral = false, true
	c.Host.ListenAddrs = nil
	c.DHT.Mode = dht.ModeClient
	return c
}

// Daemon is the preset of a long-running node that provides services for
// others (the CLI's daemon): the Service preset keeping its records in
// DataDir (Persist).
func Daemon() Config {
	c := Service()
	c.Persist = true
	return c
}

// Validate checks the config without side effects.
func (c Config) Validate() error {
	if err := record.ValidateNetwork(c.Network); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.RequireBootstrap && len(c.Bootstrap) == 0 {
		return fmt.Errorf("%w: no bootstrap peers (start a network with a registry)", ErrBadConfig)
	}
	if c.Persist && c.DataDir == "" {
		return fmt.Errorf("%w: Persist needs a DataDir", ErrBadConfig)
	}
	if err := c.Datastore.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.RelayWait < 0 {
		return fmt.Errorf("%w: relay wait %s: must not be negative", ErrBadConfig, c.RelayWait)
	}
	if c.CloseTimeout < 0 {
		return fmt.Errorf("%w: close timeout %s: must not be negative", ErrBadConfig, c.CloseTimeout)
	}
	if err := c.Host.Validate(); err != nil {
		return err
	}
	if err := c.Join.Validate(); err != nil {
		return err
	}
	if err := c.Channel.Validate(); err != nil {
		return err
	}
	return c.dhtConfig(nil).Validate()
}

// dhtConfig is c.DHT with the fields this Config owns filled in.
func (c Config) dhtConfig(log *slog.Logger) dht.Config {
	d := c.DHT
	d.Network, d.Logger, d.Registerer = c.Network, log, c.Registerer
	return d
}

// joinConfig is c.Join with the fields this Config owns filled in.
func (c Config) joinConfig(log *slog.Logger) bootstrap.Config {
	j := c.Join
	j.Network = c.Network
	if j.Logger == nil {
		j.Logger = log
	}
	return j
}

// locks reports whether New locks DataDir: when the node's identity or
// records live there.
func (c Config) locks() bool {
	return c.DataDir != "" && (c.Persist || (!c.Ephemeral && c.Identity == nil && c.IdentityFile == ""))
}

// closeTimeout is CloseTimeout or its default.
func (c Config) closeTimeout() time.Duration {
	if c.CloseTimeout == 0 {
		return 10 * time.Second
	}
	return c.CloseTimeout
}
