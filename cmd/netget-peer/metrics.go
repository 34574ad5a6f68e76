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
