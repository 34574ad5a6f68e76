package p2p

import (
	"crypto/rand"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Config describes a host. Build one with DefaultConfig and adjust it.
type Config struct {
	// IdentityPath is the private key file; "" means an ephemeral identity.
	IdentityPath string
	// Identity, when set, is used instead of IdentityPath (tests, embedders).
	Identity crypto.PrivKey
	// ListenAddrs are the multiaddrs to listen on. Default: TCP and QUIC on
	// all IPv4 interfaces, port 0. Nothing listens when it is empty.
	ListenAddrs []string
	// ConnLow and ConnHigh are the connection manager's water marks
	// (default 100 / 200): above High, connections are trimmed to Low.
	// Protected connections (registries) are never trimmed.
	ConnLow, ConnHigh int
	// ConnGrace is how long a new connection is safe from trimming (default 20s).
	ConnGrace time.Duration
	// MaxConns is the most connections the host holds at once, inbound
	// and outbound together: the resource manager refuses any beyond it,
	// where ConnHigh only trims back to ConnLow. 0 keeps go-libp2p's
	// limit scaled to the machine (inbound: 64 + 64 per GiB of an eighth
	// of its memory, 252 on 24 GiB), too few for a registry (Registry
	// preset: 4096). When set, it must be at least ConnHigh, and the
	// host's stream limits grow with it (4 streams a connection each
	// way in all, 2 for one protocol, if that is above go-libp2p's).
	MaxConns int
	// PrivateNetwork, when set, restricts the host to peers holding the same
	// pre-shared key. QUIC does not support it, so only TCP listens then.
	PrivateNetwork pnet.PSK
	// UserAgent is announced through identify (default "netget-peer").
	UserAgent string
	// NATPortMap asks the gateway for a port mapping (default off).
	NATPortMap bool
	// Registerer, if set, receives go-libp2p's own Prometheus metrics
	// (swarm, identify, resource manager…); nil turns them off.
	Registerer prometheus.Registerer
	// PeerStreams raises the resource manager's limit of the streams one
	// peer may have open at once, each way, for the protocols or
	// resource-manager services it names (go-libp2p's defaults: 64 per
	// protocol and 128 per service, plus a few per GiB of memory), where
	// one peer legitimately holds many: channels, which a bridge opens one
	// per page. The netget node sets it from its channel limits.
	PeerStreams map[string]int

	// Reachability is how others reach the host (default
	// ReachabilityAuto: AutoNAT decides; Registry preset: public).
	Reachability Reachability
	// Relays, when set, names the relays a host that is not public
	// reserves a slot on (go-libp2p's AutoRelay; the node passes its
	// registries). While private, the host advertises their circuit
	// addresses. Nil, a public host or one listening nowhere: no AutoRelay.
	Relays func() []peer.AddrInfo
	// HolePunching upgrades relayed connections to direct ones when it
	// can (DCUtR; default true). Only with listen addresses.
	HolePunching bool
	// RelayService is the circuit relay v2 service the host offers, and
	// its limits (default off; Registry preset: on).
	RelayService RelayService
	// AutoNATService answers other peers' AutoNAT requests, within its
	// limits (default off; Registry preset: on).
	AutoNATService AutoNATService
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		ConnLow:     100,
		ConnHigh:    200,
		ConnGrace:   20 * time.Second,
		UserAgent:   "netget-peer",

		HolePunching:   true,
		RelayService:   DefaultRelayService(),
		AutoNATService: DefaultAutoNATService(),
	}
}

// Validate checks the config without side effects.
func (c Config) Validate() error {
	if c.ConnLow < 0 || c.ConnHigh <= 0 || c.ConnLow > c.ConnHigh {
		return fmt.Errorf("%w: connection water marks low=%d high=%d", ErrBadConfig, c.ConnLow, c.ConnHigh)
	}
	if c.MaxConns < 0 || (c.MaxConns > 0 && c.MaxConns < c.ConnHigh) {
		return fmt.Errorf("%w: max connections %d: must be 0 (go-libp2p's scaled limit) or at least the high water mark %d",
			ErrBadConfig, c.MaxConns, c.ConnHigh)
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: listen address %q: %w", ErrBadConfig, a, err)
		}
	}
	if c.Reachability < ReachabilityAuto || c.Reachability > ReachabilityPrivate {
		return fmt.Errorf("%w: reachability %d", ErrBadConfig, int(c.Reachability))
	}
	if err := c.RelayService.Validate(); err != nil {
		return err
	}
	return c.AutoNATService.Validate()
}

