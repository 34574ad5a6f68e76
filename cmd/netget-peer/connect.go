package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/cmd/netget-peer/control"
	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/record"
)

// stdinChunk is the most bytes of stdin one stream message carries.
const stdinChunk = 16 << 10

func connectCommand() *cli.Command {
	return &cli.Command{
		Name:      "connect",
		Usage:     "open a channel to a provider of a service and pipe stdin and stdout through it",
		ArgsUsage: "NAME",
		Description: "Finds NAME, skips providers that take no channels or do not match --peer and --where,\n" +
			"and opens a channel to the first that accepts one (the others are tried in turn).\n" +
			"For a service relayed to a WebSocket (or a Go handler), each line of stdin is one text\n" +
			"message and each message received is printed as a line; for a tcp target, stdin and\n" +
			"stdout are the raw byte stream. End of stdin is passed on: a tcp target's input is\n" +
			"half-closed and connect exits when the target closes its side; a WebSocket has no half\n" +
			"close, so connect closes the channel once no message came for --linger. It exits 0\n" +
			"when the channel closes normally, 1 on a refusal (its code is printed), another close\n" +
			"code or a broken channel. When a daemon serves the data dir, the daemon finds the\n" +
			"service and holds the channel (--no-daemon: a node of its own).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "peer", Usage: "open the channel to this provider `PEERID` only"},
			&cli.GenericFlag{Name: "where", Value: &metaFlag{},
				Usage: "only providers whose record metadata has `key=value` (repeatable; all must match)"},
			&cli.StringFlag{Name: "token", Usage: "`token` for the provider's --channel-token filter"},
			&cli.DurationFlag{Name: "timeout", Value: netget.DefaultConnectTimeout,
				Usage: "bound on finding a provider and opening the channel"},
			&cli.DurationFlag{Name: "linger", Value: time.Second,
				Usage: "after the end of stdin, close a message channel once nothing arrived for this long"},
			&cli.IntFlag{Name: "max-message-size", Value: channel.DefaultMaxMessageSize,
				Usage: "largest message this end takes, in bytes (1 KiB to 64 MiB)"},
			noDaemonFlag(),
		},
		Action: connectAction,
	}
}

