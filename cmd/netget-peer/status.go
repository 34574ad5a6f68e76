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

	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

// statusTimeout bounds a status call to the daemon.
const statusTimeout = 10 * time.Second

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the running daemon or registry: peer ID, addresses, reachability and relay addresses, network, registries, services, sync",
		Description: "Asks the daemon serving the data dir (--data-dir, or $NETGET_HOME) over its control\n" +
			"socket; a registry serves one too (--data-dir $NETGET_HOME/registry), and its status says\n" +
			"how it syncs with the other registries. Exits 1 when no daemon runs there. --json prints the control API's status object\n" +
			"(GET /v1/status), whose fields are only ever added.",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON object"}},
		Action: statusAction,
	}
}

func statusAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("status takes no arguments, got %q", c.Args().Slice())
	}
	dir, err := dataDir(c, serviceRole())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, statusTimeout)
	defer cancel()
	cl, err := control.Dial(ctx, dir)
	if errors.Is(err, control.ErrNoDaemon) {
		return fmt.Errorf("%w in %s (start one with `netget-peer daemon --bootstrap ADDR`)", control.ErrNoDaemon, dir)
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return daemonError(dir, err)
	}
	if c.Bool("json") {
		b, _ := json.Marshal(st)
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	}
	printStatus(c.App.Writer, st)
	return nil
}

// printStatus writes st for people, one field per line.
func printStatus(w io.Writer, st *control.Status) {
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-14s "+format+"\n", append([]any{name}, args...)...)
	}
	field("peer", "%s", st.Peer)
	field("network", "%s (dht %s)", st.Network, st.DHTMode)
	for i, a := range st.Addrs {
		if i == 0 {
			field("addrs", "%s", a)
		} else {
			field("", "%s", a)
		}
	}
	field("reachability", "%s", describeReachability(st))
	for _, a := range st.RelayAddrs {
		field("relay addr", "%s", a)
	}
	field("routing table", "%d peers", st.RoutingTable)
	field("registries", "%d connected %s", len(st.Registries), strings.Join(st.Registries, " "))
	field("records", "%d stored", st.StoredRecords)
	if sy := st.Sync; sy != nil {
		last := "never"
		if !sy.LastRound.IsZero() {
			last = sy.LastRound.Format(time.RFC3339)
		}
		field("sync", "%d peers %s; last reconciliation %s (%d records, %d bytes); fetched %d, forwarded %d, received %d, refused %d",
			len(sy.Peers), strings.Join(sy.Peers, " "), last, sy.LastFetched, sy.LastBytes,
			sy.Fetched, sy.Forwarded, sy.Received, sy.Refused)
		if sy.LastError != "" {
			field("", "last sync error: %s", sy.LastError)
		}
	}
	field("data dir", "%s", st.DataDir)
	field("up since", "%s", st.StartedAt.Format(time.RFC3339))
	field("services", "%d provided", len(st.Services))
	for _, s := range st.Services {
		var meta []string
		for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
			meta = append(meta, k+"="+s.Meta[k])
		}
		line := fmt.Sprintf("  %s ttl=%s meta=%s", s.Name, time.Duration(s.TTL), strings.Join(meta, ","))
		if s.Seq != 0 {
			line += fmt.Sprintf(" seq=%d expires=%s", s.Seq, s.ExpiresAt.UTC().Format(time.RFC3339))
		} else {
			line += " not yet published"
		}
		if s.LastError != "" {
			line += fmt.Sprintf(" last_error=%q", s.LastError)
		}
		fmt.Fprintln(w, line)
	}
}

// describeReachability is how the node is reached, for people: "public",
// "private via relays <ids>", "private (no relay yet)" or "unknown".
func describeReachability(st *control.Status) string {
	switch {
	case st.Reachability == "private" && len(st.Relays) > 0:
		return "private via relays " + strings.Join(st.Relays, " ")
	case st.Reachability == "private":
		return "private (no relay yet)"
	case st.Reachability == "":
		return "unknown"
	}
	return st.Reachability
}
