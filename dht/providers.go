package dht

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/dht/registry"
)

// providerStore is the datastore kad-dht's provider manager writes
// provider records through (kad-dht v0.42 takes no custom ProviderStore,
// only its datastore). It bounds them: every new or refreshed record of a
// remote provider spends a token of that provider's bucket
// (ProviderRate, ProviderBurst); a provider holds at most ProvidersPerPeer
// records; the node holds at most MaxProviderRecords, and when full a
// newcomer's record evicts one of the provider holding the most, or is
// refused if it would hold as many. kad-dht stores only records whose
// provider is the peer that sent the ADD_PROVIDER, so these are limits per
// sending peer. The node's own records are neither limited nor counted.
// A refused record is dropped from kad-dht's write batch (the rest of the
// batch is kept) and counted in netget_provider_records_total.
//
// It keeps an index of the keys each provider holds (at most
// MaxProviderRecords keys, ~100 B each), rebuilt from the datastore on
// start.
type providerStore struct {
	ds.Batching
	self    peer.ID
	perPeer int
	budget  int
	limiter *registry.Limiter
	log     *slog.Logger
	counted *prometheus.CounterVec // outcome, reason

	mu      sync.Mutex
	byPeer  map[peer.ID]map[string]struct{} // datastore keys held per provider
	byCount []map[peer.ID]struct{}          // providers by the number of keys they hold
	top     int                             // highest non-empty index of byCount
	total   int
}

var _ ds.Batching = (*providerStore)(nil)

func newProviderStore(ctx context.Context, backing ds.Batching, self peer.ID, cfg Config, log *slog.Logger) (*providerStore, error) {
	s := &providerStore{
		Batching: backing, self: self, log: log,
		perPeer: cfg.ProvidersPerPeer, budget: cfg.MaxProviderRecords,
		limiter: registry.NewLimiter(cfg.ProviderRate, cfg.ProviderBurst),
		counted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netget_provider_records_total",
			Help: "DHT provider records from remote peers, by outcome and, for refusals, reason."},
			[]string{"outcome", "reason"}),
		byPeer:  make(map[peer.ID]map[string]struct{}),
		byCount: make([]map[peer.ID]struct{}, 1),
	}
	res, err := backing.Query(ctx, dsq.Query{Prefix: records.ProvidersKeyPrefix, KeysOnly: true})
	if err != nil {
		return nil, fmt.Errorf("index provider records: %w", err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("index provider records: %w", e.Error)
		}
		if p, ok := providerKeyPeer(e.Key); ok && p != self {
			s.add(p, e.Key)
		}
	}
	return s, nil
}

// providerKeyPeer returns the provider named by a provider-record key,
// /providers/<base32 key>/<base32 peer ID>.
func providerKeyPeer(key string) (peer.ID, bool) {
	if !strings.HasPrefix(key, records.ProvidersKeyPrefix) {
		return "", false
	}
	b, err := base32.RawStdEncoding.DecodeString(key[strings.LastIndexByte(key, '/')+1:])
	if err != nil {
		return "", false
	}
	p, err := peer.IDFromBytes(b)
	return p, err == nil
}

