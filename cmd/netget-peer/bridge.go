package main

import (
	"context"
	"fmt"
	"net"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bridge"
)

// bridgeFlags are the flags of the commands that can serve the WebSocket
// bridge (registry, the plain node): --bridge ADDR turns it on.
func bridgeFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "bridge", EnvVars: []string{"NETGET_BRIDGE"},
			Usage: "serve the WebSocket bridge for web pages on `ADDR` (e.g. 127.0.0.1:8080): " +
				"/netget-handshaker.js, /ws, /healthz"},
		&cli.StringSliceFlag{Name: "bridge-origin",
			Usage: "page `ORIGIN` allowed to use the bridge, e.g. https://app.example, https://*.example, " +
				"http://localhost:* or * (repeatable; replaces the default: same-origin plus http(s) localhost, " +
				"127.0.0.1 and [::1] on any port)"},
		&cli.StringSliceFlag{Name: "bridge-host",
			Usage: "Host `NAME` the bridge answers besides IPs and localhost, against DNS rebinding " +
				"(repeatable; needed behind a TLS-terminating proxy; over --bridge-tls-cert any name is allowed)"},
		&cli.StringFlag{Name: "bridge-token", EnvVars: []string{"NETGET_BRIDGE_TOKEN"},
			Action: func(_ *cli.Context, token string) error { // refused before the node starts
				if err := bridge.CheckToken(token); err != nil {
					return usageError("--bridge-token: %w", err)
				}
				return nil
			},
			Usage: "`TOKEN` pages must send (the script's data-token) before finding; at least 16 bytes " +
				"(make one with: openssl rand -hex 16); each wrong one bars its address for a while"},
		&cli.StringSliceFlag{Name: "bridge-service",
			Usage: "only this service `NAME` may be found through the bridge (repeatable; default: any)"},
		&cli.StringFlag{Name: "bridge-tls-cert", Usage: "PEM certificate `FILE`: serve the bridge over TLS (wss://)"},
		&cli.StringFlag{Name: "bridge-tls-key", Usage: "PEM private key `FILE` of --bridge-tls-cert"},
	}, bridgeLimitFlags()...)
}

// bridgeLimitFlags are the flags of the bridge's limits, one per
// bridge.Config field, defaulting to bridge.DefaultConfig's value.
func bridgeLimitFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "bridge-max-sessions", Value: bridge.DefaultMaxConns,
			Usage: "most WebSocket sessions at once; beyond, HTTP 503"},
		&cli.IntFlag{Name: "bridge-max-sessions-per-addr", Value: bridge.DefaultMaxSessionsPerAddr,
			Usage: "most WebSocket sessions from one client address (IPv4, or IPv6 /64); beyond, HTTP 429 " +
				"(behind a reverse proxy every client has the proxy's address)"},
		&cli.DurationFlag{Name: "bridge-idle-timeout", Value: bridge.DefaultIdleTimeout,
			Usage: "close a session that sent no frame, ran no find and held no channel for this `DURATION`"},
		&cli.IntFlag{Name: "bridge-max-conns", Value: bridge.DefaultMaxOpenConns,
			Usage: "most TCP connections the bridge holds, upgraded or not; beyond, closed at accept"},
		&cli.IntFlag{Name: "bridge-max-conns-per-addr", Value: bridge.DefaultMaxOpenConnsPerAddr,
			Usage: "most TCP connections from one client address; beyond, closed at accept"},
		&cli.IntFlag{Name: "bridge-reserve-fds", Value: bridge.DefaultReserveFDs,
			Usage: "file descriptors the bridge leaves to libp2p: it holds at most ulimit -n minus this many connections"},
		&cli.DurationFlag{Name: "bridge-header-timeout", Value: bridge.DefaultHeaderTimeout,
			Usage: "disconnect a client whose TLS handshake and request headers take longer than `DURATION`"},
		&cli.IntFlag{Name: "bridge-max-finds", Value: bridge.DefaultMaxFinds,
			Usage: "most finds the bridge runs at once, all sessions together; beyond, a find gets busy"},
		&cli.IntFlag{Name: "bridge-record-cache", Value: bridge.DefaultRecordCache,
			Usage: "how many found records the bridge keeps encoded to send again (at most 6 KiB each); 0: none"},
		&cli.DurationFlag{Name: "bridge-token-backoff", Value: bridge.DefaultTokenBackoff,
			Usage: "bar an address for `DURATION` after a wrong token, doubling with each wrong token in a row"},
		&cli.DurationFlag{Name: "bridge-max-token-backoff", Value: bridge.DefaultMaxTokenBackoff,
			Usage: "longest bar after wrong tokens; an address quiet that long after its bar starts over"},
		&cli.IntFlag{Name: "bridge-max-tracked-addrs", Value: bridge.DefaultMaxTrackedAddrs,
			Usage: "how many client addresses the bridge remembers wrong tokens for"},
		&cli.IntFlag{Name: "bridge-max-session-watches", Value: bridge.DefaultMaxSessionWatches,
			Usage: "most watches one WebSocket session holds open at once; beyond, a watch gets rate_limited"},
		&cli.IntFlag{Name: "bridge-max-watches", Value: bridge.DefaultMaxWatches,
			Usage: "most watches the bridge holds open, all sessions together; beyond, a watch gets busy"},
	}, bridgeChannelFlags()...)
}

