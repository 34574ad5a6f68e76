package main

import (
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/p2p"
)

func idCommand() *cli.Command {
	return &cli.Command{
		Name:  "id",
		Usage: "print this node's peer ID (creating its identity key on first use)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "registry", Usage: "the registry's identity (in $NETGET_HOME/registry) instead of the node's"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON object"},
		},
		Action: func(c *cli.Context) error {
			r := serviceRole()
			if c.Bool("registry") {
				r = registryRole()
			}
			dir, err := dataDir(c, r)
			if err != nil {
				return err
			}
			path := identityPath(c, dir)
			key, err := p2p.LoadOrCreateIdentity(path)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				b, _ := json.Marshal(map[string]string{"peer": id.String(), "identity": path})
				fmt.Fprintln(c.App.Writer, string(b))
				return nil
			}
			fmt.Fprintln(c.App.Writer, id)
			return nil
		},
	}
}
