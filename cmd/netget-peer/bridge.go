package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht"
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
	return []cli.Flag{
		&cli.IntFlag{Name: "bridge-max-sessions", Value: bridge.DefaultMaxConns,
			Usage: "most WebSocket sessions at once; beyond, HTTP 503"},
		&cli.IntFlag{Name: "bridge-max-sessions-per-addr", Value: bridge.DefaultMaxSessionsPerAddr,
			Usage: "most WebSocket sessions from one client address (IPv4, or IPv6 /64); beyond, HTTP 429 " +
				"(behind a reverse proxy every client has the proxy's address)"},
		&cli.DurationFlag{Name: "bridge-idle-timeout", Value: bridge.DefaultIdleTimeout,
			Usage: "close a session that sent no frame and ran no find for this `DURATION`"},
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
		&cli.DurationFlag{Name: "bridge-token-backoff", Value: bridge.DefaultTokenBackoff,
			Usage: "bar an address for `DURATION` after a wrong token, doubling with each wrong token in a row"},
		&cli.DurationFlag{Name: "bridge-max-token-backoff", Value: bridge.DefaultMaxTokenBackoff,
			Usage: "longest bar after wrong tokens; an address quiet that long after its bar starts over"},
		&cli.IntFlag{Name: "bridge-max-tracked-addrs", Value: bridge.DefaultMaxTrackedAddrs,
			Usage: "how many client addresses the bridge remembers wrong tokens for"},
	}
}

// bridgeConfig builds the bridge config of node n from the flags, or
// returns a usage error. It does not check whether --bridge is set.
func bridgeConfig(c *cli.Context, n *dht.Node, log *slog.Logger) (bridge.Config, error) {
	cfg := bridge.DefaultConfig(n.Host().ID().String(), n.Network())
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
	cfg.MaxTrackedAddrs = c.Int("bridge-max-tracked-addrs")
	cfg.Logger = log.With("component", "bridge")
	if err := cfg.Validate(); err != nil {
		return cfg, usageError("--bridge: %w", err)
	}
	return cfg, nil
}

// startBridge serves the bridge for node n when --bridge is set: it
// listens, serves in the background and returns stop, which shuts the
// bridge down (closing its WebSockets, bounded by stop's ctx) and waits for
// it, and the bridge's base URL (the script is at URL + "/netget-handshaker.js").
// Without --bridge, stop does nothing and the URL is "". Call stop before
// closing n. With reg set (--metrics), the bridge's counters are exported.
func startBridge(ctx context.Context, c *cli.Context, n *dht.Node, log *slog.Logger, reg prometheus.Registerer) (stop func(context.Context) error, baseURL string, err error) {
	noop := func(context.Context) error { return nil }
	addr := c.String("bridge")
	if addr == "" {
		for _, f := range bridgeFlags() {
			if name := f.Names()[0]; name != "bridge" && c.IsSet(name) {
				return noop, "", usageError("--%s needs --bridge ADDR", name)
			}
		}
		return noop, "", nil
	}
	cfg, err := bridgeConfig(c, n, log)
	if err != nil {
		return noop, "", err
	}
	l, err := listenBridge(ctx, addr)
	if err != nil {
		return noop, "", err
	}
	return serveBridge(dhtFinder{n}, cfg, l, reg)
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

// serveBridge serves a bridge built from cfg on l until stop, which is
// idempotent, and registers its counters on reg when reg is set. A devnet
// sets cfg.Extra (a page at /). On error l is closed.
func serveBridge(f bridge.Finder, cfg bridge.Config, l net.Listener, reg prometheus.Registerer) (stop func(context.Context) error, baseURL string, err error) {
	srv, err := bridge.New(f, cfg)
	if err != nil {
		l.Close()
		return nil, "", usageError("--bridge: %w", err)
	}
	if reg != nil {
		if err := reg.Register(newBridgeCollector(srv)); err != nil {
			l.Close()
			return nil, "", fmt.Errorf("bridge metrics: %w", err)
		}
	}
	baseURL = bridgeURL(l.Addr(), srv.TLS())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	cfg.Logger.Info("bridge serving", "url", baseURL, "script", baseURL+bridge.PathScript)
	var once sync.Once
	var stopErr error
	stop = func(ctx context.Context) error {
		once.Do(func() {
			stopErr = srv.Shutdown(ctx)
			if serr := <-served; !errors.Is(serr, bridge.ErrClosed) && stopErr == nil {
				stopErr = serr
			}
		})
		return stopErr
	}
	return stop, baseURL, nil
}

// bridgeShutdownTimeout bounds closing the bridge's WebSockets at exit.
const bridgeShutdownTimeout = 5 * time.Second

// shutdownBridge runs a bridge's stop, bounded by bridgeShutdownTimeout.
func shutdownBridge(stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), bridgeShutdownTimeout)
	defer cancel()
	stop(ctx)
}

// bridgeURL is the base URL pages load the bridge from; an unspecified
// listen address (all interfaces) is shown as localhost.
func bridgeURL(a net.Addr, tls bool) string {
	u := url.URL{Scheme: "http", Host: a.String()}
	if tls {
		u.Scheme = "https"
	}
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		u.Host = net.JoinHostPort("localhost", fmt.Sprint(ta.Port))
	}
	return u.String()
}

// dhtFinder adapts a DHT node to the bridge: finds from the bridge take
// the node's verified-record path, so a browser only sees records whose
// signatures the node checked. The node applies the find's limit and
// timeout; the adapter only converts each result.
type dhtFinder struct{ n *dht.Node }

// Find implements bridge.Finder.
func (f dhtFinder) Find(ctx context.Context, service string, opts bridge.FindOptions, yield func(bridge.Result) bool) error {
	return f.n.Find(ctx, service, dht.FindOptions{Limit: opts.Limit, Timeout: opts.Timeout}, func(r dht.Result) bool {
		return yield(bridge.Result{Record: r.Record, Source: string(r.Source), Elapsed: r.Elapsed})
	})
}
