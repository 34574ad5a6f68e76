package main

import (
	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p"
)

// reachabilityFlag is the global --reachability flag.
func reachabilityFlag() cli.Flag {
	return &cli.StringFlag{Name: "reachability", EnvVars: []string{"NETGET_REACHABILITY"},
		Usage: "how others reach this node: auto (AutoNAT decides), public, or private (behind NAT: reserve a slot " +
			"on the registries' relays at once and advertise the relay addresses; implies --dht-mode client unless set) " +
			"(default: public for registries, auto otherwise)"}
}

// applyReachability reads --reachability into cfg. A node that says it
// is private is a DHT client unless --dht-mode says otherwise: peers
// that put it in their routing tables could not dial it.
func applyReachability(c *cli.Context, cfg *netget.Config) error {
	if !c.IsSet("reachability") {
		return nil
	}
	r, err := p2p.ParseReachability(c.String("reachability"))
	if err != nil {
		return usageError("--reachability: %w", err)
	}
	cfg.Host.Reachability = r
	if r == p2p.ReachabilityPrivate && !c.IsSet("dht-mode") {
		cfg.DHT.Mode = dht.ModeClient
	}
	return nil
}

// relayFlags are a registry's relay and AutoNAT services and their limits
// (p2p.RelayService, p2p.AutoNATService).
func relayFlags() []cli.Flag {
	r, a := p2p.DefaultRelayService(), p2p.DefaultAutoNATService()
	return []cli.Flag{
		&cli.BoolFlag{Name: "relay-service", Value: true,
			Usage: "offer peers behind NAT a circuit relay v2 slot (bounded by the --relay-… flags); --relay-service=false turns it off"},
		&cli.IntFlag{Name: "relay-max-reservations", Value: r.MaxReservations,
			Usage: "relay slots held at once, all peers together (one per peer); keep it well under --conn-high"},
		&cli.IntFlag{Name: "relay-max-reservations-per-ip", Value: r.MaxReservationsPerIP, Usage: "relay slots held by peers behind one IP address"},
		&cli.IntFlag{Name: "relay-max-reservations-per-asn", Value: r.MaxReservationsPerASN, Usage: "relay slots held by peers of one autonomous system (IPv6)"},
		&cli.IntFlag{Name: "relay-max-circuits", Value: r.MaxCircuits, Usage: "relayed connections open at once to or from one peer"},
		&cli.DurationFlag{Name: "relay-reservation-ttl", Value: r.ReservationTTL, Usage: "how long a relay slot lasts unless its holder refreshes it"},
		&cli.DurationFlag{Name: "relay-circuit-duration", Value: r.CircuitDuration, Usage: "how long one relayed connection may last before the relay resets it"},
		&cli.Int64Flag{Name: "relay-circuit-bytes", Value: r.CircuitBytes, Usage: "bytes one relayed connection may carry each way before the relay resets it"},
		&cli.BoolFlag{Name: "autonat-service", Value: true,
			Usage: "dial peers back when they ask whether they are reachable (AutoNAT v1); --autonat-service=false turns it off"},
		&cli.IntFlag{Name: "autonat-rate", Value: a.PerMinute, Usage: "AutoNAT requests answered a minute, all peers together"},
		&cli.IntFlag{Name: "autonat-peer-rate", Value: a.PeerPerMinute, Usage: "AutoNAT requests answered a minute for one peer"},
	}
}

// applyRelayFlags reads relayFlags into cfg; netget.New validates them (a
// limit below 1 is a usage error).
func applyRelayFlags(c *cli.Context, cfg *netget.Config) {
	r := &cfg.Host.RelayService
	r.Enabled = c.Bool("relay-service")
	r.MaxReservations, r.MaxReservationsPerIP = c.Int("relay-max-reservations"), c.Int("relay-max-reservations-per-ip")
	r.MaxReservationsPerASN, r.MaxCircuits = c.Int("relay-max-reservations-per-asn"), c.Int("relay-max-circuits")
	r.ReservationTTL, r.CircuitDuration = c.Duration("relay-reservation-ttl"), c.Duration("relay-circuit-duration")
	r.CircuitBytes = c.Int64("relay-circuit-bytes")
	a := &cfg.Host.AutoNATService
	a.Enabled, a.PerMinute, a.PeerPerMinute = c.Bool("autonat-service"), c.Int("autonat-rate"), c.Int("autonat-peer-rate")
}
