package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

func pingCommand() *cli.Command {
	return &cli.Command{
		Name:      "ping",
		Usage:     "find the providers of a service and ping each, directly or through its relay",
		ArgsUsage: "NAME",
		Description: "Joins the network as a short-lived client, finds NAME's providers as `find` does, and\n" +
			"pings each once (libp2p ping) at the addresses its signed record names: through a relay\n" +
			"when the provider is behind NAT (its record carries /p2p/<registry>/p2p-circuit addresses).\n" +
			"Prints one line per provider (peer, round trip, relayed or direct, the address used), or\n" +
			"one JSON object per line with --json. Exits 1 when no provider answered.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 10 * time.Second, Usage: "give up after this long, joining included"},
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Usage: "ping at most this many providers (0: every one found)"},
		},
		Action: pingAction,
	}
}

// pingResult is ping's --json output line; fields are only added.
type pingResult struct {
	Peer    string  `json:"peer"`
	Service string  `json:"service"`
	RTTMS   float64 `json:"rtt_ms,omitempty"`
	Relayed bool    `json:"relayed"`
	Addr    string  `json:"addr,omitempty"`
	Error   string  `json:"error,omitempty"`
}

func pingAction(c *cli.Context) error {
	name, err := serviceArg(c)
	if err != nil {
		return err
	}
	timeout, limit := c.Duration("timeout"), c.Int("limit")
	if timeout <= 0 || limit < 0 {
		return usageError("--timeout must be positive and --limit not negative")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	n, err := startNode(ctx, c, findRole())
	if err != nil {
		return joinTimedOut(ctx, c, timeout, err)
	}
	defer n.Close()
	var found []*record.Service
	err = n.Find(ctx, name, dht.FindOptions{Limit: limit, Timeout: timeout - time.Since(start)}, func(r dht.Result) bool {
		found = append(found, r.Record)
		return true
	})
	if len(found) == 0 {
		return fmt.Errorf("ping %s: no provider found on network %q: %w", name, c.String("network"), err)
	}
	answered := 0
	for _, svc := range found {
		pong, err := n.Ping(ctx, svc)
		if err == nil {
			answered++
		}
		printPong(c.App.Writer, c.Bool("json"), svc, pong, err)
	}
	if answered == 0 {
		return fmt.Errorf("ping %s: none of %d providers answered", name, len(found))
	}
	return nil
}

func printPong(w io.Writer, asJSON bool, svc *record.Service, pong netget.Pong, err error) {
	r := pingResult{Peer: svc.Peer.String(), Service: svc.Name, Relayed: pong.Relayed}
	if err != nil {
		r.Error = err.Error()
	} else {
		r.RTTMS = float64(pong.RTT.Microseconds()) / 1000
		if pong.Addr != nil {
			r.Addr = pong.Addr.String()
		}
	}
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
		return
	}
	switch {
	case err != nil:
		fmt.Fprintf(w, "%s %s error=%q\n", r.Peer, r.Service, r.Error)
	case r.Relayed:
		fmt.Fprintf(w, "%s %s rtt=%s relayed via %s\n", r.Peer, r.Service, pong.RTT.Round(time.Microsecond), r.Addr)
	default:
		fmt.Fprintf(w, "%s %s rtt=%s direct to %s\n", r.Peer, r.Service, pong.RTT.Round(time.Microsecond), r.Addr)
	}
}
