package dht

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/dht/registry"
)

// Sync configures how a registry keeps in step with the other registries
// of its network (see "Registries in concert" in the package doc). The
// zero value (Interval 0) turns it off, as on nodes that are not
// registries.
type Sync struct {
	// Interval is the time between two reconciliations with every sync
	// peer (registries: 30s); a registry also reconciles at once with a
	// sync peer it connects to. 0 turns sync off: no forwarding, no
	// reconciliation, and the sync protocol is not served.
	Interval time.Duration
	// MaxRecords bounds the records one reconciliation takes, all peers
	// together (default 262144: more than a full default store holds).
	MaxRecords int
	// MaxBytes bounds the bytes one reconciliation reads from its peers
	// (default 256 MiB, the default store's size); the rest waits for the
	// next round.
	MaxBytes int64
	// PeerRate and PeerBurst bound the envelope bytes this registry sends
	// one peer's pulls (default 32 MiB/s, burst 1 MiB; the burst is at
	// least registry.PullBudget): a joining registry catches up at this
	// rate, and a peer that pulls everything again and again gets no more.
	PeerRate  float64
	PeerBurst int
	// ForwardQueue bounds the records waiting to be forwarded to one sync
	// peer (default 4096); beyond, a record is not forwarded to it, and the
	// next reconciliation brings it instead.
	ForwardQueue int
}

// MinSyncPeerBurst is the least Sync.PeerBurst: one pull's bytes.
const MinSyncPeerBurst = registry.PullBudget

// RegistrySync returns the registry defaults: reconcile every 30s, and the
// other defaults documented on Sync.
func RegistrySync() Sync { return Sync{Interval: 30 * time.Second}.withDefaults() }

func (s Sync) withDefaults() Sync {
	if s.MaxRecords == 0 {
		s.MaxRecords = 1 << 18
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = 256 << 20
	}
	if s.PeerRate == 0 {
		s.PeerRate = 32 << 20
	}
	if s.PeerBurst == 0 {
		s.PeerBurst = 1 << 20
	}
	if s.ForwardQueue == 0 {
		s.ForwardQueue = 4096
	}
	return s
}

func (s Sync) validate() error {
	if s.Interval < 0 || s.MaxRecords < 0 || s.MaxBytes < 0 || s.PeerRate < 0 || s.ForwardQueue < 0 {
		return fmt.Errorf("%w: sync limits must not be negative", ErrBadConfig)
	}
	if s.PeerBurst != 0 && s.PeerBurst < MinSyncPeerBurst {
		return fmt.Errorf("%w: sync peer burst %d bytes: want at least %d (one pull)", ErrBadConfig, s.PeerBurst, MinSyncPeerBurst)
	}
	return nil
}

// SyncStatus is what a registry's sync has done (Node.SyncStatus).
type SyncStatus struct {
	// Peers are the registries this node syncs with now.
	Peers []peer.ID
	// LastRound is when the last reconciliation ended (zero: none yet),
	// LastError why it failed with some peer ("" when it did not).
	LastRound time.Time
	LastError string
	// LastFetched and LastBytes are the records it took and the bytes it
	// read.
	LastFetched int
	LastBytes   int64
	// Rounds counts reconciliations; Fetched the records they took;
	// Forwarded the records sent to peers as they arrived; Received those
	// peers forwarded that were new here; Refused those either way that
	// failed verification or the store's quotas.
	Rounds, Fetched, Forwarded, Received, Refused uint64
}

// syncer is a registry's sync with the others of its network: it tracks
// the connected peers that serve the sync protocol, forwards what the node
// takes, serves and runs reconciliations (reconcile.go). It is nil on a
// node without Config.Sync; its methods are then no-ops.
type syncer struct {
	n      *Node
	cfg    Sync
	proto  protocol.ID
	client *registry.SyncClient
	kick   chan struct{} // a round is wanted now (a new peer)

	mu    sync.Mutex
	peers map[peer.ID]*forwarder
	last  SyncStatus // LastRound, LastError, LastFetched, LastBytes

	snapMu sync.Mutex
	snap   *snapshot // the store's entries, sorted, rebuilt when stale

	rounds, fetched, forwarded, received, refused, dropped atomic.Uint64
	collectors                                             []prometheus.Collector
}

// newSyncer returns the sync of a node whose Config.Sync is on, not yet
// running (start), with its metrics registered; nil when sync is off.
func newSyncer(n *Node) (*syncer, error) {
	if n.cfg.Sync.Interval <= 0 {
		return nil, nil
	}
	s := &syncer{n: n, cfg: n.cfg.Sync.withDefaults(), proto: registry.SyncProtocol(n.cfg.Network),
		client: registry.NewSyncClient(n.host, n.cfg.Network), kick: make(chan struct{}, 1),
		peers: make(map[peer.ID]*forwarder)}
	s.collectors = s.metrics()
	if n.cfg.Registerer != nil {
		for _, c := range s.collectors {
			if err := n.cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("%w: metrics: %w", ErrBadConfig, err)
			}
		}
	}
	return s, nil
}

