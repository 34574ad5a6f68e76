package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
)

func registryCommand() *cli.Command {
	def := dht.RegistryHealth()
	return &cli.Command{
		Name:  "registry",
		Usage: "run a registry node: a long-lived DHT server others bootstrap from",
		Description: "Prints the registry's full multiaddrs (with /p2p/ID), one per line on stdout: pass any\n" +
			"of them to other nodes as --bootstrap. Runs until SIGINT or SIGTERM. A registry may\n" +
			"itself join other registries with --bootstrap.\n\n" +
			"It keeps the records it holds in a datastore in its data dir ($NETGET_HOME/registry by\n" +
			"default), so a restart serves them again, and checks every provider it holds records\n" +
			"for: after --health-failures failed checks it stops serving its records, and after\n" +
			"--deregister-after it deletes them. Its record store is bounded per signing key, per source\n" +
			"address prefix, per service and in bytes (--max-records-per-key, --max-records-per-source,\n" +
			"--max-records-per-service, --max-store-mib); when full, it evicts records of providers that\n" +
			"never passed a check or are unhealthy before it refuses a newcomer.\n" +
			"A provider is served only once a check has passed (its first record is checked at once),\n" +
			"healthy providers first, longest known first; a new record does not clear a failed\n" +
			"verdict, it only brings the next check forward. Each\n" +
			"provider is checked on its own schedule, providers not yet healthy in a lane apart, and\n" +
			"each address named in records is dialled at most once per interval for another peer.\n\n" +
			"It offers peers behind NAT a circuit relay v2 slot (--relay-… flags bound it) and AutoNAT\n" +
			"dial-backs (--autonat-…); providers that are not public reserve a slot on their registries\n" +
			"and advertise the relay addresses in their records.\n\n" +
			"Registries of one network sync without a leader: each forwards the records it takes to\n" +
			"the registries it is connected to, and every --sync-interval pulls from each of them what it\n" +
			"lacks (a digest, then only the differences; at once with a registry it newly connects to),\n" +
			"so a registry that joins or restarts empty catches up without waiting for republishes.\n" +
			"Synced records are verified and bounded exactly as pushed ones; health stays local.\n" +
			"It serves the control socket in its data dir: `netget-peer status --data-dir DIR`.",
		Flags: append([]cli.Flag{
			&cli.DurationFlag{Name: "health-interval", Value: def.Interval, Usage: "how often each provider is checked (libp2p ping); 0 turns checks off"},
			&cli.IntFlag{Name: "health-failures", Value: def.Failures, Usage: "consecutive failed checks that make a provider unhealthy"},
			&cli.DurationFlag{Name: "deregister-after", Value: def.DeregisterAfter, Usage: "how long a provider stays unhealthy before its records are deleted (and how long it is remembered after)"},
			&cli.DurationFlag{Name: "health-timeout", Value: def.Timeout, Usage: "bound on one check, dialling included"},
			&cli.DurationFlag{Name: "health-dial-timeout", Value: def.DialTimeout, Usage: "bound on dialling a provider the registry is not connected to"},
			&cli.IntFlag{Name: "health-concurrency", Value: def.Concurrency, Usage: "checks in flight of healthy providers (the ones served)"},
			&cli.IntFlag{Name: "health-suspect-concurrency", Value: def.SuspectConcurrency, Usage: "checks in flight of providers not yet checked or unhealthy (a lane apart)"},
			&cli.Float64Flag{Name: "health-dial-rate", Value: def.DialRate, Usage: "check dials per second to one host (IP or DNS name)"},
			&cli.IntFlag{Name: "health-dial-burst", Value: def.DialBurst, Usage: "burst of check dials to one host"},
			&cli.StringFlag{Name: "health-addrs", Value: def.Addrs.String(), Usage: "`POLICY` for provider addresses accepted and dialled: auto (public only while the registry listens on a public address), any (LANs, tests) or public"},
		}, append(append(append(storeFlags(), syncFlags()...), relayFlags()...), bridgeFlags()...)...),
		Action: registryAction,
	}
}

// registryRole is the long-lived DHT server others bootstrap from
// (netget.Registry), in $NETGET_HOME/registry by default.
func registryRole() role { return role{preset: netget.Registry, dataDir: "registry"} }

func registryAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("registry takes no arguments, got %q", c.Args().Slice())
	}
	h := dht.RegistryHealth()
	h.Interval = c.Duration("health-interval")
	h.Failures = c.Int("health-failures")
	h.DeregisterAfter = c.Duration("deregister-after")
	if h.Interval < 0 || h.Failures < 1 || h.DeregisterAfter < time.Second {
		return usageError("--health-interval must not be negative, --health-failures at least 1, --deregister-after at least 1s")
	}
	store, err := storeLimits(c)
	if err != nil {
		return err
	}
	if err := healthFlags(c, &h); err != nil {
		return err
	}
	sync, err := syncConfig(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	n, err := startNode(ctx, c, registryRole(), func(cfg *netget.Config) error {
		cfg.DHT.Health, cfg.DHT.Store, cfg.DHT.Sync = h, store, sync
		applyRelayFlags(c, cfg)
		return nil
	}, withBridge(c))
	if err != nil {
		return err
	}
	defer n.Close() // the bridge first: top-down
	// The control socket serves `status`; a registry runs without it
	// (saying why) rather than not at all.
	serve, err := controlServer(n)
	if err != nil {
		n.log.Warn("registry running without a control socket; `status` cannot reach it", "err", err)
		serve = func(ctx context.Context) error { <-ctx.Done(); return nil }
	}
	for _, a := range n.Addrs() {
		fmt.Fprintln(c.App.Writer, a)
	}
	n.log.Info("registry running; pass one of the addresses above as --bootstrap", "node", n.describe(),
		"data_dir", n.dataDir, "records", n.dht.StoredRecords())
	err = serve(ctx)
	n.log.Info("registry shutting down")
	return err
}

