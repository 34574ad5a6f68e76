package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/cmd/netget-peer/control"
	"github.com/netget/netget-peer/record"
)

func findCommand() *cli.Command {
	return &cli.Command{
		Name:      "find",
		Usage:     "find the providers of a service",
		ArgsUsage: "NAME",
		Description: "Joins the network as a short-lived client with a fresh identity, looks NAME up and\n" +
			"prints each provider as soon as its signed record is verified: peer ID, addresses,\n" +
			"metadata and expiry, or one JSON object per line with --json. It ends as soon as the\n" +
			"answer is complete (every registry answered and the DHT walk brings nothing new; dials\n" +
			"to peers that are probably gone are not waited for), or at --timeout. Exits 1 with a\n" +
			"message on stderr saying which when it found no provider.\n\n" +
			"Each result says which path brought it (\"source\" in JSON): registry (a registry it joined\n" +
			"through, asked directly), local (its own store), near (a connected DHT server nearest the\n" +
			"service), walk (a peer the DHT walk queried), provider (the provider itself) or dht (the\n" +
			"DHT value store). The global --no-fast-path skips the registries.\n\n" +
			"When a daemon serves the data dir (`netget-peer daemon`), the daemon's node does the\n" +
			"finding, already joined; the output is the same.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 10 * time.Second, Usage: "give up after this long, joining included (a Go duration such as 5s or 1m)"},
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Usage: "stop after this many providers (0: all found within the timeout)"},
			noDaemonFlag(),
		},
		Action: findAction,
	}
}

func findAction(c *cli.Context) error {
	name, err := serviceArg(c)
	if err != nil {
		return err
	}
	timeout, limit := c.Duration("timeout"), c.Int("limit")
	if timeout <= 0 {
		return usageError("--timeout %s: must be positive", timeout)
	}
	if limit < 0 {
		return usageError("--limit %d: must not be negative", limit)
	}
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	defer b.close()
	start, found := time.Now(), 0
	for r, err := range b.find(c.Context, name, limit, timeout) {
		if err != nil {
			if c.Context.Err() != nil {
				return &exitError{code: exitFailure, err: fmt.Errorf("find %s: interrupted", name)}
			}
			return err
		}
		found++
		printResult(c.App.Writer, c.Bool("json"), r)
	}
	if found == 0 {
		if c.Context.Err() != nil {
			return &exitError{code: exitFailure, err: fmt.Errorf("find %s: interrupted", name)}
		}
		return b.none(name, timeout, time.Since(start))
	}
	return nil
}

// findRole is find's node: a client (netget.Client) with a fresh key,
// which needs bootstrap peers to ask.
func findRole() role {
	return role{preset: func() netget.Config {
		cfg := netget.Client()
		cfg.RequireBootstrap = true
		return cfg
	}}
}

// joinTimedOut blames --timeout, not the network, when find's deadline
// passed while it was still joining (ctx is find's, bounded by timeout).
func joinTimedOut(ctx context.Context, c *cli.Context, timeout time.Duration, err error) error {
	if c.Context.Err() != nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("--timeout %s passed while joining the network, before the search began "+
		"(joining takes a few round trips; give a longer --timeout, such as 5s): %w", timeout, err)}
}

// findResult is find's --json output line: the one view of a found
// record (record.View, as the bridge and the control API show it) and the
// path that brought it (dht.Source: local, registry, near, walk, provider,
// dht; local means the node held it and answered with no round trip);
// fields are only added.
type findResult struct {
	record.View
	Source    string  `json:"source"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

func printResult(w io.Writer, asJSON bool, r control.Result) {
	s := r.Record
	if asJSON {
		b, _ := json.Marshal(findResult{View: s, Source: r.Source, ElapsedMS: float64(r.Elapsed.Microseconds()) / 1000})
		fmt.Fprintln(w, string(b))
		return
	}
	var meta []string
	for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
		meta = append(meta, k+"="+s.Meta[k])
	}
	fmt.Fprintf(w, "%s %s addrs=%s meta=%s expires=%s\n", s.Peer, s.Service, strings.Join(s.Addrs, ","),
		strings.Join(meta, ","), s.ExpiresAt.UTC().Format(time.RFC3339))
}
