package p2p

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// Reachability is how a host expects others to reach it: what AutoNAT
// finds out (ReachabilityAuto), or what its operator knows.
type Reachability int

const (
	// ReachabilityAuto lets AutoNAT (v1) decide, from dial-backs by peers
	// that offer the AutoNAT service (registries do). Until it decides,
	// the host is "unknown" and advertises its own addresses only.
	ReachabilityAuto Reachability = iota
	// ReachabilityPublic says the host's addresses are dialable from
	// anywhere (a registry on a public address).
	ReachabilityPublic
	// ReachabilityPrivate says the host is behind a NAT or firewall: it
	// reserves slots on its relays at once and advertises their circuit
	// addresses.
	ReachabilityPrivate
)

// ParseReachability parses "auto", "public" or "private".
func ParseReachability(s string) (Reachability, error) {
	for _, r := range []Reachability{ReachabilityAuto, ReachabilityPublic, ReachabilityPrivate} {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: reachability %q: want auto, public or private", ErrBadConfig, s)
}

// String returns "auto", "public" or "private".
func (r Reachability) String() string {
	switch r {
	case ReachabilityAuto:
		return "auto"
	case ReachabilityPublic:
		return "public"
	case ReachabilityPrivate:
		return "private"
	}
	return fmt.Sprintf("Reachability(%d)", int(r))
}

// RelayService bounds the circuit relay v2 service a host offers to
// peers behind NAT (go-libp2p's relay; registries turn it on). Each
// reservation holds one connection of the relay's connection manager, so
// keep MaxReservations well under Config.ConnHigh.
type RelayService struct {
	// Enabled serves the relay protocol (Registry preset: true; it runs
	// while the host believes itself public).
	Enabled bool
	// MaxReservations is the most relay slots held at once, all peers
	// together (default 128). A peer holds at most one (go-libp2p's rule).
	MaxReservations int
	// MaxReservationsPerIP is the most slots held by peers behind one IP
	// address (default 8).
	MaxReservationsPerIP int
	// MaxReservationsPerASN is the most slots held by peers of one
	// autonomous system, for IPv6 addresses (default 32).
	MaxReservationsPerASN int
	// MaxCircuits is the most relayed connections open at once to or
	// from one peer (default 16).
	MaxCircuits int
	// ReservationTTL is how long a slot lasts unless refreshed; holders
	// refresh it before it ends (default 1h).
	ReservationTTL time.Duration
	// CircuitDuration is how long one relayed connection may last before
	// the relay resets it (default 2m).
	CircuitDuration time.Duration
	// CircuitBytes is how many bytes one relayed connection may carry in
	// each direction before the relay resets it (default 128 KiB).
	CircuitBytes int64
}

// DefaultRelayService returns go-libp2p's relay defaults, turned off.
func DefaultRelayService() RelayService {
	d := relay.DefaultResources()
	return RelayService{
		MaxReservations:       d.MaxReservations,
		MaxReservationsPerIP:  d.MaxReservationsPerIP,
		MaxReservationsPerASN: d.MaxReservationsPerASN,
		MaxCircuits:           d.MaxCircuits,
		ReservationTTL:        d.ReservationTTL,
		CircuitDuration:       d.Limit.Duration,
		CircuitBytes:          d.Limit.Data,
	}
}

// Validate checks the limits of an enabled service: each must be
// positive (an unbounded relay is not offered).
func (r RelayService) Validate() error {
	if !r.Enabled {
		return nil
	}
	if r.MaxReservations < 1 || r.MaxReservationsPerIP < 1 || r.MaxReservationsPerASN < 1 || r.MaxCircuits < 1 ||
		r.ReservationTTL <= 0 || r.CircuitDuration <= 0 || r.CircuitBytes < 1 {
		return fmt.Errorf("%w: relay service limits must be positive: reservations %d, per IP %d, per ASN %d, "+
			"circuits %d, reservation TTL %s, circuit duration %s, circuit bytes %d", ErrBadConfig,
			r.MaxReservations, r.MaxReservationsPerIP, r.MaxReservationsPerASN, r.MaxCircuits,
			r.ReservationTTL, r.CircuitDuration, r.CircuitBytes)
	}
	return nil
}

// resources is r in go-libp2p's terms.
func (r RelayService) resources() relay.Resources {
	res := relay.DefaultResources()
	res.MaxReservations, res.MaxReservationsPerIP, res.MaxReservationsPerASN = r.MaxReservations, r.MaxReservationsPerIP, r.MaxReservationsPerASN
	res.MaxCircuits, res.ReservationTTL = r.MaxCircuits, r.ReservationTTL
	res.Limit = &relay.RelayLimit{Duration: r.CircuitDuration, Data: r.CircuitBytes}
	return res
}

// AutoNATService bounds the AutoNAT (v1) service a host offers: it dials
// back peers that ask, so they learn whether they are reachable
// (registries turn it on). It only ever dials the address a request came
// from, never one the asker names elsewhere.
type AutoNATService struct {
	// Enabled answers AutoNAT requests (Registry preset: true).
	Enabled bool
	// PerMinute is the most requests answered in a minute, all peers
	// together (default 30).
	PerMinute int
	// PeerPerMinute is the most requests answered in a minute for one
	// peer (default 3).
	PeerPerMinute int
}

// DefaultAutoNATService returns go-libp2p's AutoNAT service limits, turned off.
func DefaultAutoNATService() AutoNATService {
	return AutoNATService{PerMinute: 30, PeerPerMinute: 3}
}

// Validate checks the limits of an enabled service.
func (a AutoNATService) Validate() error {
	if a.Enabled && (a.PerMinute < 1 || a.PeerPerMinute < 1) {
		return fmt.Errorf("%w: autonat service limits must be positive: %d a minute, %d a minute per peer",
			ErrBadConfig, a.PerMinute, a.PeerPerMinute)
	}
	return nil
}

// AutoRelay's pacing for hosts that are not public: how often it asks
// Config.Relays again for relays it holds no slot on, how long a relay
// that refused a reservation is left alone, and how often the source
// looks for relays while it knows none yet (the node joins its registries
// after the host starts).
const (
	relayMinInterval = 10 * time.Second
	relayBackoff     = time.Minute
	relayPoll        = 200 * time.Millisecond
)

// natOptions are the libp2p options for cfg's reachability, relay and
// AutoNAT services, AutoRelay and hole punching.
func natOptions(cfg Config) []libp2p.Option {
	// The relay transport dials circuit addresses, which is how any host,
	// even one listening nowhere (a find's), reaches a provider behind
	// NAT. A host with no relay slot cannot be reached through one: a v2
	// relay connects only peers holding a reservation.
	opts := []libp2p.Option{libp2p.EnableRelay()}
	switch cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.RelayService.Enabled {
		opts = append(opts, libp2p.EnableRelayService(relay.WithResources(cfg.RelayService.resources())))
	}
	if a := cfg.AutoNATService; a.Enabled {
		opts = append(opts, libp2p.EnableNATService(), libp2p.AutoNATServiceRateLimit(a.PerMinute, a.PeerPerMinute, time.Minute))
	}
	if cfg.Relays != nil && cfg.Reachability != ReachabilityPublic && len(cfg.ListenAddrs) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(relaySource(cfg.Relays),
			autorelay.WithMinCandidates(1), autorelay.WithBootDelay(0),
			autorelay.WithMinInterval(relayMinInterval), autorelay.WithBackoff(relayBackoff)))
	}
	if cfg.HolePunching && len(cfg.ListenAddrs) > 0 {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	return opts
}

