package devnet

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netget/netget-peer/dht"
)

// TestChurn: with churn on, service nodes are withdrawn, come back, and
// crash, and the registries' health checks notice the crash; the state
// endpoint shows each step.
func TestChurn(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Registries, cfg.Nodes, cfg.Churn = 1, 2, 100*time.Millisecond
	cfg.Health = dht.Health{Interval: 50 * time.Millisecond, Failures: 2, DeregisterAfter: time.Minute, Timeout: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	state := func() State {
		resp, err := srv.Client().Get(srv.URL + "/devnet.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st State
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(runCtx)
	}()
	seen := map[string]bool{}
	unhealthy := false
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !(seen["withdrawn"] && seen["crashed"] && seen["running"] && unhealthy) {
		select {
		case <-ctx.Done():
			t.Fatalf("churn states seen %v, unhealthy seen %v", seen, unhealthy)
		case <-tick.C:
		}
		st := state()
		for _, n := range st.Nodes {
			seen[n.State] = true
		}
		for _, p := range st.Registries[0].Providers {
			unhealthy = unhealthy || !p.Healthy
		}
	}
	stop()
	<-done
}

// TestConfigValidate: bad sizes and names are refused before anything starts.
func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"network":    func(c *Config) { c.Network = "Dev Net" },
		"registries": func(c *Config) { c.Registries = 0 },
		"nodes":      func(c *Config) { c.Nodes = 100 },
		"churn":      func(c *Config) { c.Churn = -time.Second },
		"ttl":        func(c *Config) { c.TTL = 0 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Errorf("%s: Start accepted %+v", name, cfg)
		}
	}
}

// TestCloseSaysStopped: shutting the devnet down (Ctrl-C) logs each
// service node as stopped, never as crashed.
func TestCloseSaysStopped(t *testing.T) {
	var logs syncLog
	cfg := DefaultConfig()
	cfg.Registries, cfg.Nodes = 1, 2
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	out := logs.String()
	if got := strings.Count(out, "state=stopped"); got != cfg.Nodes || strings.Contains(out, "crashed") {
		t.Fatalf("after Close: %d nodes logged as stopped, want %d and no crash:\n%s", got, cfg.Nodes, out)
	}
}

// syncLog is a log sink safe for concurrent writers.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
