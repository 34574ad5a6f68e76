package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// Node is a member of one netget network's DHT. It owns a kad-dht instance
// on a host it is given (and does not close), the records it publishes, and
// the registry protocol handler that serves them.
type Node struct {
	cfg       Config
	host      host.Host
	key       crypto.PrivKey
	kad       *kaddht.IpfsDHT
	messenger *kadpb.ProtocolMessenger
	validator record.Validator
	log       *slog.Logger
	proto     protocol.ID

	// ctx ends when the node closes; background work derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node owns
	bg     sync.WaitGroup // background value-store puts (Settle)
	once   sync.Once

	store     *store.Store   // verified records held, this node's own included
	health    *verdicts      // whose records the store serves (health.go)
	providers *providerStore // kad-dht's provider records, bounded
	metrics   *metrics

	mu      sync.Mutex // serialises sealing, so seqs only grow
	lastSeq uint64

	regMu      sync.Mutex
	registries map[peer.ID]bool  // registries this node uses for the fast path
	client     *registry.Client  // registry-protocol requests, streams kept for reuse
	limiter    *registry.Limiter // registry and watch requests per remote peer

	watchHub   *watchHub          // the watches this node serves (watch_hub.go)
	watchProto protocol.ID        // registry.WatchProtocol
	watchMu    sync.Mutex         // guards watches
	watches    map[cid.Cid]*watch // this node's own watches, one per service (watch.go)

	sync *syncer // a registry's sync with the others (sync.go); nil when Config.Sync is off

	walkObserver   func(routing.QueryEvent)   // test seam: sees every walk event
	fetchObserver  func(running int)          // test seam: fetches running as one starts
	askObserver    func(Source)               // test seam: each record request a find sends
	answerObserver func(peer.ID, Source, int) // test seam: each list answer a find gets (records, -1 on error)
	rtt            rttEstimator               // registries' round trips (hedge.go)
	syncObserver   func(env []byte)           // test seam: a record sync brought, new here
}

