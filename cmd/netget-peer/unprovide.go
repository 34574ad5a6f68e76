package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"
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
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	defer b.close()
	tomb, err := b.unprovide(c.Context, name)
	if err != nil {
		return err
	}
	printEvent(c.App.Writer, c.Bool("json"), "withdrawn", tomb)
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
