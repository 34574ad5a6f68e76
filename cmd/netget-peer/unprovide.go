package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/cmd/netget-peer/control"
	"github.com/netget/netget-peer/dht"
)

func unprovideCommand() *cli.Command {
	return &cli.Command{
		Name:      "unprovide",
		Usage:     "withdraw a service: publish a signed tombstone so finds stop returning it",
		ArgsUsage: "NAME",
		Description: "With a daemon serving the data dir, the daemon stops providing NAME (also across\n" +
			"restarts) and publishes the tombstone. Without one, it joins the network with this node's\n" +
			"identity (identity.key in the data dir, or --identity) just long enough to publish the\n" +
			"tombstone: for a provider that stopped without withdrawing. Prints the withdrawn event\n" +
			"as provide does.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON line"},
			noDaemonFlag(),
		},
		Action: unprovideAction,
	}
}

func unprovideAction(c *cli.Context) error {
	name, err := serviceArg(c)
	if err != nil {
		return err
	}
	cl, dir, err := daemonClient(c)
	if err != nil {
		return err
	}
	if cl != nil {
		defer cl.Close()
		resp, err := cl.Unprovide(c.Context, control.UnprovideRequest{Name: name, Network: daemonNetwork(c)})
		if err != nil {
			return daemonError(dir, err)
		}
		printEvent(c.App.Writer, c.Bool("json"), "withdrawn", resp.Service)
		return nil
	}
	return unprovideForeground(c, name)
}

// unprovideForeground joins the network as the provider, briefly, and
// publishes name's tombstone.
func unprovideForeground(c *cli.Context, name string) error {
	r := serviceRole()
	dir, err := dataDir(c, r)
	if err != nil {
		return err
	}
	// A fresh key would withdraw nothing: the record to replace is signed
	// by the provider's key.
	if key := identityPath(c, dir); !fileExists(key) {
		return fmt.Errorf("unprovide %s: no identity key at %s: this node never provided anything "+
			"(pass the provider's --identity or --data-dir)", name, key)
	}
	n, err := startNode(c.Context, c, r, func(cfg *netget.Config) error {
		if !c.IsSet("dht-mode") {
			cfg.DHT.Mode = dht.ModeClient // in and out: no use joining others' routing tables
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(c.Context, withdrawTimeout)
	defer cancel()
	tomb, err := n.dht.Withdraw(ctx, name)
	if err != nil {
		return fmt.Errorf("withdraw %s: %w", name, err)
	}
	printEvent(c.App.Writer, c.Bool("json"), "withdrawn", tomb)
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