// syncFlags are a registry's sync limits (dht.Sync).
func syncFlags() []cli.Flag {
	def := dht.RegistrySync()
	return []cli.Flag{
		&cli.DurationFlag{Name: "sync-interval", Value: def.Interval,
			Usage: "time between reconciliations with the other registries; 0 turns sync (forwarding too) off"},
		&cli.IntFlag{Name: "sync-max-records", Value: def.MaxRecords, Usage: "most records one reconciliation takes"},
		&cli.Int64Flag{Name: "sync-max-mib", Value: def.MaxBytes >> 20, Usage: "most MiB one reconciliation reads"},
		&cli.Float64Flag{Name: "sync-peer-rate-mib", Value: def.PeerRate / (1 << 20),
			Usage: "MiB per second of records this registry sends one peer's pulls"},
		&cli.IntFlag{Name: "sync-peer-burst-kib", Value: def.PeerBurst >> 10,
			Usage: "burst of --sync-peer-rate-mib, in KiB (at least one pull: 160)"},
		&cli.IntFlag{Name: "sync-forward-queue", Value: def.ForwardQueue,
			Usage: "records waiting to be forwarded to one registry; beyond, the next reconciliation brings them"},
	}
}

// syncConfig reads syncFlags, or returns a usage error.
func syncConfig(c *cli.Context) (dht.Sync, error) {
	s := dht.Sync{
		Interval:     c.Duration("sync-interval"),
		MaxRecords:   c.Int("sync-max-records"),
		MaxBytes:     c.Int64("sync-max-mib") << 20,
		PeerRate:     c.Float64("sync-peer-rate-mib") * (1 << 20),
		PeerBurst:    c.Int("sync-peer-burst-kib") << 10,
		ForwardQueue: c.Int("sync-forward-queue"),
	}
	if s.Interval < 0 || s.MaxRecords < 1 || s.MaxBytes < 1 || s.PeerRate <= 0 || s.PeerBurst < dht.MinSyncPeerBurst || s.ForwardQueue < 1 {
		return s, usageError("--sync-interval must not be negative, --sync-max-records, --sync-max-mib, "+
			"--sync-peer-rate-mib and --sync-forward-queue must be positive, --sync-peer-burst-kib at least %d",
			dht.MinSyncPeerBurst>>10)
	}
	return s, nil
}

// storeFlags are the record store's limits (dht.StoreLimits).
func storeFlags() []cli.Flag {
	def := dht.DefaultStoreLimits()
	return []cli.Flag{
		&cli.IntFlag{Name: "max-records-per-key", Value: def.PerKey,
			Usage: "most records one signing key (provider) may have in the store, over all services"},
		&cli.IntFlag{Name: "max-records-per-source", Value: def.PerSource,
			Usage: "most records the store keeps that were pushed from one source address prefix"},
		&cli.IntFlag{Name: "source-prefix-v4", Value: def.SourceBitsV4,
			Usage: "IPv4 prefix length of one source (loopback addresses count one by one)"},
		&cli.IntFlag{Name: "source-prefix-v6", Value: def.SourceBitsV6, Usage: "IPv6 prefix length of one source"},
		&cli.IntFlag{Name: "max-records-per-service", Value: def.PerService, Usage: "most providers one service is stored for"},
		&cli.Int64Flag{Name: "max-store-mib", Value: def.Bytes >> 20,
			Usage: "the store's budget in MiB: each record costs its envelope plus its index entry"},
	}
}

// storeLimits reads storeFlags, or returns a usage error.
func storeLimits(c *cli.Context) (dht.StoreLimits, error) {
	l := dht.StoreLimits{
		PerKey:       c.Int("max-records-per-key"),
		PerSource:    c.Int("max-records-per-source"),
		SourceBitsV4: c.Int("source-prefix-v4"),
		SourceBitsV6: c.Int("source-prefix-v6"),
		PerService:   c.Int("max-records-per-service"),
		Bytes:        c.Int64("max-store-mib") << 20,
	}
	if l.PerKey < 1 || l.PerSource < 1 || l.PerService < 1 || l.Bytes < 1 ||
		l.SourceBitsV4 < 1 || l.SourceBitsV4 > 32 || l.SourceBitsV6 < 1 || l.SourceBitsV6 > 128 {
		return l, usageError("--max-records-per-key, --max-records-per-source, --max-records-per-service and " +
			"--max-store-mib must be at least 1, --source-prefix-v4 1 to 32, --source-prefix-v6 1 to 128")
	}
	return l, nil
}

// healthFlags reads the health flags beyond interval, failures and
// deregistration into h; dht.New validates them (negative: usage error).
func healthFlags(c *cli.Context, h *dht.Health) error {
	h.Timeout, h.DialTimeout = c.Duration("health-timeout"), c.Duration("health-dial-timeout")
	h.Concurrency, h.SuspectConcurrency = c.Int("health-concurrency"), c.Int("health-suspect-concurrency")
	h.DialRate, h.DialBurst = c.Float64("health-dial-rate"), c.Int("health-dial-burst")
	if !c.IsSet("health-timeout") {
		h.Timeout = 0 // the default follows --health-interval
	}
	var err error
	if h.Addrs, err = dht.ParseAddrPolicy(c.String("health-addrs")); err != nil {
		return usageError("--health-addrs: %w", err)
	}
	return nil
}