// start serves the sync protocol and starts tracking sync peers and
// reconciling, until the node closes.
func (s *syncer) start() error {
	if s == nil {
		return nil
	}
	n := s.n
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated), new(event.EvtPeerConnectednessChanged)})
	if err != nil {
		return fmt.Errorf("start sync: %w", err)
	}
	requests := registry.NewLimiter(n.cfg.RequestRate, n.cfg.RequestBurst)
	bytes := registry.NewLimiter(s.cfg.PeerRate, s.cfg.PeerBurst)
	n.host.SetStreamHandler(s.proto, registry.NewSyncHandler(replica{s}, requests, bytes, n.log).HandleStream)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		s.track(sub)
	}()
	go func() {
		defer n.wg.Done()
		s.loop()
	}()
	return nil
}

// close stops serving the protocol; the goroutines end with the node's
// context.
func (s *syncer) close() {
	if s == nil {
		return
	}
	s.n.host.RemoveStreamHandler(s.proto)
}

// closeClient resets the idle streams, once every goroutine has ended.
func (s *syncer) closeClient() {
	if s != nil {
		s.client.Close()
	}
}

// track keeps the set of sync peers: connected peers whose identify says
// they serve the sync protocol of this network. It scans the connections
// at start, then follows identify and connection events.
func (s *syncer) track(sub event.Subscription) {
	for _, p := range s.n.host.Network().Peers() {
		s.consider(p)
	}
	for {
		select {
		case <-s.n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtPeerIdentificationCompleted:
				s.consider(e.Peer)
			case event.EvtPeerProtocolsUpdated:
				s.consider(e.Peer)
			case event.EvtPeerConnectednessChanged:
				if e.Connectedness != network.Connected {
					s.drop(e.Peer)
				}
			}
		}
	}
}

// consider makes connected peer p a sync peer if it serves the protocol,
// and drops it if it stopped.
func (s *syncer) consider(p peer.ID) {
	if p == s.n.host.ID() {
		return
	}
	ok, _ := s.n.host.Peerstore().SupportsProtocols(p, s.proto)
	if len(ok) == 0 || s.n.host.Network().Connectedness(p) != network.Connected {
		s.drop(p)
		return
	}
	s.mu.Lock()
	if _, known := s.peers[p]; known {
		s.mu.Unlock()
		return
	}
	f := s.newForwarder(p)
	s.peers[p] = f
	s.mu.Unlock()
	s.n.host.ConnManager().Protect(p, syncTag)
	s.n.log.Debug("sync peer", "peer", p)
	select { // catch up with it at once
	case s.kick <- struct{}{}:
	default:
	}
}

// syncTag protects the connections to sync peers from trimming.
const syncTag = "netget-sync"

// drop stops syncing with p.
func (s *syncer) drop(p peer.ID) {
	s.mu.Lock()
	f, ok := s.peers[p]
	delete(s.peers, p)
	s.mu.Unlock()
	if ok {
		f.stop()
		s.n.host.ConnManager().Unprotect(p, syncTag)
	}
}

// peerList returns the sync peers, sorted.
func (s *syncer) peerList() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.ID, 0, len(s.peers))
	for p := range s.peers {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// forward queues env, a record this node just took, for every sync peer
// but from (the one that forwarded it, if any).
func (s *syncer) forward(env []byte, from peer.ID) {
	if s == nil {
		return
	}
	s.mu.Lock()
	fs := make([]*forwarder, 0, len(s.peers))
	for p, f := range s.peers {
		if p != from {
			fs = append(fs, f)
		}
	}
	s.mu.Unlock()
	for _, f := range fs {
		if !f.offer(env) {
			s.dropped.Add(1)
		}
	}
}

// loop reconciles every Interval, and at once when a new peer appears.
func (s *syncer) loop() {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.n.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		s.round()
	}
}

// status returns what sync has done.
func (s *syncer) status() SyncStatus {
	if s == nil {
		return SyncStatus{}
	}
	s.mu.Lock()
	st := s.last
	s.mu.Unlock()
	st.Peers = s.peerList()
	st.Rounds, st.Fetched, st.Forwarded = s.rounds.Load(), s.fetched.Load(), s.forwarded.Load()
	st.Received, st.Refused = s.received.Load(), s.refused.Load()
	return st
}

// SyncStatus returns what this registry's sync with the others has done;
// the zero SyncStatus when Config.Sync is off.
func (n *Node) SyncStatus() SyncStatus { return n.sync.status() }

// metrics returns sync's Prometheus collectors.
func (s *syncer) metrics() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netget_sync_peers",
			Help: "Registries this registry syncs with now."}, func() float64 { return float64(len(s.peerList())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netget_sync_last_round_timestamp_seconds",
			Help: "When the last reconciliation ended (Unix time; 0: none yet)."}, func() float64 {
			st := s.status()
			if st.LastRound.IsZero() {
				return 0
			}
			return float64(st.LastRound.UnixNano()) / 1e9
		}),
		counter("netget_sync_rounds_total", "Reconciliations run.", &s.rounds),
		counter("netget_sync_records_fetched_total", "Records reconciliations took from sync peers.", &s.fetched),
		counter("netget_sync_records_forwarded_total", "Records forwarded to sync peers as they arrived.", &s.forwarded),
		counter("netget_sync_records_received_total", "Records sync peers forwarded that were new here.", &s.received),
		counter("netget_sync_records_refused_total", "Records from sync peers refused (verification, quotas).", &s.refused),
		counter("netget_sync_forward_dropped_total", "Records not forwarded because a peer's queue was full.", &s.dropped),
	}
}
