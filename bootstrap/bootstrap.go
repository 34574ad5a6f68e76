package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

// EnvVar holds bootstrap multiaddrs, comma-separated, added to the flags.
const EnvVar = "NETGET_BOOTSTRAP"

// protectTag marks bootstrap connections in the connection manager.
const protectTag = "netget-bootstrap"

// Config shapes connecting. Build one with DefaultConfig.
type Config struct {
	// Attempts is how many times each peer is dialled (default 3).
	Attempts int
	// Backoff is the wait after the first failed attempt (default 200ms);
	// it doubles after each further failure, up to MaxBackoff (default 2s).
	Backoff, MaxBackoff time.Duration
	// DialTimeout bounds one attempt (default 5s).
	DialTimeout time.Duration
	// Resolver resolves DNS multiaddrs; nil means a default resolver.
	Resolver *madns.Resolver
	// Logger receives a warning per unreachable peer; nil discards.
	Logger *slog.Logger
	// OnAttempt, if set, is called after every dial attempt (observability
	// and test seam). err is nil on success.
	OnAttempt func(p peer.ID, attempt int, err error)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Attempts: 3, Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second, DialTimeout: 5 * time.Second}
}

// ParseAddrs parses bootstrap multiaddrs from flag values and an environment
// value, each of which may hold several comma-separated addresses. Every
// address must end in /p2p/<peer ID>, except /dnsaddr ones, which resolve to
// such addresses. Duplicates are dropped; order is kept.
func ParseAddrs(flags []string, env string) ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	seen := make(map[string]bool)
	for _, v := range append(append([]string{}, flags...), env) {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" || seen[s] {
				continue
			}
			seen[s] = true
			m, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: %w", ErrBadAddr, s, err)
			}
			if _, err := m.ValueForProtocol(ma.P_P2P); err != nil && !isDNSAddr(m) {
				return nil, fmt.Errorf("%w: %q: must end in /p2p/<peer ID>", ErrBadAddr, s)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

func isDNSAddr(m ma.Multiaddr) bool {
	_, err := m.ValueForProtocol(ma.P_DNSADDR)
	return err == nil
}

// Resolve turns addrs into peers, resolving /dns, /dns4, /dns6 and /dnsaddr
// names. Addresses that resolve are returned even when others fail; the
// failures are joined into the error, each wrapping ErrResolve.
func Resolve(ctx context.Context, r *madns.Resolver, addrs []ma.Multiaddr) ([]peer.AddrInfo, error) {
	if r == nil {
		var err error
		if r, err = madns.NewResolver(); err != nil {
			return nil, fmt.Errorf("dns resolver: %w", err)
		}
	}
	var resolved []ma.Multiaddr
	var errs []error
	for _, a := range addrs {
		if !madns.Matches(a) {
			resolved = append(resolved, a)
			continue
		}
		rs, err := r.Resolve(ctx, a)
		if err == nil && len(rs) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrResolve, a, err))
			continue
		}
		resolved = append(resolved, rs...)
	}
	var infos []peer.AddrInfo
	for _, a := range resolved {
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrBadAddr, a, err))
			continue
		}
		infos = append(infos, *ai)
	}
	return mergeByPeer(infos), errors.Join(errs...)
}

// mergeByPeer groups addresses by peer, keeping first-seen order.
func mergeByPeer(infos []peer.AddrInfo) []peer.AddrInfo {
	idx := make(map[peer.ID]int)
	var out []peer.AddrInfo
	for _, ai := range infos {
		if i, ok := idx[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		idx[ai.ID] = len(out)
		out = append(out, ai)
	}
	return out
}

// Connect dials every peer concurrently, each up to cfg.Attempts times with
// exponential backoff, bounded by ctx, and protects the connections it
// makes. It returns the peers it connected to; if none, an
// *UnreachableError naming each peer and its last error. Peers that fail
// while others succeed are logged as warnings.
func Connect(ctx context.Context, h host.Host, peers []peer.AddrInfo, cfg Config) ([]peer.ID, error) {
	if len(peers) == 0 {
		return nil, ErrNoPeers
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = dial(ctx, h, p, cfg)
		}()
	}
	wg.Wait()
	var connected []peer.ID
	var failed []PeerError
	for i, p := range peers {
		if errs[i] == nil {
			h.ConnManager().Protect(p.ID, protectTag)
			connected = append(connected, p.ID)
			continue
		}
		failed = append(failed, PeerError{ID: p.ID, Addrs: p.Addrs, Err: errs[i]})
	}
	if len(connected) == 0 {
		return nil, &UnreachableError{Peers: failed}
	}
	for _, f := range failed {
		log.Warn("bootstrap peer unreachable", "peer", f.ID, "addrs", f.Addrs, "err", f.Err)
	}
	return connected, nil
}

// dial connects to p with retries; it returns the last error.
func dial(ctx context.Context, h host.Host, p peer.AddrInfo, cfg Config) error {
	attempts := max(cfg.Attempts, 1)
	wait := cfg.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		dctx := ctx
		var cancel context.CancelFunc = func() {}
		if cfg.DialTimeout > 0 {
			dctx, cancel = context.WithTimeout(ctx, cfg.DialTimeout)
		}
		err = h.Connect(dctx, p)
		cancel()
		if cfg.OnAttempt != nil {
			cfg.OnAttempt(p.ID, attempt, err)
		}
		if err == nil || attempt >= attempts || ctx.Err() != nil {
			return err
		}
		// A failed dial is remembered by the swarm's backoff; clear it so
		// the retry really dials.
		if sw, ok := h.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(p.ID)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
		if wait *= 2; cfg.MaxBackoff > 0 && wait > cfg.MaxBackoff {
			wait = cfg.MaxBackoff
		}
	}
}

// Join resolves addrs and connects to the peers: what a node does at start.
func Join(ctx context.Context, h host.Host, addrs []ma.Multiaddr, cfg Config) ([]peer.ID, error) {
	peers, rerr := Resolve(ctx, cfg.Resolver, addrs)
	if len(peers) == 0 {
		if rerr != nil {
			return nil, rerr
		}
		return nil, ErrNoPeers
	}
	connected, err := Connect(ctx, h, peers, cfg)
	if err != nil {
		return nil, errors.Join(err, rerr)
	}
	if rerr != nil && cfg.Logger != nil {
		cfg.Logger.Warn("some bootstrap addresses did not resolve", "err", rerr)
	}
	return connected, nil
}
