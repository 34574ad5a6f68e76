package netget

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht"
)

// bridgeServer is a node's running WebSocket bridge.
type bridgeServer struct {
	srv    *bridge.Server
	url    string
	served chan error // Serve's result
}

// startBridge serves a bridge that finds through the node's DHT, on
// Config.BridgeListener or else on a listener at Config.BridgeAddr, and
// exports its counters on Config.Registerer.
func startBridge(ctx context.Context, n *Node) (*bridgeServer, error) {
	cfg := n.cfg.Bridge
	cfg.PeerID, cfg.Network = n.host.ID().String(), n.cfg.Network
	if cfg.Logger == nil {
		cfg.Logger = n.log.With("component", "bridge")
	}
	if cfg.Opener == nil {
		cfg.Opener = channelOpener{n}
	}
	srv, err := bridge.New(dhtFinder{n.dht}, cfg)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	l := n.cfg.BridgeListener
	if l == nil {
		var lc net.ListenConfig
		if l, err = lc.Listen(ctx, "tcp", n.cfg.BridgeAddr); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", n.cfg.BridgeAddr, err)
		}
	}
	if reg := n.cfg.Registerer; reg != nil {
		if err := reg.Register(newBridgeCollector(srv)); err != nil {
			l.Close()
			return nil, fmt.Errorf("bridge metrics: %w", err)
		}
	}
	b := &bridgeServer{srv: srv, url: bridgeURL(l.Addr(), srv.TLS()), served: make(chan error, 1)}
	go func() { b.served <- srv.Serve(l) }()
	cfg.Logger.Info("bridge serving", "url", b.url, "script", b.url+bridge.PathScript)
	return b, nil
}

// shutdown closes the bridge and its WebSockets, bounded by ctx, and waits
// for Serve to return.
func (b *bridgeServer) shutdown(ctx context.Context) error {
	err := b.srv.Shutdown(ctx)
	if serr := <-b.served; !errors.Is(serr, bridge.ErrClosed) && err == nil {
		err = serr
	}
	b.served <- bridge.ErrClosed // for a second call
	return err
}

// stop is shutdown without a deadline, for New's undo steps.
func (b *bridgeServer) stop() { b.shutdown(context.Background()) }

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

// dhtFinder adapts a DHT node to the bridge (bridge.Finder and
// bridge.Watcher): finds and watches from the bridge take
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

// Watch implements bridge.Watcher with the node's watch (dht.Node.Watch):
// records verified by the node, merged from its registries, resubscribed
// after drops. It converts each event and returns when ctx ends, yield
// returns false (stopping the node's watch) or the node closes. While
// yield blocks (a slow page, bounded by the bridge's WriteTimeout) the
// node's watch holds its own bounded buffer, then lets its registries
// drop it and catches up from a fresh snapshot: nothing grows.
func (f dhtFinder) Watch(ctx context.Context, service string, yield func(bridge.WatchEvent) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := f.n.Watch(ctx, service)
	if err != nil {
		return err
	}
	for ev := range events {
		if !yield(watchEvent(ev)) {
			return nil
		}
	}
	return nil
}

// watchEvent converts one node event to the bridge's.
func watchEvent(ev dht.Event) bridge.WatchEvent {
	if ev.Kind == dht.EventUpsert {
		return bridge.WatchEvent{Kind: bridge.EventUpsert, Record: ev.Result.Record, Source: string(ev.Result.Source)}
	}
	return bridge.WatchEvent{Kind: bridge.EventRemove, Peer: ev.Peer.String(), Reason: ev.Reason}
}

// bridgeCollector exports a bridge's counters (bridge.Server.Stats), read
// at each scrape, so the bridge package itself knows nothing of Prometheus.
type bridgeCollector struct {
	srv                                              *bridge.Server
	sessions, sessionsTotal, finds, results, refused *prometheus.Desc
	conns, findsRunning, findsMoved                  *prometheus.Desc
	channels, channelsTotal, messages                *prometheus.Desc
	watches, watchesRunning, removed                 *prometheus.Desc
}

