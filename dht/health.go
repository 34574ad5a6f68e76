package dht

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Health configures the health monitor of a registry: like Consul's checks
// with deregister_critical_service_after. The zero value (Interval 0)
// turns it off, as on nodes that are not registries: every record is then
// served.
type Health struct {
	// Interval between checks of each provider the node holds records for
	// (registries: 30s). Each provider has its own schedule; a provider's
	// first record is checked at once. 0 turns the monitor off.
	Interval time.Duration
	// Failures is how many consecutive failed checks make a provider
	// unhealthy (default 3). Its records are then hidden: list, GET_VALUE
	// and this node's finds leave them out.
	Failures int
	// DeregisterAfter is how long a provider stays unhealthy before its
	// records are deleted from the datastore (default 5m); its verdict is
	// remembered as long again, so a record it signs afresh is checked
	// before it is served.
	DeregisterAfter time.Duration
	// Timeout bounds one check, dialling included (default: Interval,
	// at most 10s).
	Timeout time.Duration
	// DialTimeout bounds dialling a provider the node is not connected to
	// (default 3s, at most Timeout): a tarpit costs a check slot this long.
	DialTimeout time.Duration
	// Concurrency bounds the checks in flight of healthy providers, whose
	// records are served (default 32). A provider whose last check is
	// still running is not checked again, so checks never pile up.
	Concurrency int
	// SuspectConcurrency bounds the checks in flight of the other
	// providers, never checked yet or unhealthy (default 16), twice over:
	// those the node is connected to (a provider that has just pushed its
	// record: no dial) and those it must dial. The lanes are apart, so
	// providers that hold checks open (tarpits) never delay a verdict on
	// one that is being served, nor the first check of one that pushed.
	SuspectConcurrency int
	// DialRate and DialBurst bound the check dials to one host, IP or DNS
	// name, per second (default 10/s, burst 20). Whatever the rate, each
	// distinct address is dialled at most once per Interval on behalf of a
	// peer other than the one found there, so records naming a victim's
	// address cannot turn the registry against it.
	DialRate  float64
	DialBurst int
	// Addrs says which provider addresses are accepted and dialled
	// (default AddrsAuto: public ones only while the node listens on a
	// public address).
	Addrs AddrPolicy
}

// RegistryHealth returns the registry defaults: every 30s, unhealthy after
// 3 failures, deregistered after 5m, and the other defaults documented on
// Health.
func RegistryHealth() Health {
	return Health{Interval: 30 * time.Second, Failures: 3, DeregisterAfter: 5 * time.Minute}.withDefaults()
}

