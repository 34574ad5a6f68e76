package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/dht"
)

func registryCommand() *cli.Command {
	return &cli.Command{
		Name:  "registry",
		Usage: "run a registry node: a long-lived DHT server others bootstrap from",
		Description: "Prints the registry's full multiaddrs (with /p2p/ID), one per line on stdout: pass any\n" +
			"of them to other nodes as --bootstrap. Runs until SIGINT or SIGTERM. A registry may\n" +
			"itself join other registries with --bootstrap.",
		Action: registryAction,
	}
}

func registryAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("registry takes no arguments, got %q", c.Args().Slice())
	}
	ctx := c.Context
	n, err := startNode(ctx, c, role{
		identityFile: "registry.key",
		listen:       []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		mode:         dht.ModeServer,
		joinOptional: true,
	})
	if err != nil {
		return err
	}
	defer n.Close()
	for _, a := range n.fullAddrs() {
		fmt.Fprintln(c.App.Writer, a)
	}
	n.log.Info("registry running; pass one of the addresses above as --bootstrap", "node", n.describe())
	<-ctx.Done()
	n.log.Info("registry shutting down")
	return nil
}
