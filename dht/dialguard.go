package dht

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/time/rate"

	"github.com/netget/netget-peer/record"
)

// AddrPolicy says which provider addresses a registry accepts in records
// and dials in health checks.
type AddrPolicy int

const (
	// AddrsAuto is AddrsPublic while the registry listens on a public
	// address (its host's addresses, observed ones included), else AddrsAny.
	AddrsAuto AddrPolicy = iota
	// AddrsAny accepts and dials any address: LANs, tests, devnet.
	AddrsAny
	// AddrsPublic refuses records with no public address (ErrPrivateAddrs)
	// and dials only the public ones: the addresses of a record are the
	// signer's word, and a registry must not probe its own network for it.
	AddrsPublic
)

// ParseAddrPolicy parses "auto", "any" or "public".
func ParseAddrPolicy(s string) (AddrPolicy, error) {
	for _, p := range []AddrPolicy{AddrsAuto, AddrsAny, AddrsPublic} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: address policy %q: want auto, any or public", ErrBadConfig, s)
}

// String returns the name ParseAddrPolicy accepts.
func (a AddrPolicy) String() string {
	switch a {
	case AddrsAuto:
		return "auto"
	case AddrsAny:
		return "any"
	case AddrsPublic:
		return "public"
	}
	return fmt.Sprintf("AddrPolicy(%d)", int(a))
}

// publicOnly reports whether the policy restricts addresses now; listen
// returns the node's own addresses (for AddrsAuto).
func (a AddrPolicy) publicOnly(listen func() []ma.Multiaddr) bool {
	switch a {
	case AddrsAny:
		return false
	case AddrsPublic:
		return true
	}
	for _, l := range listen() {
		if manet.IsPublicAddr(l) {
			return true
		}
	}
	return false
}

// admitAddrs is the one address rule for records a registry accepts: with
// public set, at least one address must be public.
func admitAddrs(svc *record.Service, public bool) error {
	if !public {
		return nil
	}
	for _, s := range svc.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil && manet.IsPublicAddr(a) {
			return nil
		}
	}
	return fmt.Errorf("%w: %d addresses, none public", ErrPrivateAddrs, len(svc.Addrs))
}

// dialGuard bounds the dials of a node's health checks, whatever records
// name: each distinct address is dialled at most once per round (Interval)
// unless the peer being checked is the one found there, and dials to one
// host (IP or DNS name) are rate-limited. Times come from the node's clock.
type dialGuard struct {
	round time.Duration
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	addrs map[string]dialled       // transport address → last dial
	hosts map[string]*rate.Limiter // host → its dial budget
	swept time.Time
}

// dialled is the last dial of one address in the current round.
type dialled struct {
	at    time.Time
	owner peer.ID // who answered there; "" unknown or nobody
}

func newDialGuard(cfg Health) *dialGuard {
	return &dialGuard{round: cfg.Interval, rate: rate.Limit(cfg.DialRate), burst: cfg.DialBurst,
		addrs: make(map[string]dialled), hosts: make(map[string]*rate.Limiter)}
}

// plan returns the addresses a check of p may dial at now and reserves
// them for this round. limited reports that some were held back only by
// the per-host rate (the check should wait, not fail).
func (g *dialGuard) plan(p peer.ID, addrs []ma.Multiaddr, now time.Time) (ok []ma.Multiaddr, limited bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
	for _, a := range addrs {
		key := guardKey(p, a)
		if d, seen := g.addrs[key]; seen && now.Sub(d.at) < g.round && d.owner != p {
			continue // dialled this round, and not p's
		}
		first, _ := ma.SplitFirst(a)
		if first == nil {
			continue
		}
		lim := g.hosts[first.String()]
		if lim == nil {
			lim = rate.NewLimiter(g.rate, g.burst)
			g.hosts[first.String()] = lim
		}
		if !lim.AllowN(now, 1) {
			limited = true
			continue
		}
		g.addrs[key] = dialled{at: now}
		ok = append(ok, a)
	}
	return ok, limited
}

// guardKey is the destination a dial of p at a reaches: a itself, or for
// a circuit address (…/p2p/<relay>/p2p-circuit), which every peer relayed
// there shares, the circuit to p: checking one relayed provider never
// holds back the check of another.
func guardKey(p peer.ID, a ma.Multiaddr) string {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return a.String() + "/p2p/" + p.String()
	}
	return a.String()
}

// learn records who answered the dials of addrs made to check p: owner
// for every address on success, else whatever each address's error says.
func (g *dialGuard) learn(p peer.ID, addrs []ma.Multiaddr, owner peer.ID, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range addrs {
		if d, ok := g.addrs[guardKey(p, a)]; ok {
			d.owner = owner
			g.addrs[guardKey(p, a)] = d
		}
	}
	var de *swarm.DialError
	if !errors.As(err, &de) {
		return
	}
	for _, te := range de.DialErrors {
		var mm sec.ErrPeerIDMismatch
		if !errors.As(te.Cause, &mm) {
			continue
		}
		t, _ := peer.SplitAddr(te.Address)
		if d, ok := g.addrs[t.String()]; ok {
			d.owner = mm.Actual
			g.addrs[t.String()] = d
		}
	}
}

// sweepLocked forgets dials of past rounds and full host budgets, once a
// round. g.mu must be held.
func (g *dialGuard) sweepLocked(now time.Time) {
	if now.Sub(g.swept) < g.round {
		return
	}
	g.swept = now
	for k, d := range g.addrs {
		if now.Sub(d.at) >= g.round {
			delete(g.addrs, k)
		}
	}
	for k, l := range g.hosts {
		if l.TokensAt(now) >= float64(g.burst) {
			delete(g.hosts, k)
		}
	}
}