// bridgeChannelFlags are the flags of the bridge's channel limits.
func bridgeChannelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "bridge-max-channels", Value: bridge.DefaultMaxChannels,
			Usage: "most channels one page session has open or opening; beyond, an open gets rate_limited"},
		&cli.IntFlag{Name: "bridge-max-channels-total", Value: bridge.DefaultMaxChannelsTotal,
			Usage: "most channels the bridge has open, all sessions together; beyond, an open gets busy"},
		&cli.IntFlag{Name: "bridge-max-message-size", Value: bridge.DefaultMaxMessageSize,
			Usage: "largest channel message a page may send, in `BYTES`; a larger one gets too_large and closes its channel"},
		&cli.IntFlag{Name: "bridge-channel-bytes-per-second", Value: bridge.DefaultChannelBytesPerSecond,
			Usage: "channel `BYTES` a page session may send per second (each message counts 64 more); " +
				"beyond, the bridge reads the session more slowly"},
		&cli.DurationFlag{Name: "bridge-open-timeout", Value: bridge.DefaultOpenTimeout,
			Usage: "how long an open may take to find a provider that accepts; then it gets timeout"},
	}
}

// bridgeConfig builds the bridge config from the flags. netget.New fills
// in the node's peer ID and network and validates it: a bad value is a
// usage error then (startError).
func bridgeConfig(c *cli.Context) bridge.Config {
	cfg := bridge.DefaultConfig("", "")
	if c.IsSet("bridge-origin") {
		cfg.Origins = c.StringSlice("bridge-origin")
	}
	cfg.Hosts = c.StringSlice("bridge-host")
	cfg.Token = c.String("bridge-token")
	cfg.Services = c.StringSlice("bridge-service")
	cfg.CertFile, cfg.KeyFile = c.String("bridge-tls-cert"), c.String("bridge-tls-key")
	cfg.MaxConns, cfg.MaxSessionsPerAddr = c.Int("bridge-max-sessions"), c.Int("bridge-max-sessions-per-addr")
	cfg.IdleTimeout, cfg.HeaderTimeout = c.Duration("bridge-idle-timeout"), c.Duration("bridge-header-timeout")
	cfg.MaxOpenConns, cfg.MaxOpenConnsPerAddr = c.Int("bridge-max-conns"), c.Int("bridge-max-conns-per-addr")
	cfg.ReserveFDs, cfg.MaxFinds = c.Int("bridge-reserve-fds"), c.Int("bridge-max-finds")
	cfg.TokenBackoff, cfg.MaxTokenBackoff = c.Duration("bridge-token-backoff"), c.Duration("bridge-max-token-backoff")
	cfg.MaxTrackedAddrs, cfg.RecordCache = c.Int("bridge-max-tracked-addrs"), c.Int("bridge-record-cache")
	cfg.MaxChannels, cfg.MaxChannelsTotal = c.Int("bridge-max-channels"), c.Int("bridge-max-channels-total")
	cfg.MaxMessageSize, cfg.ChannelBytesPerSecond = c.Int("bridge-max-message-size"), c.Int("bridge-channel-bytes-per-second")
	cfg.OpenTimeout = c.Duration("bridge-open-timeout")
	cfg.MaxSessionWatches, cfg.MaxWatches = c.Int("bridge-max-session-watches"), c.Int("bridge-max-watches")
	return cfg
}

// withBridge reads the --bridge flags into a node's Config: with --bridge
// ADDR it listens at once, so a port in use fails before the node starts,
// and hands the listener to the node (netget.Config.BridgeListener), which
// serves the bridge and closes it top-down. Without --bridge, any other
// bridge flag is a usage error.
func withBridge(c *cli.Context) func(*netget.Config) error {
	return func(cfg *netget.Config) error {
		addr := c.String("bridge")
		if addr == "" {
			for _, f := range bridgeFlags() {
				if name := f.Names()[0]; name != "bridge" && c.IsSet(name) {
					return usageError("--%s needs --bridge ADDR", name)
				}
			}
			return nil
		}
		l, err := listenBridge(c.Context, addr)
		if err != nil {
			return err
		}
		cfg.Bridge, cfg.BridgeListener = bridgeConfig(c), l
		cfg.Bridge.Logger = cfg.Logger.With("component", "bridge")
		return nil
	}
}

// listenBridge listens on the bridge's address, so a port in use fails
// before anything else starts.
func listenBridge(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--bridge %s: %w", addr, err)
	}
	return l, nil
}
