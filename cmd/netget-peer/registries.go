package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

// registriesTimeout bounds a registries call to the daemon, adding one
// included (the daemon bounds its dial by its publish timeout, 30s).
const registriesTimeout = 45 * time.Second

func registriesCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print the daemon's answer as a JSON object"}
	return &cli.Command{
		Name:  "registries",
		Usage: "list, add or remove the running daemon's registries",
		Description: "Registries are the peers a node asks directly (the fast path) and pushes its records to.\n" +
			"A daemon starts with the bootstrap peers that announce themselves as registries, and\n" +
			"these commands change the set while it runs, through its control socket. A registry\n" +
			"added is connected to, protected from connection trimming, sent the daemon's records at\n" +
			"once, and kept in <data-dir>/registries.json: the daemon joins it again at its next start,\n" +
			"together with --bootstrap. A registry removed is no longer asked nor pushed to, its\n" +
			"connection is no longer protected, and it is dropped from registries.json. Exits 1 when\n" +
			"no daemon runs in the data dir.",
		Subcommands: []*cli.Command{
			{Name: "ls", Usage: "list the daemon's registries: peer ID, connected or not, addresses",
				Flags: []cli.Flag{jsonFlag}, Action: registriesAction(0, nil)},
			{Name: "add", Usage: "connect to the registry at ADDR (a multiaddr ending in /p2p/<peer ID>) and use it",
				ArgsUsage: "ADDR", Flags: []cli.Flag{jsonFlag}, Action: registriesAction(1, (*control.Client).AddRegistry)},
			{Name: "rm", Usage: "stop using registry PEER (its peer ID)",
				ArgsUsage: "PEER", Flags: []cli.Flag{jsonFlag}, Action: registriesAction(1, (*control.Client).RemoveRegistry)},
		},
	}
}

// registriesChange is a Client call that changes the registries.
type registriesChange func(*control.Client, context.Context, string) (*control.RegistriesResponse, error)

// registriesAction is the action of a registries subcommand taking nargs
// arguments: change (nil for ls) through the daemon, then print the
// daemon's answer.
func registriesAction(nargs int, change registriesChange) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.Args().Len() != nargs {
			return usageError("registries %s takes %d argument(s), got %q", c.Command.Name, nargs, c.Args().Slice())
		}
		dir, err := dataDir(c, serviceRole())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.Context, registriesTimeout)
		defer cancel()
		cl, err := control.Dial(ctx, dir)
		if errors.Is(err, control.ErrNoDaemon) {
			return fmt.Errorf("%w in %s: registries are changed in a running daemon "+
				"(start one with `netget-peer daemon --bootstrap ADDR`)", control.ErrNoDaemon, dir)
		}
		if err != nil {
			return err
		}
		defer cl.Close()
		var resp *control.RegistriesResponse
		if change == nil {
			resp, err = cl.Registries(ctx)
		} else {
			resp, err = change(cl, ctx, c.Args().First())
		}
		if err != nil {
			return daemonError(dir, err)
		}
		printRegistries(c.App.Writer, c.Bool("json"), c.Command.Name, resp)
		return nil
	}
}

// printRegistries writes the daemon's answer: JSON, or for people what
// changed, then one registry a line.
func printRegistries(w io.Writer, asJSON bool, cmd string, resp *control.RegistriesResponse) {
	if asJSON {
		b, _ := json.Marshal(resp)
		fmt.Fprintln(w, string(b))
		return
	}
	switch cmd {
	case "add":
		fmt.Fprintf(w, "added registry %s\n", resp.Peer)
	case "rm":
		fmt.Fprintf(w, "removed registry %s\n", resp.Peer)
	default:
		for _, r := range resp.Registries {
			state := "connected"
			if !r.Connected {
				state = "not-connected"
			}
			fmt.Fprintf(w, "%s %s %s\n", r.Peer, state, strings.Join(r.Addrs, ","))
		}
	}
}
