package dht

import (
	"fmt"
	"log/slog"
	"time"

	ds "github.com/ipfs/go-datastore"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// Mode is the DHT role of a node.
type Mode int

const (
	// ModeServer answers DHT queries and stores records: registries, and
	// nodes on a reachable address.
	ModeServer Mode = iota
	// ModeClient only queries: short-lived clients and unreachable nodes.
	ModeClient
	// ModeAuto lets kad-dht switch on reachability. Small private networks
	// never confirm reachability, so nodes there stay clients.
	ModeAuto
)

// ParseMode parses "server", "client" or "auto".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "server":
		return ModeServer, nil
	case "client":
		return ModeClient, nil
	case "auto":
		return ModeAuto, nil
	}
	return 0, fmt.Errorf("%w: dht mode %q: want server, client or auto", ErrBadConfig, s)
}

// String returns the name ParseMode accepts.
func (m Mode) String() string {
	switch m {
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	case ModeAuto:
		return "auto"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) kad() kaddht.ModeOpt {
	switch m {
	case ModeClient:
		return kaddht.ModeClient
	case ModeAuto:
		return kaddht.ModeAuto
	}
	return kaddht.ModeServer
}

// Config configures a Node. Build one with DefaultConfig.
type Config struct {
	// Network names the DHT this node joins (default "development"). Nodes
	// on different networks speak different protocol IDs and refuse each
	// other's records.
	Network string
	// Mode is the DHT role (default ModeServer).
	Mode Mode
	// FindTimeout bounds a Find that sets no timeout of its own (default 10s).
	FindTimeout time.Duration
	// FetchTimeout bounds fetching one provider's record (default 5s).
	FetchTimeout time.Duration
	// FetchConcurrency is how many providers' records one find fetches at
	// once, from providers the DHT walk names that no peer had a record
	// for (default 16); the walk waits for a slot, so however many
	// providers hostile peers announce, a find runs at most this many
	// fetches.
	FetchConcurrency int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock for record times; nil means time.Now.
	Now func() time.Time
	// DisableFastPath turns off the registry fast path: finds then ask no
	// registry directly and provides push to none (benchmarks, comparing
	// paths). The DHT path is unaffected.
	DisableFastPath bool
	// WalkHedge is how long a find's DHT path (the asks of the nearest
	// peers, then, 5 ms later at most, the DHT walk) and a publish's DHT
	// walk wait for the registries asked first (default 50ms). The
	// registries' answer needs one round trip, and the DHT path started
	// at once only competes with it. It adapts to the node's measured round trip
	// (the smoothed RTT of its registries' answers plus four deviations, as
	// TCP's retransmission timeout): where that is longer than WalkHedge,
	// each wait grows to it, at most MaxWalkHedge. 0 runs every path at
	// once.
	WalkHedge time.Duration
	// WalkDialTimeout bounds each dial a find's DHT walk makes (default
	// 2s; go-libp2p's own is 5s on a local network and 15s elsewhere): a
	// peer killed a moment ago stays in its neighbours' routing tables, and
	// a QUIC dial to it waits out the whole timeout. With the fast path, a
	// find that has its answer does not wait for such dials at all.
	WalkDialTimeout time.Duration
	// RequestRate and RequestBurst bound registry-protocol requests per
	// remote peer (default 200/s, burst 400); excess streams are reset.
	RequestRate  float64
	RequestBurst int
	// ListPage is the most records one page of a paged registry-protocol
	// list carries (default 100, registry.DefaultPageLimit; 1 to 1024,
	// registry.MaxPageLimit); a page is also cut at registry.PageBytes of
	// envelopes. A list without a cursor (what finds send) is bounded by
	// registry.MaxListLimit instead.
	ListPage int
	// ProviderRate and ProviderBurst bound the DHT provider records
	// (ADD_PROVIDER) each remote peer may store or refresh on this node
	// (default 10/s, burst 256); the excess is dropped.
	ProviderRate  float64
	ProviderBurst int
	// ProvidersPerPeer is how many provider records one remote peer may
	// hold on this node (default 1024).
	ProvidersPerPeer int
	// MaxProviderRecords is how many remote peers' provider records the
	// node holds in all (default 65536, a few MiB). When full, a newcomer's
	// record evicts one of the peer holding the most; see providerStore.
	MaxProviderRecords int
	// ProviderLifetime is how long the node keeps a provider record that
	// is not refreshed (default 25h: record.MaxTTL plus an hour of slack;
	// at most 48h, kad-dht's own default).
	ProviderLifetime time.Duration
	// Allow, if set, closes the network to the providers it lists (per
	// network or per service, see record.AllowList): the validator refuses
	// anyone else's records on every write (record.ErrNotAllowed) and a
	// find drops them on read. Nil (the default) accepts every provider.
	Allow *record.AllowList
	// Datastore keeps the records the node holds (its netget records and
	// kad-dht's provider records); nil keeps them in memory. Give a
	// persistent one (OpenDatastore) to keep them across restarts.
	Datastore ds.Batching
	// Health turns on the registry's health monitor (zero: off). With it
	// on, a full store evicts never-checked and unhealthy providers'
	// records before it refuses a newcomer.
	Health Health
	// Sync turns on a registry's sync with the other registries of its
	// network (zero: off): forwarding the records it takes, periodic
	// reconciliation, the sync protocol. See Sync and RegistrySync.
	Sync Sync
	// Store bounds the record store per signing key, per source address
	// prefix, per service and in bytes (DefaultStoreLimits; a zero field
	// takes its default).
	Store StoreLimits
	// Watch bounds the watches this node serves (as a registry) per peer,
	// in all, and each watcher's queue (DefaultWatchLimits; a zero field
	// takes its default).
	Watch WatchLimits
	// WatchPollInterval is how often a Watch on a node without registries
	// runs a find on the DHT path to learn changes (default 10s).
	WatchPollInterval time.Duration
	// Registerer, if set, receives the node's Prometheus metrics.
	Registerer prometheus.Registerer
	// KadOptions are appended to netget's kad-dht options (datastores,
	// bucket size, test seams). They cannot change the protocol prefix or
	// the validator.
	KadOptions []kaddht.Option
}

// DefaultConfig returns the defaults documented on Config for network.
func DefaultConfig(network string) Config {
	if network == "" {
		network = record.DefaultNetwork
	}
	return Config{
		Network:            network,
		Mode:               ModeServer,
		FindTimeout:        10 * time.Second,
		FetchTimeout:       5 * time.Second,
		FetchConcurrency:   16,
		WalkHedge:          50 * time.Millisecond,
		WalkDialTimeout:    2 * time.Second,
		RequestRate:        200,
		RequestBurst:       400,
		ListPage:           registry.DefaultPageLimit,
		ProviderRate:       10,
		ProviderBurst:      256,
		ProvidersPerPeer:   1024,
		MaxProviderRecords: 65536,
		ProviderLifetime:   record.MaxTTL + time.Hour,
		Store:              DefaultStoreLimits(),
		Watch:              DefaultWatchLimits(),
		WatchPollInterval:  10 * time.Second,
	}
}

// Validate checks the config without side effects.
func (c Config) Validate() error {
	if err := record.ValidateNetwork(c.Network); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.Mode < ModeServer || c.Mode > ModeAuto {
		return fmt.Errorf("%w: mode %d", ErrBadConfig, c.Mode)
	}
	if c.FindTimeout <= 0 || c.FetchTimeout <= 0 || c.WalkDialTimeout <= 0 || c.FetchConcurrency <= 0 || c.RequestRate <= 0 || c.RequestBurst <= 0 {
		return fmt.Errorf("%w: timeouts and request limits must be positive", ErrBadConfig)
	}
	if err := registry.ValidatePageSize(c.ListPage); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.ProviderRate <= 0 || c.ProviderBurst <= 0 || c.ProvidersPerPeer <= 0 || c.MaxProviderRecords <= 0 {
		return fmt.Errorf("%w: provider record limits must be positive", ErrBadConfig)
	}
	if c.ProviderLifetime <= 0 || c.ProviderLifetime > MaxProviderLifetime {
		return fmt.Errorf("%w: provider lifetime %v: want more than 0 and at most %v", ErrBadConfig, c.ProviderLifetime, MaxProviderLifetime)
	}
	if c.Watch.PerPeer < 0 || c.Watch.Max < 0 || c.Watch.Queue < 0 || c.WatchPollInterval < 0 {
		return fmt.Errorf("%w: watch limits must not be negative", ErrBadConfig)
	}
	if err := c.Store.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if err := c.Sync.validate(); err != nil {
		return err
	}
	return c.Health.validate()
}

// StoreLimits bounds a node's record store (Config.Store): see
// store.Limits, where the store checks them.
type StoreLimits = store.Limits

// DefaultStoreLimits returns the defaults documented on store.Limits.
func DefaultStoreLimits() StoreLimits { return store.DefaultLimits() }

// MaxRecordsPerService is the default of StoreLimits.PerService: the most
// providers one service is indexed for.
const MaxRecordsPerService = store.MaxPerService

// RecordOverhead is what one record costs in the store's bytes budget
// beside its envelope (StoreLimits.Bytes; store.RecordOverhead).
const RecordOverhead = store.RecordOverhead

// OpenDatastore opens (creating it if need be) the on-disk Pebble
// datastore in dir that a persistent node gives Config.Datastore, synced
// writes (store.Open). The caller closes it after the Node and the host. A
// directory that is not a datastore, or one another process has open,
// fails with ErrDatastore and the path.
func OpenDatastore(dir string) (ds.Batching, error) { return store.Open(dir) }

// DefaultMemtableBytes is the memtable a datastore gets when its
// DatastoreOptions leave it zero (store.DefaultMemtableBytes).
const DefaultMemtableBytes = store.DefaultMemtableBytes

// DatastoreOptions tunes the datastore OpenDatastoreWith opens: the size
// of Pebble's memtable (store.Options, store.DefaultMemtableBytes).
type DatastoreOptions = store.Options

// OpenDatastoreWith is OpenDatastore with o; options that fail
// o.Validate fail it (store.ErrBadDatastoreOptions).
func OpenDatastoreWith(dir string, o DatastoreOptions) (ds.Batching, error) {
	return store.OpenWith(dir, o)
}

// MaxProviderLifetime is the longest Config.ProviderLifetime: kad-dht's
// default provide validity.
const MaxProviderLifetime = 48 * time.Hour
