package dht

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

// Health configures the health monitor of a registry: like Consul's checks
// with deregister_critical_service_after. The zero value (Interval 0)
// turns it off, as on nodes that are not registries.
type Health struct {
	// Interval between checks of each provider the node holds records for
	// (registries: 30s). 0 turns the monitor off.
	Interval time.Duration
	// Failures is how many consecutive failed checks make a provider
	// unhealthy (default 3). Its records are then hidden: list, GET_VALUE
	// and this node's finds leave them out.
	Failures int
	// DeregisterAfter is how long a provider stays unhealthy before its
	// records are deleted from the datastore (default 5m).
	DeregisterAfter time.Duration
	// Timeout bounds one check, dialling included (default: Interval,
	// at most 10s).
	Timeout time.Duration
	// Concurrency bounds the checks in flight (default 32). A provider
	// whose last check is still running is not checked again, so checks of
	// hung providers never pile up.
	Concurrency int
}

// RegistryHealth returns the registry defaults: every 30s, unhealthy after
// 3 failures, deregistered after 5m.
func RegistryHealth() Health {
	return Health{Interval: 30 * time.Second, Failures: 3, DeregisterAfter: 5 * time.Minute}
}

func (h Health) validate() error {
	if h.Interval < 0 || h.Failures < 0 || h.DeregisterAfter < 0 || h.Timeout < 0 || h.Concurrency < 0 {
		return fmt.Errorf("%w: health settings must not be negative", ErrBadConfig)
	}
	return nil
}

func (h Health) withDefaults() Health {
	if h.Failures == 0 {
		h.Failures = 3
	}
	if h.DeregisterAfter == 0 {
		h.DeregisterAfter = 5 * time.Minute
	}
	if h.Timeout == 0 {
		h.Timeout = min(h.Interval, 10*time.Second)
	}
	if h.Concurrency == 0 {
		h.Concurrency = 32
	}
	return h
}

// ProviderState is what a node knows of one provider it holds live
// records for.
type ProviderState struct {
	// Peer is the provider.
	Peer peer.ID
	// Records is how many of its live records the node holds.
	Records int
	// Healthy is false while its health checks fail: its records are
	// then hidden.
	Healthy bool
	// Failures is how many consecutive checks failed.
	Failures int
	// UnhealthySince is when it turned unhealthy; zero while healthy.
	UnhealthySince time.Time
}

// Providers returns the providers the node holds live (unexpired, not
// withdrawn) records for, with what its health checks found (all healthy
// when the monitor is off).
func (n *Node) Providers() []ProviderState { return n.store.providerStates(n.host.ID(), n.now()) }

// monitor runs the health checks of one node until its context ends.
type monitor struct {
	n   *Node
	cfg Health
	sem chan struct{}

	mu       sync.Mutex
	inFlight map[peer.ID]bool
}

func (n *Node) startMonitor() {
	cfg := n.cfg.Health.withDefaults()
	m := &monitor{n: n, cfg: cfg, sem: make(chan struct{}, cfg.Concurrency), inFlight: make(map[peer.ID]bool)}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		m.run(n.ctx)
	}()
}

func (m *monitor) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.deregister(ctx)
		for p, addrs := range m.n.store.providers(m.n.host.ID(), m.n.now()) {
			if !m.claim(p) {
				continue // its last check is still running
			}
			select {
			case m.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-m.sem; m.release(p) }()
				m.check(ctx, p, addrs)
			}()
		}
	}
}

func (m *monitor) claim(p peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inFlight[p] {
		return false
	}
	m.inFlight[p] = true
	return true
}

func (m *monitor) release(p peer.ID) {
	m.mu.Lock()
	delete(m.inFlight, p)
	m.mu.Unlock()
}

// check pings provider p once, at the addresses its record gives, and
// records the outcome.
func (m *monitor) check(ctx context.Context, p peer.ID, addrs []string) {
	n := m.n
	for _, a := range addrs {
		if addr, err := ma.NewMultiaddr(a); err == nil {
			n.host.Peerstore().AddAddr(p, addr, peerstore.TempAddrTTL)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	res, answered := <-ping.Ping(cctx, n.host, p)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: no verdict
	}
	if !answered {
		// Ping closes its channel without a result when the deadline passes.
		res.Error = fmt.Errorf("no ping answer within %s", m.cfg.Timeout)
	}
	ok := res.Error == nil
	n.metrics.healthCheck(ok)
	changed, healthy := n.store.checked(p, ok, n.now(), m.cfg.Failures)
	switch {
	case changed && healthy:
		n.log.Info("provider healthy again; serving its records", "provider", p)
	case changed:
		n.log.Warn("provider unhealthy; hiding its records", "provider", p, "err", res.Error)
	case !ok:
		n.log.Debug("health check failed", "provider", p, "err", res.Error)
	}
}

// deregister deletes the records of providers unhealthy for longer than
// DeregisterAfter.
func (m *monitor) deregister(ctx context.Context) {
	gone := m.n.store.unhealthyFor(m.n.now().Add(-m.cfg.DeregisterAfter))
	if len(gone) == 0 {
		return
	}
	deleted, err := m.n.store.sweep(ctx, m.n.now(), gone)
	if err != nil {
		m.n.log.Error("deregistering providers", "err", err)
		return
	}
	for p := range gone {
		m.n.log.Warn("provider deregistered; its records are deleted", "provider", p)
	}
	m.n.log.Debug("deregistered", "providers", len(gone), "records", deleted)
}
