package main

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/record"
)

// channelLimitFlags are the node's channel limits (netget.Config.Channel),
// for provide and connect.
func channelLimitFlags() []cli.Flag {
	d := channel.DefaultConfig()
	return []cli.Flag{
		&cli.IntFlag{Name: "max-message-size", Value: d.MaxMessageSize,
			Usage: "largest channel message this node takes, in bytes (1 KiB to 64 MiB); a larger one closes that channel with 1009 too_large"},
		&cli.IntFlag{Name: "max-channels", Value: d.MaxChannels,
			Usage: "channels this node serves at once; more are refused as busy"},
		&cli.IntFlag{Name: "max-channels-per-peer", Value: d.MaxChannelsPerPeer,
			Usage: "channels one opener peer (a bridge counts as one) has here at once; more are refused as busy"},
		&cli.DurationFlag{Name: "channel-idle-timeout", Value: d.IdleTimeout,
			Usage: "close a served channel (code 1001) after this long without a message either way"},
		&cli.Float64Flag{Name: "channel-open-rate", Value: d.OpenRate,
			Usage: "channels one opener peer may open per second (token bucket); beyond, refused as rate_limited"},
		&cli.IntFlag{Name: "channel-open-burst", Value: d.OpenBurst,
			Usage: "burst of channels one opener peer may open at once"},
		&cli.DurationFlag{Name: "channel-open-timeout", Value: d.OpenTimeout,
			Usage: "bound on opening a channel: the open request, the target's dial and the answer"},
	}
}

// channelProvideFlags say what provide does with channels.
func channelProvideFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "target", Usage: "serve channels for NAME, each relayed to a fresh connection to `URL`: " +
			"ws://HOST:PORT/PATH (one WebSocket message per channel message) or tcp://HOST:PORT (bytes); loopback only unless --target-remote"},
		&cli.BoolFlag{Name: "target-remote", Usage: "allow a --target on another machine"},
		&cli.StringSliceFlag{Name: "channel-origin", Usage: "allow channels only from pages of this web `origin` (https://app.example; repeatable)"},
		&cli.StringSliceFlag{Name: "channel-token", Usage: "allow channels only with this `token` (repeatable)"},
		&cli.StringSliceFlag{Name: "channel-peer", Usage: "allow channels only from this opener `PEERID` (a bridge's, for pages; repeatable)"},
	}, channelLimitFlags()...)
}

// applyChannelFlags sets cfg's channel limits from the flags.
func applyChannelFlags(c *cli.Context, cfg *netget.Config) error {
	cfg.Channel.MaxMessageSize = c.Int("max-message-size")
	cfg.Channel.MaxChannels = c.Int("max-channels")
	cfg.Channel.MaxChannelsPerPeer = c.Int("max-channels-per-peer")
	cfg.Channel.IdleTimeout = c.Duration("channel-idle-timeout")
	cfg.Channel.OpenTimeout = c.Duration("channel-open-timeout")
	cfg.Channel.OpenRate, cfg.Channel.OpenBurst = c.Float64("channel-open-rate"), c.Int("channel-open-burst")
	if err := cfg.Channel.Validate(); err != nil {
		return usageError("%w", err)
	}
	return nil
}

// servedChannel is what provide --target serves: the target, behind the
// provider's filter.
type servedChannel struct {
	target *channel.Target
	filter channel.Filter
}

// parseServedChannel reads --target and the --channel-* filters; nil
// without --target.
func parseServedChannel(c *cli.Context) (*servedChannel, error) {
	raw := c.String("target")
	if raw == "" {
		for _, f := range []string{"channel-origin", "channel-token", "channel-peer", "target-remote"} {
			if c.IsSet(f) {
				return nil, usageError("--%s needs --target", f)
			}
		}
		return nil, nil
	}
	t, err := channel.ParseTarget(raw, c.Bool("target-remote"))
	if err != nil {
		return nil, usageError("--target: %w", err)
	}
	s := &servedChannel{target: t, filter: channel.Filter{Origins: c.StringSlice("channel-origin"), Tokens: c.StringSlice("channel-token")}}
	for _, p := range c.StringSlice("channel-peer") {
		id, err := peer.Decode(p)
		if err != nil {
			return nil, usageError("--channel-peer %q: %w", p, err)
		}
		s.filter.Peers = append(s.filter.Peers, id)
	}
	return s, nil
}

// serve makes n relay name's channels to the target, and returns spec's
// metadata saying so.
func (s *servedChannel) serve(n *node, name string, meta map[string]string) (map[string]string, error) {
	if err := n.Handle(name, s.target.Handler(s.filter, n.log)); err != nil {
		return nil, fmt.Errorf("serve channels for %s: %w", name, err)
	}
	out := map[string]string{record.MetaChannel: s.target.Mode()}
	for k, v := range meta {
		out[k] = v
	}
	return out, nil
}