func (h Health) validate() error {
	if h.Interval < 0 || h.Failures < 0 || h.DeregisterAfter < 0 || h.Timeout < 0 || h.DialTimeout < 0 ||
		h.Concurrency < 0 || h.SuspectConcurrency < 0 || h.DialRate < 0 || h.DialBurst < 0 {
		return fmt.Errorf("%w: health settings must not be negative", ErrBadConfig)
	}
	if h.Addrs < AddrsAuto || h.Addrs > AddrsPublic {
		return fmt.Errorf("%w: address policy %d", ErrBadConfig, h.Addrs)
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
	if h.DialTimeout == 0 {
		h.DialTimeout = 3 * time.Second
	}
	h.DialTimeout = min(h.DialTimeout, h.Timeout)
	if h.Concurrency == 0 {
		h.Concurrency = 32
	}
	if h.SuspectConcurrency == 0 {
		h.SuspectConcurrency = 16
	}
	if h.DialRate == 0 {
		h.DialRate = 10
	}
	if h.DialBurst == 0 {
		h.DialBurst = 20
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
	// Healthy is true while its records are served: its last decisive
	// check passed (always, with the monitor off).
	Healthy bool
	// Pending is true until its first check passes or it turns unhealthy:
	// its records are not served yet.
	Pending bool
	// Failures is how many consecutive checks failed.
	Failures int
	// KnownSince is when the node got its first record (this run); lists
	// serve the longest-known healthy providers first.
	KnownSince time.Time
	// UnhealthySince is when it turned unhealthy; zero otherwise.
	UnhealthySince time.Time
}

// state names the state for metrics: healthy, pending or unhealthy.
func (st ProviderState) state() string {
	switch {
	case st.Healthy:
		return "healthy"
	case st.Pending:
		return "pending"
	}
	return "unhealthy"
}

// Providers returns the providers the node holds live (unexpired, not
// withdrawn) records for, with what its health checks found.
func (n *Node) Providers() []ProviderState {
	live := n.store.Live(n.host.ID(), n.now())
	out := make([]ProviderState, 0, len(live))
	for p, records := range live {
		st := ProviderState{Peer: p, Records: records}
		n.health.state(&st)
		out = append(out, st)
	}
	return out
}

// monitor runs the health checks of one node until its context ends.
type monitor struct {
	n     *Node
	cfg   Health
	v     *verdicts
	dials *dialGuard

	// Three lanes, each with its own workers: healthy providers; the
	// others the node is connected to (no dial: a provider that has just
	// pushed its record); the others, which need a dial.
	served, near, suspect *lane
}

// due is one provider to check, at the addresses of its newest record.
type due struct {
	p     peer.ID
	addrs []string
}

func (n *Node) startMonitor() {
	cfg := n.cfg.Health.withDefaults()
	m := &monitor{n: n, cfg: cfg, v: n.health, dials: newDialGuard(cfg),
		served: newLane(), near: newLane(), suspect: newLane()}
	start := func(l *lane, workers int) {
		for range workers {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				for d, ok := l.pop(n.ctx); ok; d, ok = l.pop(n.ctx) {
					m.check(n.ctx, d)
				}
			}()
		}
	}
	start(m.served, cfg.Concurrency)
	start(m.near, cfg.SuspectConcurrency)
	start(m.suspect, cfg.SuspectConcurrency)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		m.run(n.ctx)
	}()
}

// run hands each provider to its lane when its check is due, and
// deregisters providers unhealthy for too long, until ctx ends. The
// node's clock decides what is due; it is read at least every tick.
func (m *monitor) run(ctx context.Context) {
	tick := min(max(m.cfg.Interval/10, 10*time.Millisecond), time.Second)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.v.kick:
		}
		now := m.n.now()
		m.deregister(ctx, now)
		if served, suspect := m.v.due(now); len(served)+len(suspect) > 0 {
			addrs := m.n.store.Addrs(ctx, m.n.host.ID(), slices.Concat(served, suspect), now)
			m.served.push(dues(served, addrs))
			near, far := m.split(suspect)
			m.near.push(dues(near, addrs))
			m.suspect.push(dues(far, addrs))
		}
		wait := tick
		if next := m.v.next(); !next.IsZero() {
			wait = min(max(next.Sub(m.n.now()), 0), tick)
		}
		t.Reset(wait)
	}
}

// split separates the providers the node is connected to from the rest.
func (m *monitor) split(ps []peer.ID) (near, far []peer.ID) {
	for _, p := range ps {
		if m.n.host.Network().Connectedness(p) == network.Connected {
			near = append(near, p)
		} else {
			far = append(far, p)
		}
	}
	return near, far
}

func dues(ps []peer.ID, addrs map[peer.ID][]string) []due {
	out := make([]due, len(ps))
	for i, p := range ps {
		out[i] = due{p, addrs[p]}
	}
	return out
}