func newBridgeCollector(srv *bridge.Server) *bridgeCollector {
	return &bridgeCollector{srv: srv,
		sessions:      prometheus.NewDesc("netget_bridge_sessions", "WebSocket sessions open now.", nil, nil),
		sessionsTotal: prometheus.NewDesc("netget_bridge_sessions_total", "WebSocket sessions accepted.", nil, nil),
		finds:         prometheus.NewDesc("netget_bridge_finds_total", "Finds that passed every check and reached the DHT.", nil, nil),
		results:       prometheus.NewDesc("netget_bridge_results_total", "Result frames sent.", nil, nil),
		conns:         prometheus.NewDesc("netget_bridge_conns", "TCP connections the bridge holds now, upgraded or not.", nil, nil),
		findsRunning: prometheus.NewDesc("netget_bridge_finds_running",
			"Finds running now, all sessions together (at most bridge.Config.MaxFinds).", nil, nil),
		findsMoved: prometheus.NewDesc("netget_bridge_finds_moved_total",
			"Finds that outlived their grace on a session's read loop, which moved to a new goroutine (bridge.Stats.FindsMoved).", nil, nil),
		refused: prometheus.NewDesc("netget_bridge_refusals_total",
			"Connections, sessions, frames, finds, opens and watches the bridge refused, by reason (bridge.Reasons).", []string{"reason"}, nil),
		channels:      prometheus.NewDesc("netget_bridge_channels", "Channels open or opening now, all sessions together.", nil, nil),
		channelsTotal: prometheus.NewDesc("netget_bridge_channels_total", "Channels a provider accepted.", nil, nil),
		messages: prometheus.NewDesc("netget_bridge_channel_messages_total",
			"Channel messages passed, by direction (in: page to provider, out: provider to page).", []string{"direction"}, nil),
		watches: prometheus.NewDesc("netget_bridge_watches_total", "Watches that passed every check and reached the node.", nil, nil),
		watchesRunning: prometheus.NewDesc("netget_bridge_watches_running",
			"Watches open now, all sessions together (at most bridge.Config.MaxWatches).", nil, nil),
		removed: prometheus.NewDesc("netget_bridge_removed_total", "Removed frames sent to watching pages.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (b *bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.sessions, b.sessionsTotal, b.finds, b.results, b.refused, b.conns, b.findsRunning,
		b.findsMoved, b.channels, b.channelsTotal, b.messages, b.watches, b.watchesRunning, b.removed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (b *bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	st := b.srv.Stats()
	ch <- prometheus.MustNewConstMetric(b.sessions, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(b.sessionsTotal, prometheus.CounterValue, float64(st.SessionsTotal))
	ch <- prometheus.MustNewConstMetric(b.finds, prometheus.CounterValue, float64(st.Finds))
	ch <- prometheus.MustNewConstMetric(b.results, prometheus.CounterValue, float64(st.Results))
	ch <- prometheus.MustNewConstMetric(b.conns, prometheus.GaugeValue, float64(st.Conns))
	ch <- prometheus.MustNewConstMetric(b.findsRunning, prometheus.GaugeValue, float64(st.FindsRunning))
	ch <- prometheus.MustNewConstMetric(b.findsMoved, prometheus.CounterValue, float64(st.FindsMoved))
	ch <- prometheus.MustNewConstMetric(b.channels, prometheus.GaugeValue, float64(st.Channels))
	ch <- prometheus.MustNewConstMetric(b.channelsTotal, prometheus.CounterValue, float64(st.ChannelsTotal))
	ch <- prometheus.MustNewConstMetric(b.messages, prometheus.CounterValue, float64(st.MessagesIn), "in")
	ch <- prometheus.MustNewConstMetric(b.messages, prometheus.CounterValue, float64(st.MessagesOut), "out")
	ch <- prometheus.MustNewConstMetric(b.watches, prometheus.CounterValue, float64(st.Watches))
	ch <- prometheus.MustNewConstMetric(b.watchesRunning, prometheus.GaugeValue, float64(st.WatchesRunning))
	ch <- prometheus.MustNewConstMetric(b.removed, prometheus.CounterValue, float64(st.Removed))
	for _, r := range bridge.Reasons() {
		ch <- prometheus.MustNewConstMetric(b.refused, prometheus.CounterValue, float64(st.Refusals[r]), string(r))
	}
}
