package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

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
			"--deregister-after it deletes them.",
		Flags: append([]cli.Flag{
			&cli.DurationFlag{Name: "health-interval", Value: def.Interval, Usage: "how often each provider is checked (libp2p ping); 0 turns checks off"},
			&cli.IntFlag{Name: "health-failures", Value: def.Failures, Usage: "consecutive failed checks that make a provider unhealthy"},
			&cli.DurationFlag{Name: "deregister-after", Value: def.DeregisterAfter, Usage: "how long a provider stays unhealthy before its records are deleted"},
		}, bridgeFlags()...),
		Action: registryAction,
	}
}

// registryRole is the long-lived DHT server others bootstrap from.
func registryRole() role {
	return role{
		dataDir:      "registry",
		persist:      true,
		listen:       []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		mode:         dht.ModeServer,
		health:       dht.RegistryHealth(),
		joinOptional: true,
		registry:     true,
	}
}

func registryAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("registry takes no arguments, got %q", c.Args().Slice())
	}
	r := registryRole()
	r.health.Interval = c.Duration("health-interval")
	r.health.Failures = c.Int("health-failures")
	r.health.DeregisterAfter = c.Duration("deregister-after")
	if r.health.Interval < 0 || r.health.Failures < 1 || r.health.DeregisterAfter < time.Second {
		return usageError("--health-interval must not be negative, --health-failures at least 1, --deregister-after at least 1s")
	}
	ctx := c.Context
	n, err := startNode(ctx, c, r)
	if err != nil {
		return err
	}
	defer n.Close()
	stopBridge, _, err := startBridge(ctx, c, n.dht, n.log, n.metrics)
	if err != nil {
		return err
	}
	defer shutdownBridge(stopBridge) // before the node closes: top-down
	for _, a := range n.fullAddrs() {
		fmt.Fprintln(c.App.Writer, a)
	}
	n.log.Info("registry running; pass one of the addresses above as --bootstrap", "node", n.describe(),
		"data_dir", n.dataDir, "records", n.dht.StoredRecords())
	<-ctx.Done()
	n.log.Info("registry shutting down")
	return nil
}
