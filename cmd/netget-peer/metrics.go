package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netget/netget-peer/bridge"
)

// metricsServer serves a node's Prometheus metrics (go-libp2p's own and
// netget's) on /metrics and a liveness check on /healthz.
type metricsServer struct {
	reg *prometheus.Registry
	ln  net.Listener
	srv *http.Server
}

// listenMetrics listens on addr now, so a port in use fails before the
// node starts, and returns the registry the host and DHT register on.
func listenMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageError("--metrics %s: %w", addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &metricsServer{reg: reg, ln: ln}, nil
}

// healthz is the /healthz body.
type healthz struct {
	Status       string `json:"status"`
	Peer         string `json:"peer"`
	Network      string `json:"network"`
	RoutingTable int    `json:"routing_table"`
	Registries   int    `json:"registries"`
}

// serve starts serving; status describes the node for /healthz.
func (m *metricsServer) serve(status func() healthz, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(status())
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
}

// close stops the server (or the bare listener, if serve never ran). It
// may be called more than once.
func (m *metricsServer) close() {
	if m.srv == nil {
		m.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
}

// bridgeCollector exports a bridge's counters (bridge.Server.Stats), read
// at each scrape, so the bridge package itself knows nothing of Prometheus.
type bridgeCollector struct {
	srv                                              *bridge.Server
	sessions, sessionsTotal, finds, results, refused *prometheus.Desc
	conns, findsRunning                              *prometheus.Desc
}

func newBridgeCollector(srv *bridge.Server) *bridgeCollector {
	return &bridgeCollector{srv: srv,
		sessions:      prometheus.NewDesc("netget_bridge_sessions", "WebSocket sessions open now.", nil, nil),
		sessionsTotal: prometheus.NewDesc("netget_bridge_sessions_total", "WebSocket sessions accepted.", nil, nil),
		finds:         prometheus.NewDesc("netget_bridge_finds_total", "Finds that passed every check and reached the DHT.", nil, nil),
		results:       prometheus.NewDesc("netget_bridge_results_total", "Result frames sent.", nil, nil),
		conns:         prometheus.NewDesc("netget_bridge_conns", "TCP connections the bridge holds now, upgraded or not.", nil, nil),
		findsRunning: prometheus.NewDesc("netget_bridge_finds_running",
			"Finds running now, all sessions together (at most --bridge-max-finds).", nil, nil),
		refused: prometheus.NewDesc("netget_bridge_refusals_total",
			"Connections, sessions, frames and finds the bridge refused, by reason (bridge.Reasons).", []string{"reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (b *bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.sessions, b.sessionsTotal, b.finds, b.results, b.refused, b.conns, b.findsRunning} {
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
	for _, r := range bridge.Reasons() {
		ch <- prometheus.MustNewConstMetric(b.refused, prometheus.CounterValue, float64(st.Refusals[r]), string(r))
	}
}
