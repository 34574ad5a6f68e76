package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// daemonAction runs a plain node until interrupted: `netget-peer --bootstrap ADDR`.
func daemonAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("unknown command %q (see --help)", c.Args().First())
	}
	ctx := c.Context
	n, err := startNode(ctx, c, serviceRole())
	if err != nil {
		return err
	}
	defer n.Close()
	for _, a := range n.fullAddrs() {
		fmt.Fprintln(c.App.Writer, a)
	}
	n.log.Info("node running", "node", n.describe(), "bootstrap_peers", len(n.joined))
	<-ctx.Done()
	n.log.Info("node shutting down")
	return nil
}