// New starts a DHT node for cfg.Network on h. The caller still owns h and
// cfg.Datastore, and closes them after the Node (host first). With a
// persistent datastore, the records it holds from an earlier run are
// indexed before New returns and served at once, each verified before it
// is first served; their signatures are checked in the background
// (store.Store.Load, VerifyAll).
func New(h host.Host, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := h.Peerstore().PrivKey(h.ID())
	if key == nil {
		return nil, fmt.Errorf("%w: host has no private key in its peerstore", ErrBadConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backing := cfg.Datastore
	if backing == nil {
		backing = dssync.MutexWrap(ds.NewMapDatastore())
	}
	n := &Node{
		cfg:        cfg,
		host:       h,
		key:        key,
		validator:  record.Validator{Network: cfg.Network, Now: cfg.Now, Cache: store.NewCache(), Allow: cfg.Allow},
		log:        log.With("network", cfg.Network),
		proto:      registry.Protocol(cfg.Network),
		registries: make(map[peer.ID]bool),
		client:     registry.NewClient(h, registry.Protocol(cfg.Network)),
		limiter:    registry.NewLimiter(cfg.RequestRate, cfg.RequestBurst),
		watchProto: registry.WatchProtocol(cfg.Network),
		watches:    make(map[cid.Cid]*watch),
	}
	n.health = newVerdicts(h.ID(), n.now, h.Addrs, cfg.Health)
	n.store = store.New(backing, n.validator, cfg.Store, storeVerdicts{n.health})
	serve, err := registry.NewHandler(holder{n}, n.limiter, cfg.ListPage, n.log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	n.watchHub = newWatchHub(n, cfg.Watch)
	n.store.OnChange(n.watchHub.notify)
	n.metrics = newMetrics(n.store, n.Providers)
	n.metrics.collectors = append(n.metrics.collectors, n.watchHub.collectors()...)
	if cfg.Registerer != nil {
		if err := n.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	sy, err := newSyncer(n)
	if err != nil {
		return nil, err
	}
	n.sync = sy
	n.ctx, n.cancel = context.WithCancel(context.Background())
	loaded, err := n.store.Load(n.ctx, n.now())
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("%w: %w", ErrDatastore, err)
	}
	if n.providers, err = n.startProviders(backing); err != nil {
		n.cancel()
		return nil, err
	}
	opts := append([]kaddht.Option{}, cfg.KadOptions...)
	opts = append(opts,
		kaddht.ProtocolPrefix(protocol.ID("/netget/"+cfg.Network)),
		kaddht.Validator(kadValidator(n.validator, n.metrics)),
		kaddht.Datastore(store.NewView(backing, n.store, n.validator, n.metrics.record).
			OnAdded(func(env []byte) { n.sync.forward(env, "") })),
		kaddht.ProviderDatastore(n.providers),
		kaddht.ProviderManagerOpts(records.ProvideValidity(cfg.ProviderLifetime)),
		kaddht.Mode(cfg.Mode.kad()),
	)
	if n.kad, err = kaddht.New(h, opts...); err != nil {
		n.cancel()
		return nil, fmt.Errorf("start dht: %w", err)
	}
	if n.messenger, err = kadpb.NewProtocolMessenger(n.kad.MessageSender()); err != nil {
		n.cancel()
		n.kad.Close()
		return nil, fmt.Errorf("start dht: %w", err)
	}
	if loaded > 0 {
		n.log.Info("records loaded from the datastore; verifying their signatures", "records", loaded)
		n.startVerifier()
	}
	h.SetStreamHandler(n.proto, serve.HandleStream)
	h.SetStreamHandler(n.watchProto, n.handleWatch)
	n.wg.Go(func() { n.watchHub.run(n.ctx) })
	if err := n.sync.start(); err != nil {
		n.Close()
		return nil, err
	}
	n.startSweeper()
	if cfg.Health.Interval > 0 {
		n.startMonitor()
	}
	return n, nil
}

// startVerifier checks the signatures of the records loaded at start-up,
// in the background, and deletes those that fail.
func (n *Node) startVerifier() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		deleted, err := n.store.VerifyAll(n.ctx)
		switch {
		case err != nil && n.ctx.Err() == nil:
			n.log.Error("verifying loaded records", "err", err)
		case deleted > 0:
			n.log.Warn("loaded records failed verification; deleted", "records", deleted)
		}
	}()
}

// sweepInterval is how often a node deletes expired records.
const sweepInterval = time.Minute

// startSweeper deletes expired records every sweepInterval until Close.
func (n *Node) startSweeper() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(sweepInterval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
				if _, err := n.store.Sweep(n.ctx, n.now(), nil); err != nil && n.ctx.Err() == nil {
					n.log.Error("deleting expired records", "err", err)
				}
			}
		}
	}()
}

// Close stops background work and the DHT. It is idempotent and does not
// close the host.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.host.RemoveStreamHandler(n.proto)
		n.sync.close()
		n.host.RemoveStreamHandler(n.watchProto)
		n.cancel()
		n.wg.Wait()
		n.client.Close()
		n.sync.closeClient()
		err = n.kad.Close()
	})
	return err
}

// Host returns the host the node runs on.
func (n *Node) Host() host.Host { return n.host }

// Network returns the network the node is on.
func (n *Node) Network() string { return n.cfg.Network }

// RoutingTableSize returns the number of peers in the DHT routing table.
func (n *Node) RoutingTableSize() int { return n.kad.RoutingTable().Size() }

// Ready blocks until the routing table holds at least one peer, so provide
// and find have someone to ask, or until ctx ends (ErrNotReady).
func (n *Node) Ready(ctx context.Context) error {
	if n.RoutingTableSize() > 0 {
		return nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", ErrNotReady, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		case <-t.C:
			if n.RoutingTableSize() > 0 {
				return nil
			}
		}
	}
}

// registryTag protects registry connections in the connection manager.
const registryTag = "netget-registry"

