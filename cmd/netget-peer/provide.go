package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// withdrawTimeout bounds publishing the tombstone after an interrupt.
const withdrawTimeout = 10 * time.Second

func provideCommand() *cli.Command {
	return &cli.Command{
		Name:      "provide",
		Usage:     "publish a service and keep it published until interrupted",
		ArgsUsage: "NAME",
		Description: "Signs a record for NAME ([A-Za-z0-9._-]{1,64}) carrying this node's addresses and\n" +
			"metadata, publishes it to the DHT, and republishes at half the TTL. On SIGINT or\n" +
			"SIGTERM it publishes a signed withdrawal, so finds stop returning it, then exits.\n" +
			"Prints one line (or JSON object with --json) per publication on stdout, once a registry\n" +
			"or a DHT peer took the record; a first publication nobody took fails.\n\n" +
			"When a daemon serves the data dir (`netget-peer daemon`), the daemon provides NAME\n" +
			"instead, keeps it published (across its restarts too) until `netget-peer unprovide\n" +
			"NAME`, and provide prints the first publication and exits.\n\n" +
			"With --target, the node also serves channels for NAME (`netget-peer connect NAME`, a\n" +
			"page's netget.connect, a Go program's Dial): each one is relayed to a fresh connection\n" +
			"to the target, after the --channel-* filters. It runs in the foreground (not through\n" +
			"the daemon yet).",
		Flags: append([]cli.Flag{
			&cli.GenericFlag{Name: "meta", Aliases: []string{"m"}, Value: &metaFlag{},
				Usage: "metadata `key=value`, taken whole (the value may hold commas); repeatable, up to 32 distinct keys"},
			&cli.DurationFlag{Name: "ttl", Value: dht.DefaultTTL, Usage: "record lifetime, a Go duration from 1s to 24h; republished at half of it"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			noDaemonFlag(),
		}, channelProvideFlags()...),
		Action: provideAction,
	}
}

func provideAction(c *cli.Context) error {
	name, err := serviceArg(c)
	if err != nil {
		return err
	}
	meta, err := parseMeta(metaPairs(c))
	if err != nil {
		return err
	}
	ttl := c.Duration("ttl")
	if err := record.ValidateTTL(ttl); err != nil {
		return usageError("--ttl: %w", err)
	}
	if _, set := meta[record.MetaChannel]; set {
		return usageError("--meta %s: set by --target, not by hand", record.MetaChannel)
	}
	served, err := parseServedChannel(c)
	if err != nil {
		return err
	}
	b, err := openBackend(c)
	if err != nil {
		return err
	}
	defer b.close()
	if served != nil {
		local, ok := b.(localBackend)
		if !ok {
			return usageError("provide --target does not run through the daemon yet: pass --no-daemon (with a --data-dir of its own)")
		}
		local.served = served
		b = local
	}
	out, asJSON := c.App.Writer, c.Bool("json")
	return b.provide(c.Context, dht.Spec{Name: name, Meta: meta, TTL: ttl}, func(event string, s *record.Service) {
		printEvent(out, asJSON, event, s)
	})
}

// serviceArg returns the single NAME argument, validated.
func serviceArg(c *cli.Context) (string, error) {
	if c.Args().Len() != 1 {
		return "", usageError("%s needs exactly one service NAME, got %d arguments", c.Command.Name, c.Args().Len())
	}
	name := c.Args().First()
	if err := record.ValidateName(name); err != nil {
		return "", usageError("%w", err)
	}
	return name, nil
}

// parseMeta parses key=value pairs; a key given twice is refused, not
// silently overwritten.
func parseMeta(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	meta := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError("--meta %q: want key=value", p)
		}
		if old, dup := meta[k]; dup {
			return nil, usageError("--meta %q: key %q given twice (first %q); give each key once", p, k, old)
		}
		meta[k] = v
	}
	if err := record.ValidateMeta(meta); err != nil {
		return nil, usageError("--meta: %w", err)
	}
	return meta, nil
}

// providerEvent is provide's --json output line; fields are only added.
type providerEvent struct {
	Event     string    `json:"event"`
	Service   string    `json:"service"`
	Network   string    `json:"network"`
	Peer      string    `json:"peer"`
	Seq       uint64    `json:"seq"`
	Addrs     []string  `json:"addrs"`
	ExpiresAt time.Time `json:"expires_at"`
}

func printEvent(w io.Writer, asJSON bool, event string, s *record.Service) {
	if asJSON {
		b, _ := json.Marshal(providerEvent{Event: event, Service: s.Name, Network: s.Network,
			Peer: s.Peer.String(), Seq: s.Seq, Addrs: s.Addrs, ExpiresAt: s.ExpiresAt.UTC()})
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "%s %s on %s as %s seq=%d expires=%s\n", event, s.Name, s.Network, s.Peer, s.Seq,
		s.ExpiresAt.UTC().Format(time.RFC3339))
}