// admit decides whether key may be written. It returns the key of a record
// to delete to make room, if any.
func (s *providerStore) admit(key string) (evict string, err error) {
	p, ok := providerKeyPeer(key)
	if !ok || p == s.self {
		return "", nil
	}
	if !s.limiter.Allow(p) {
		return "", ErrProviderRate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.byPeer[p]
	if _, ok := held[key]; ok {
		return "", nil // a refresh
	}
	if len(held) >= s.perPeer {
		return "", ErrProviderQuota
	}
	if s.total >= s.budget {
		if s.top <= len(held)+1 {
			return "", ErrProviderStoreFull
		}
		evict = s.evictLocked()
	}
	s.add(p, key)
	return evict, nil
}

// add indexes key under provider p; the caller holds mu or owns s.
func (s *providerStore) add(p peer.ID, key string) {
	held := s.byPeer[p]
	if held == nil {
		held = make(map[string]struct{})
		s.byPeer[p] = held
	}
	if _, ok := held[key]; ok {
		return
	}
	s.move(p, len(held), len(held)+1)
	held[key] = struct{}{}
	s.total++
}

// forget drops key from the index, if it is a remote provider's record.
func (s *providerStore) forget(key string) {
	p, ok := providerKeyPeer(key)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(p, key)
}

func (s *providerStore) forgetLocked(p peer.ID, key string) {
	held := s.byPeer[p]
	if _, ok := held[key]; !ok {
		return
	}
	delete(held, key)
	s.total--
	s.move(p, len(held)+1, len(held))
	if len(held) == 0 {
		delete(s.byPeer, p)
	}
}

// move files provider p under count to instead of from.
func (s *providerStore) move(p peer.ID, from, to int) {
	if from > 0 {
		delete(s.byCount[from], p)
	}
	if to > 0 {
		for len(s.byCount) <= to {
			s.byCount = append(s.byCount, make(map[peer.ID]struct{}))
		}
		s.byCount[to][p] = struct{}{}
	}
	if to > s.top {
		s.top = to
	}
	for s.top > 0 && len(s.byCount[s.top]) == 0 {
		s.top--
	}
}

// evictLocked drops one record of a provider holding the most and returns
// its key.
func (s *providerStore) evictLocked() string {
	for p := range s.byCount[s.top] {
		for key := range s.byPeer[p] {
			s.forgetLocked(p, key)
			return key
		}
	}
	return ""
}

// count records the outcome of one write of a remote record.
func (s *providerStore) count(key string, err error) {
	if p, ok := providerKeyPeer(key); !ok || p == s.self {
		return
	}
	if err == nil {
		s.counted.WithLabelValues("accepted", "").Inc()
		return
	}
	s.counted.WithLabelValues("refused", err.Error()).Inc()
	s.log.Debug("provider record refused", "key", key, "err", err)
}

// stats returns the number of remote provider records held and the number
// held by p.
func (s *providerStore) stats(p peer.ID) (total, byPeer int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, len(s.byPeer[p])
}

// Put implements ds.Write, refusing what admit refuses.
func (s *providerStore) Put(ctx context.Context, key ds.Key, value []byte) error {
	evict, err := s.admit(key.String())
	s.count(key.String(), err)
	if err != nil {
		return fmt.Errorf("store provider record: %w", err)
	}
	if evict != "" {
		if err := s.Batching.Delete(ctx, ds.RawKey(evict)); err != nil {
			return err
		}
	}
	return s.Batching.Put(ctx, key, value)
}

// Delete implements ds.Write.
func (s *providerStore) Delete(ctx context.Context, key ds.Key) error {
	s.forget(key.String())
	return s.Batching.Delete(ctx, key)
}

// Batch implements ds.Batching: kad-dht's provider manager writes through
// batches.
func (s *providerStore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := s.Batching.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return providerBatch{Batch: b, s: s}, nil
}

// providerBatch is a batch of kad-dht's provider manager. A refused put is
// left out of the batch (and counted) so the rest of it commits.
type providerBatch struct {
	ds.Batch
	s *providerStore
}

// Put implements ds.Batch.
func (b providerBatch) Put(ctx context.Context, key ds.Key, value []byte) error {
	evict, err := b.s.admit(key.String())
	b.s.count(key.String(), err)
	if err != nil {
		return nil
	}
	if evict != "" {
		if err := b.Batch.Delete(ctx, ds.RawKey(evict)); err != nil {
			return err
		}
	}
	return b.Batch.Put(ctx, key, value)
}

// Delete implements ds.Batch.
func (b providerBatch) Delete(ctx context.Context, key ds.Key) error {
	b.s.forget(key.String())
	return b.Batch.Delete(ctx, key)
}

// startProviders builds the node's provider store on backing and registers
// its metrics.
func (n *Node) startProviders(backing ds.Batching) (*providerStore, error) {
	s, err := newProviderStore(n.ctx, backing, n.host.ID(), n.cfg, n.log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDatastore, err)
	}
	if n.cfg.Registerer != nil {
		if err := n.cfg.Registerer.Register(s.counted); err != nil {
			return nil, fmt.Errorf("%w: metrics: %w", ErrBadConfig, err)
		}
	}
	return s, nil
}

// ProviderRecords returns how many remote peers' DHT provider records the
// node holds, and how many of them p provided.
func (n *Node) ProviderRecords(p peer.ID) (total, byPeer int) { return n.providers.stats(p) }
