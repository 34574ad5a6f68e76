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
			&cli.BoolFlag{Name: "registry", Usage: "the registry identity (registry.key) instead of the node's"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON object"},
		},
		Action: func(c *cli.Context) error {
			r := serviceRole()
			if c.Bool("registry") {
				r.identityFile = "registry.key"
			}
			path, err := identityPath(c, r)
			if err != nil {
				return err
			}
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
