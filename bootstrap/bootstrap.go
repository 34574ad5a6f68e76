package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

// EnvVar is the environment variable that holds bootstrap multiaddrs,
// comma-separated; ParseAddrs adds them after the flags' ones.
const EnvVar = "NETGET_BOOTSTRAP"

// ProtectTag is the connection-manager tag under which Connect protects the
// connections it makes. Unprotect a peer with it to let trimming drop it.
const ProtectTag = "netget-bootstrap"

// Config shapes resolving and connecting. Build one with DefaultConfig; a
// zero field means its default.
type Config struct {
	// Attempts is how many times each peer is dialled (default 3).
	Attempts int
	// Backoff is the wait after a peer's first failed attempt (default
	// 200ms); it doubles after each further failure, up to MaxBackoff
	// (default 2s).
	Backoff, MaxBackoff time.Duration
	// DialTimeout bounds one attempt, including the libp2p handshake
	// (default 5s).
	DialTimeout time.Duration
	// Network, if set, is the netget network the node joins: a connected
	// peer whose identify protocols name another network's DHT
	// (/netget/<other>/kad/1.0.0) and not this one's fails at once with a
	// *NetworkError, instead of joining a DHT that never answers. Empty
	// checks nothing.
	Network string
	// Resolver resolves DNS multiaddrs. Nil means a resolver using the
	// system's DNS, built by the call that needs it.
	Resolver *madns.Resolver
	// Logger receives a warning per unreachable peer or unresolved address
	// when joining still succeeds. Nil discards.
	Logger *slog.Logger
	// OnAttempt, if set, is called after every dial attempt with the peer,
	// the attempt number (from 1) and its error (nil on success, after the
	// connection is protected). It is an observability and test seam: it
	// runs on the dialling goroutine, concurrently for different peers, and
	// the peer's next attempt waits for it to return.
	OnAttempt func(p peer.ID, attempt int, err error)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Attempts:    3,
		Backoff:     200 * time.Millisecond,
		MaxBackoff:  2 * time.Second,
		DialTimeout: 5 * time.Second,
	}
}

// Validate reports a negative count or duration as ErrBadConfig.
func (c Config) Validate() error {
	switch {
	case c.Attempts < 0:
		return fmt.Errorf("%w: attempts %d", ErrBadConfig, c.Attempts)
	case c.Backoff < 0, c.MaxBackoff < 0:
		return fmt.Errorf("%w: backoff %s, max backoff %s", ErrBadConfig, c.Backoff, c.MaxBackoff)
	case c.DialTimeout < 0:
		return fmt.Errorf("%w: dial timeout %s", ErrBadConfig, c.DialTimeout)
	}
	return nil
}

// withDefaults fills zero fields, except Resolver, from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Attempts == 0 {
		c.Attempts = d.Attempts
	}
	if c.Backoff == 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Join resolves addrs and connects to the peers they name, as a node does at
// start; see Resolve and Connect. It fails with ErrResolve if no address
// resolves, with an *UnreachableError (joined with any resolve errors) if no
// peer connects, and with ErrNoPeers if addrs is empty. When it succeeds,
// addresses that did not resolve are logged as warnings.
func Join(ctx context.Context, h host.Host, addrs []ma.Multiaddr, cfg Config) ([]peer.ID, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Resolver == nil {
		r, err := madns.NewResolver()
		if err != nil {
			return nil, fmt.Errorf("dns resolver: %w", err)
		}
		cfg.Resolver = r
	}
	peers, rerrs := resolve(ctx, cfg.Resolver, addrs)
	if len(peers) == 0 {
		if len(rerrs) > 0 {
			return nil, errors.Join(rerrs...)
		}
		return nil, ErrNoPeers
	}
	connected, err := Connect(ctx, h, peers, cfg)
	if err != nil {
		return nil, errors.Join(append([]error{err}, rerrs...)...)
	}
	for _, e := range rerrs {
		cfg.Logger.Warn("bootstrap address not resolved", "err", e)
	}
	return connected, nil
}