// AddRegistry makes p one of this node's registries: finds ask it directly
// (one round trip) and publishes push to it, while it is connected. Its
// connection is protected from trimming. Registries are usually the
// bootstrap peers the node joined through.
func (n *Node) AddRegistry(p peer.ID) {
	if p == n.host.ID() {
		return
	}
	n.host.ConnManager().Protect(p, registryTag)
	n.regMu.Lock()
	n.registries[p] = true
	n.regMu.Unlock()
}

// RemoveRegistry stops using p as a registry: finds no longer ask it and
// publishes no longer push to it, and its connection is no longer
// protected. It reports whether p was one.
func (n *Node) RemoveRegistry(p peer.ID) bool {
	n.regMu.Lock()
	was := n.registries[p]
	delete(n.registries, p)
	n.regMu.Unlock()
	if was {
		n.host.ConnManager().Unprotect(p, registryTag)
	}
	return was
}

// KnownRegistries returns every registry of this node, connected or not.
func (n *Node) KnownRegistries() []peer.ID {
	n.regMu.Lock()
	defer n.regMu.Unlock()
	out := make([]peer.ID, 0, len(n.registries))
	for p := range n.registries {
		out = append(out, p)
	}
	return out
}

// PushOwn offers registry p this node's latest record of every service
// it holds one of its own for (withdrawals included), as a publish does
// for every registry, whoever published them (Provide, Publish, a record
// loaded from the datastore). It returns p's refusals, joined.
func (n *Node) PushOwn(ctx context.Context, p peer.ID) error {
	var errs []error
	for _, c := range n.store.ServicesOf(n.host.ID()) {
		env, ok := n.store.Envelope(ctx, c, n.host.ID())
		if !ok {
			continue // withdrawn and swept since
		}
		if err := n.client.Push(ctx, p, env); err != nil {
			errs = append(errs, fmt.Errorf("push %s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// Registries returns the registries this node is connected to now.
func (n *Node) Registries() []peer.ID {
	n.regMu.Lock()
	defer n.regMu.Unlock()
	var out []peer.ID
	for p := range n.registries {
		if n.host.Network().Connectedness(p) == network.Connected {
			out = append(out, p)
		}
	}
	return out
}

// fastPath returns the registries to use for the fast path, or none when
// it is disabled.
func (n *Node) fastPath() []peer.ID {
	if n.cfg.DisableFastPath {
		return nil
	}
	return n.Registries()
}

// Settle waits until the background work Publish started (the DHT walk
// that places published records on the peers closest to them) has
// finished, or ctx ends.
func (n *Node) Settle(ctx context.Context) error { return waitFor(ctx, &n.bg, 0) }

// waitFor waits until wg is done, ctx ends (its error) or, when limit is
// positive, limit has passed (nil). The waiting goroutine ends with wg's
// work, which its owner bounds.
func waitFor(ctx context.Context, wg *sync.WaitGroup, limit time.Duration) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	var expired <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-done:
		return nil
	case <-expired:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Refresh walks the DHT to fill the routing table and waits for the walk.
func (n *Node) Refresh(ctx context.Context) error {
	select {
	case err := <-n.kad.ForceRefresh():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) now() time.Time {
	if n.cfg.Now != nil {
		return n.cfg.Now()
	}
	return time.Now()
}

// ownExpires returns when this node's latest record for service c
// expires, if it holds one.
func (n *Node) ownExpires(c cid.Cid) (time.Time, bool) { return n.store.Expires(c, n.host.ID()) }

// Rejections returns how many records this node refused, by reason (a
// record sentinel error such as record.ErrExpired), on every path: DHT
// writes to it, DHT reads, registry-protocol fetches and Put.
func (n *Node) Rejections() map[error]uint64 { return n.metrics.rejections() }

// StoredRecords returns how many signed records the node holds (its own
// included, tombstones and records not yet swept included).
func (n *Node) StoredRecords() int { return n.store.Len() }

// StoredBytes returns what the records the node holds cost in its bytes
// budget (StoreLimits.Bytes): their envelopes plus RecordOverhead each.
func (n *Node) StoredBytes() int64 { return n.store.Bytes() }