// relaySource feeds AutoRelay the relays relays returns, waiting (until
// AutoRelay cancels ctx) for there to be some. The goroutine belongs to
// AutoRelay, which cancels ctx when it stops or the host closes.
func relaySource(relays func() []peer.AddrInfo) autorelay.PeerSource {
	return func(ctx context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, max(num, 0))
		go func() {
			defer close(out)
			t := time.NewTicker(relayPoll)
			defer t.Stop()
			for {
				if ps := relays(); len(ps) > 0 {
					for _, p := range ps[:min(len(ps), num)] {
						out <- p
					}
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
		return out
	}
}

// NATStatus is how a host is reachable now.
type NATStatus struct {
	// Reachability is what the host believes: network.ReachabilityPublic,
	// Private, or Unknown while AutoNAT has not decided.
	Reachability network.Reachability
	// RelayAddrs are the host's circuit addresses
	// (<relay addr>/p2p/<relay>/p2p-circuit), which it advertises while
	// private; Relays the relays they go through.
	RelayAddrs []ma.Multiaddr
	Relays     []peer.ID
}

// String describes s in a few words: "public", "private via relays <ids>",
// "private (no relay yet)" or "unknown".
func (s NATStatus) String() string {
	switch s.Reachability {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		if len(s.Relays) == 0 {
			return "private (no relay yet)"
		}
		out := "private via relays"
		for _, p := range s.Relays {
			out += " " + p.String()
		}
		return out
	}
	return "unknown"
}

// Status returns how h is reachable now: its reachability (as the host
// believes it, from AutoNAT or a forced reachability) and the relay
// addresses among its addresses.
func Status(h host.Host) NATStatus {
	s := NATStatus{Reachability: network.ReachabilityUnknown}
	if r, ok := h.(interface{ Reachability() network.Reachability }); ok {
		s.Reachability = r.Reachability()
	}
	for _, a := range h.Addrs() {
		relayID, ok := RelayOf(a)
		if !ok {
			continue
		}
		s.RelayAddrs = append(s.RelayAddrs, a)
		if !slices.Contains(s.Relays, relayID) {
			s.Relays = append(s.Relays, relayID)
		}
	}
	return s
}

// RelayOf returns the relay a circuit address goes through
// (…/p2p/<relay>/p2p-circuit…), and whether a is one.
func RelayOf(a ma.Multiaddr) (peer.ID, bool) {
	var relayID peer.ID
	circuit := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			if !circuit {
				relayID, _ = peer.Decode(c.Value())
			}
		case ma.P_CIRCUIT:
			circuit = true
		}
		if circuit {
			break
		}
	}
	return relayID, circuit && relayID != ""
}