// check pings provider d.p once, on its connection or at the addresses its
// record gives that the dial guard allows, and records the outcome.
func (m *monitor) check(ctx context.Context, d due) {
	n := m.n
	start := n.now()
	cctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	retry, err := m.reach(cctx, d, start)
	if err == nil {
		res, answered := <-ping.Ping(network.WithNoDial(cctx, "health check"), n.host, d.p)
		if err = res.Error; !answered {
			// Ping closes its channel without a result when the deadline passes.
			err = fmt.Errorf("no ping answer within %s", m.cfg.Timeout)
		}
	}
	cancel()
	if ctx.Err() != nil {
		return // shutting down: no verdict
	}
	if !retry.IsZero() {
		m.v.checked(d.p, false, start, retry)
		return
	}
	n.metrics.healthCheck(err == nil)
	changed, healthy := m.v.checked(d.p, err == nil, start, time.Time{})
	n.watchHub.peerChanged(d.p) // a first verdict, or a changed one, changes what watchers see
	switch {
	case changed && healthy:
		n.log.Info("provider healthy; serving its records", "provider", d.p)
	case changed:
		n.log.Warn("provider unhealthy; hiding its records", "provider", d.p, "err", err)
	case err != nil:
		n.log.Debug("health check failed", "provider", d.p, "err", err)
	}
}

// reach connects to d.p unless already connected, dialling only what the
// dial guard allows. A non-zero retry means no verdict: the per-host dial
// rate held every address back.
func (m *monitor) reach(ctx context.Context, d due, now time.Time) (retry time.Time, err error) {
	n := m.n
	if c := n.host.Network().Connectedness(d.p); c == network.Connected || c == network.Limited {
		return time.Time{}, nil // a relayed (limited) connection carries the ping too
	}
	public := m.cfg.Addrs.publicOnly(n.host.Addrs)
	var addrs []ma.Multiaddr
	for _, s := range d.addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if t, _ := peer.SplitAddr(a); t != nil && (!public || manet.IsPublicAddr(t)) {
			addrs = append(addrs, t)
		}
	}
	ok, limited := m.dials.plan(d.p, addrs, now)
	switch {
	case len(ok) == 0 && limited:
		return now.Add(time.Duration(float64(time.Second) / m.cfg.DialRate)), nil
	case len(ok) == 0:
		return time.Time{}, fmt.Errorf("no address to dial: %d named, none free this round", len(d.addrs))
	}
	// Dial exactly the addresses allowed, not what else the peerstore holds.
	n.host.Peerstore().ClearAddrs(d.p)
	n.host.Peerstore().AddAddrs(d.p, ok, peerstore.TempAddrTTL)
	dctx := network.WithDialPeerTimeout(ctx, m.cfg.DialTimeout)
	_, err = n.host.Network().DialPeer(dctx, d.p)
	owner := d.p
	if err != nil {
		owner = ""
	}
	m.dials.learn(d.p, ok, owner, err)
	return time.Time{}, err
}

// deregister deletes the records of providers unhealthy for longer than
// DeregisterAfter.
func (m *monitor) deregister(ctx context.Context, now time.Time) {
	gone := m.v.unhealthyFor(now.Add(-m.cfg.DeregisterAfter))
	if len(gone) == 0 {
		return
	}
	deleted, err := m.n.store.Sweep(ctx, now, gone)
	if err != nil {
		m.n.log.Error("deregistering providers", "err", err)
		return
	}
	for p := range gone {
		m.n.log.Warn("provider deregistered; its records are deleted", "provider", p)
	}
	m.n.log.Debug("deregistered", "providers", len(gone), "records", deleted)
}

// lane is a queue of due checks that a fixed set of workers drains.
type lane struct {
	mu    sync.Mutex
	queue []due
	ready chan struct{} // cap 1: the queue may be non-empty
}

func newLane() *lane { return &lane{ready: make(chan struct{}, 1)} }

func (l *lane) push(ds []due) {
	if len(ds) == 0 {
		return
	}
	l.mu.Lock()
	l.queue = append(l.queue, ds...)
	l.mu.Unlock()
	l.signal()
}

func (l *lane) signal() {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// pop takes the next due check, waiting for one until ctx ends.
func (l *lane) pop(ctx context.Context) (due, bool) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			d := l.queue[0]
			l.queue[0] = due{}
			l.queue = l.queue[1:]
			more := len(l.queue) > 0
			l.mu.Unlock()
			if more {
				l.signal()
			}
			return d, true
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return due{}, false
		case <-l.ready:
		}
	}
}