// NewHost builds and starts a libp2p host from cfg.
func NewHost(cfg Config) (host.Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := cfg.Identity
	if key == nil {
		var err error
		if cfg.IdentityPath == "" {
			key, _, err = crypto.GenerateEd25519Key(rand.Reader)
		} else {
			key, err = LoadOrCreateIdentity(cfg.IdentityPath)
		}
		if err != nil {
			return nil, err
		}
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	var rmOpts []rcmgr.Option
	if cfg.Registerer == nil {
		// Without it the resource manager traces every event into
		// Prometheus's default registry: a global, and ~7% of the CPU of a
		// busy node.
		rmOpts = append(rmOpts, rcmgr.WithMetricsDisabled())
	}
	limits := scalingLimits(cfg.PeerStreams)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(systemLimits(limits.AutoScale(), cfg.MaxConns)), rmOpts...)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent(cfg.UserAgent),
	}
	if cfg.PrivateNetwork != nil {
		opts = append(opts, libp2p.PrivateNetwork(cfg.PrivateNetwork))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	if cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if len(cfg.ListenAddrs) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	opts = append(opts, natOptions(cfg)...)
	h, err := libp2p.New(opts...)
	if err != nil {
		// libp2p.New closes what it built on failure, including cm and rm.
		return nil, fmt.Errorf("start host: %w", err)
	}
	return h, nil
}

// scalingLimits are go-libp2p's default limits with peerStreams applied:
// each key is a protocol ID when it starts with "/", else a
// resource-manager service name.
func scalingLimits(peerStreams map[string]int) rcmgr.ScalingLimitConfig {
	limits := rcmgr.DefaultLimits
	// The maps are shared with the package default: copy before adding.
	limits.ProtocolPeerLimits = maps.Clone(limits.ProtocolPeerLimits)
	limits.ServicePeerLimits = maps.Clone(limits.ServicePeerLimits)
	for name, n := range peerStreams {
		base := rcmgr.BaseLimit{StreamsInbound: n, StreamsOutbound: n, Streams: 2 * n, Memory: int64(n) << 20}
		if strings.HasPrefix(name, "/") {
			limits.AddProtocolPeerLimit(protocol.ID(name), base, rcmgr.BaseLimitIncrease{})
		} else {
			limits.AddServicePeerLimit(name, base, rcmgr.BaseLimitIncrease{})
		}
	}
	return limits
}

// systemLimits raises the host-wide connection limits of scaled to
// maxConns (Config.MaxConns; 0 leaves them), and the stream limits that
// grow with connections (host-wide, and each protocol's and service's
// over all peers) to 4 and 2 a connection each way where that is more
// than go-libp2p's: a registry's 1,000 watchers hold one watch stream
// each.
func systemLimits(scaled rcmgr.ConcreteLimitConfig, maxConns int) rcmgr.ConcreteLimitConfig {
	if maxConns == 0 {
		return scaled
	}
	p := scaled.ToPartialLimitConfig()
	n := rcmgr.LimitVal(maxConns)
	p.System.Conns, p.System.ConnsInbound, p.System.ConnsOutbound = n, n, n
	p.System.FD = atLeast(p.System.FD, n)
	raiseStreams(&p.System, 4*n)
	raiseStreams(&p.ProtocolDefault, 2*n)
	raiseStreams(&p.ServiceDefault, 2*n)
	return rcmgr.PartialLimitConfig{System: p.System, ProtocolDefault: p.ProtocolDefault, ServiceDefault: p.ServiceDefault}.Build(scaled)
}

// raiseStreams raises l's stream limits to n each way, 2n in all.
func raiseStreams(l *rcmgr.ResourceLimits, n rcmgr.LimitVal) {
	l.StreamsInbound, l.StreamsOutbound = atLeast(l.StreamsInbound, n), atLeast(l.StreamsOutbound, n)
	l.Streams = atLeast(l.Streams, 2*n)
}

// atLeast is limit raised to n, unless it is unlimited already.
func atLeast(limit, n rcmgr.LimitVal) rcmgr.LimitVal {
	if limit == rcmgr.Unlimited {
		return limit
	}
	return max(limit, n)
}