func connectAction(c *cli.Context) error {
	name, err := serviceArg(c)
	if err != nil {
		return err
	}
	where, err := parseWhere(c)
	if err != nil {
		return err
	}
	o := netget.ConnectOptions{Where: where, Token: c.String("token"), Timeout: c.Duration("timeout")}
	if p := c.String("peer"); p != "" {
		if o.Peer, err = peer.Decode(p); err != nil {
			return usageError("--peer %q: %w", p, err)
		}
	}
	cl, dir, err := daemonClient(c)
	if err != nil {
		return err
	}
	if cl != nil {
		defer cl.Close()
		ch, info, err := cl.Connect(c.Context, control.ConnectRequest{Service: name, Peer: c.String("peer"), Where: where,
			Token: o.Token, Timeout: control.Duration(o.Timeout), MaxMessage: c.Int("max-message-size"), Network: daemonNetwork(c)})
		if err != nil {
			return daemonError(dir, err)
		}
		fmt.Fprintf(c.App.ErrWriter, "connected to %s for %s (%s, through the daemon)\n", info.Peer, name, info.Mode)
		return pipe(c.Context, ch, info.Mode, c.Duration("linger"), c.App.Reader, c.App.Writer)
	}
	n, err := startNode(c.Context, c, findRole(), func(cfg *netget.Config) error {
		cfg.Channel.MaxMessageSize = c.Int("max-message-size")
		if err := cfg.Channel.Validate(); err != nil {
			return usageError("%w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer n.Close()
	ch, r, err := n.Connect(c.Context, name, o)
	if err != nil {
		return err
	}
	mode := r.Record.AcceptsChannels()
	fmt.Fprintf(c.App.ErrWriter, "connected to %s for %s (%s)\n", ch.Peer(), r.Record.Name, mode)
	return pipe(c.Context, ch, mode, c.Duration("linger"), c.App.Reader, c.App.Writer)
}

// pipe copies in to ch and ch to out until the channel closes: lines for
// record.ChannelMessages, bytes for record.ChannelStream. After the end of
// in, a message channel is closed once nothing arrived for linger. The
// goroutine reading in ends with the process when in blocks (stdin cannot
// be interrupted).
func pipe(ctx context.Context, ch *channel.Conn, mode string, linger time.Duration, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// reading ends when in does, so that the loop below notices.
	reading, inEnded := context.WithCancel(ctx)
	var inErr error
	go func() {
		inErr = pipeIn(ctx, ch, mode, in)
		inEnded()
	}()
	w := bufio.NewWriter(out)
	defer w.Flush()
	for {
		rctx, rcancel := reading, context.CancelFunc(func() {})
		if reading.Err() != nil && ctx.Err() == nil {
			if inErr != nil {
				return inErr
			}
			rctx = ctx
			if mode != record.ChannelStream {
				rctx, rcancel = context.WithTimeout(ctx, linger)
			}
		}
		m, err := ch.Receive(rctx)
		rcancel()
		if err != nil && rctx == reading && reading.Err() != nil && ctx.Err() == nil {
			continue // in ended: go on with the linger
		}
		if err == nil {
			w.Write(m.Data)
			if mode != record.ChannelStream {
				w.WriteByte('\n')
			}
			w.Flush()
			continue
		}
		var ce *channel.CloseError
		switch {
		case ctx.Err() == nil && rctx.Err() != nil: // lingered long enough
			ch.Close(channel.CloseNormal, "")
			return nil
		case errors.Is(err, io.EOF): // the provider is done sending
			ch.Close(channel.CloseNormal, "")
			return nil
		case errors.As(err, &ce) && ce.Code == channel.CloseNormal:
			return nil
		case errors.As(err, &ce):
			return fmt.Errorf("channel closed by the provider: %d %s", ce.Code, ce.Reason)
		case ctx.Err() != nil: // interrupted
			ch.Close(channel.CloseGoingAway, "interrupted")
			return nil
		}
		return fmt.Errorf("channel: %w", err)
	}
}

// pipeIn sends in on ch, then ends the channel's sending side.
func pipeIn(ctx context.Context, ch *channel.Conn, mode string, in io.Reader) error {
	if mode == record.ChannelStream {
		buf := make([]byte, min(stdinChunk, ch.SendLimit()))
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if serr := ch.Send(ctx, channel.Message{Type: channel.Binary, Data: buf[:n]}); serr != nil {
					return serr
				}
			}
			if err != nil {
				return endInput(ctx, ch, err)
			}
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), ch.SendLimit()+1)
	for sc.Scan() {
		if err := ch.Send(ctx, channel.Message{Type: channel.Text, Data: sc.Bytes()}); err != nil {
			return err
		}
	}
	return endInput(ctx, ch, sc.Err())
}

// endInput tells the provider stdin ended; err is why, nil or io.EOF for
// its end.
func endInput(ctx context.Context, ch *channel.Conn, err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		ch.Close(channel.CloseGoingAway, "input failed")
		return fmt.Errorf("stdin: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ch.CloseWrite(ctx)
}

// parseWhere reads the --where key=value pairs.
func parseWhere(c *cli.Context) (map[string]string, error) {
	m, _ := c.Generic("where").(*metaFlag)
	if m == nil || len(m.pairs) == 0 {
		return nil, nil
	}
	where := make(map[string]string, len(m.pairs))
	for _, p := range m.pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError("--where %q: want key=value", p)
		}
		if old, dup := where[k]; dup && old != v {
			return nil, usageError("--where %q: key %q given twice (first %q): no record can match both", p, k, old)
		}
		where[k] = v
	}
	return where, nil
}
