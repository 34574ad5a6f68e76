package netget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/p2p"
)

// Node is one netget node: a libp2p host, its DHT node on one network, the
// registries it uses, the services it provides and, optionally, a
// WebSocket bridge. Build it with New; Close releases everything it took.
type Node struct {
	cfg     Config
	log     *slog.Logger
	host    host.Host
	dht     *dht.Node
	bridge  *bridgeServer // nil without Config.BridgeAddr
	chans   *channel.Server
	started time.Time
	joined  []peer.ID  // bootstrap peers joined at start
	closers []func()   // undo New's steps, run in reverse by Close
	once    sync.Once  // Close
	svcs    services   // provided services and their republish loops
	regs    registries // registries added at run time, and their file

	relayDHT atomic.Pointer[dht.Node] // n.dht, for AutoRelay's goroutine (relayCandidates)
}

// New builds a node from cfg and joins its network: identity, data dir
// lock and datastore (Persist), host, DHT, bootstrap peers (which become
// its registries, with those added at run time in an earlier run), and the
// bridge. It returns once the node has joined, or failed to; on error
// nothing it took is left open. ctx bounds joining only.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log, started: time.Now()}
	n.svcs.init(n)
	if err := n.start(ctx); err != nil {
		n.closeAll()
		if cfg.BridgeListener != nil && n.bridge == nil {
			cfg.BridgeListener.Close()
		}
		return nil, err
	}
	return n, nil
}

// start takes New's steps in order, recording how to undo each.
func (n *Node) start(ctx context.Context) error {
	cfg := n.cfg
	var store ds.Batching
	if cfg.locks() {
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		n.closers = append(n.closers, unlock)
	}
	if cfg.Persist {
		var err error
		if store, err = dht.OpenDatastoreWith(filepath.Join(cfg.DataDir, "datastore"), cfg.Datastore); err != nil {
			return err
		}
		n.closers = append(n.closers, func() { store.Close() })
	}
	h, err := p2p.NewHost(n.hostConfig())
	if err != nil {
		return err
	}
	n.host = h
	n.closers = append(n.closers, func() { h.Close() })
	dcfg := cfg.dhtConfig(n.log)
	dcfg.Datastore = store
	if n.dht, err = dht.New(h, dcfg); err != nil {
		return err
	}
	n.closers = append(n.closers, func() { n.dht.Close() })
	n.relayDHT.Store(n.dht)
	n.log = n.log.With("peer", h.ID())
	ccfg := cfg.Channel
	ccfg.Logger = n.log
	if n.chans, err = channel.NewServer(h, cfg.Network, ccfg); err != nil {
		return err
	}
	n.closers = append(n.closers, func() { n.chans.Close() })
	if err := n.join(ctx); err != nil {
		return err
	}
	if cfg.BridgeAddr != "" || cfg.BridgeListener != nil {
		if n.bridge, err = startBridge(ctx, n); err != nil {
			return err
		}
		n.closers = append(n.closers, n.bridge.stop)
	}
	return nil
}

// hostConfig is cfg.Host with the node's identity.
func (n *Node) hostConfig() p2p.Config {
	h := n.cfg.Host
	h.Registerer = n.cfg.Registerer
	if h.Relays == nil {
		h.Relays = n.relayCandidates
	}
	// One opener peer (a bridge) may hold MaxChannelsPerPeer channels,
	// each a stream, more than go-libp2p allows one peer by default.
	per := n.cfg.Channel.WithDefaults().MaxChannelsPerPeer
	h.PeerStreams = maps.Clone(h.PeerStreams)
	if h.PeerStreams == nil {
		h.PeerStreams = make(map[string]int, 2)
	}
	h.PeerStreams[string(channel.Protocol(n.cfg.Network))] = per
	h.PeerStreams[channel.ServiceName] = per
	switch {
	case n.cfg.Identity != nil:
		h.Identity = n.cfg.Identity
	case n.cfg.IdentityFile != "":
		h.IdentityPath = n.cfg.IdentityFile
	case n.cfg.DataDir != "" && !n.cfg.Ephemeral:
		h.IdentityPath = filepath.Join(n.cfg.DataDir, "identity.key")
	}
	return h
}

// join connects to the bootstrap peers and the registries saved by an
// earlier run, and makes every peer joined a registry.
func (n *Node) join(ctx context.Context) error {
	saved, err := n.regs.load(n)
	if err != nil {
		return err
	}
	addrs := append(append([]ma.Multiaddr{}, n.cfg.Bootstrap...), saved...)
	if len(addrs) == 0 {
		return nil
	}
	joined, err := bootstrap.Join(ctx, n.host, addrs, n.cfg.joinConfig(n.log))
	switch {
	case err != nil && n.cfg.JoinOptional && ctx.Err() == nil:
		// Registries often list each other; the first to start finds
		// the rest down, and they will connect to it instead.
		n.log.Warn("starting without the other bootstrap peers", "err", err)
	case err != nil:
		return err
	}
	n.joined = joined
	for _, p := range joined {
		n.useRegistry(p)
	}
	return nil
}

// useRegistry makes connected peer p one of the node's registries if it
// announces bootstrap.RegistryAgent, and reports whether it did: the one
// rule for bootstrap peers and registries added at run time. Another peer
// is asked as a DHT peer only, its records labelled as such.
func (n *Node) useRegistry(p peer.ID) bool {
	if !bootstrap.IsRegistry(n.host, p) {
		n.log.Debug("peer is not a registry; asking it as a DHT peer", "peer", p)
		return false
	}
	n.dht.AddRegistry(p)
	return true
}

// Close closes the channels the node serves (CloseGoingAway), withdraws
// the services it provides (bounded by Config.CloseTimeout; not with
// Config.KeepOnClose), then shuts down top-down: bridge, DHT, host,
// datastore, data-dir lock. It is idempotent.
func (n *Node) Close() error {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.closeTimeout())
		defer cancel()
		if n.bridge != nil {
			n.bridge.shutdown(ctx)
		}
		n.chans.Close()
		n.svcs.stopAll(ctx, !n.cfg.KeepOnClose)
		n.closeAll()
	})
	return nil
}

// closeAll runs the closers in reverse order of start.
func (n *Node) closeAll() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// DHT returns the node's DHT node, for what this package does not wrap.
func (n *Node) DHT() *dht.Node { return n.dht }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Network returns the network the node is on.
func (n *Node) Network() string { return n.cfg.Network }

// Addrs returns the node's full multiaddrs (with /p2p/<id>): what others
// pass as a bootstrap address or dial.
func (n *Node) Addrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Joined returns the bootstrap peers the node joined through at start.
func (n *Node) Joined() []peer.ID { return append([]peer.ID(nil), n.joined...) }

// BridgeURL returns the bridge's base URL (the script is at URL +
// bridge.PathScript), or "" without a bridge.
func (n *Node) BridgeURL() string {
	if n.bridge == nil {
		return ""
	}
	return n.bridge.url
}

// Find looks up the providers of service name and hands each verified
// record to yield as soon as it verifies, on the caller's goroutine, until
// the search ends or yield returns false; see dht.Node.Find for the paths,
// the guarantees and the errors (dht.ErrFindTimeout when the timeout ended
// it). After Close it returns ErrClosed.
func (n *Node) Find(ctx context.Context, name string, opts FindOptions, yield func(Result) bool) error {
	return errClosedOr(n.dht.Find(ctx, name, opts, yield))
}

// Watch streams the live provider set of service name: an upsert for each
// provider the node's registries serve now, then one event per change
// (upsert; remove with a reason: withdrawn, expired, unhealthy,
// deregistered), until ctx ends or the node closes, when the channel is
// closed. Records are verified like a find's; see dht.Node.Watch for the
// merging of several registries, resubscription and the DHT fallback.
// While it runs, Find answers for the service from the watched set at once.
// After Close it returns ErrClosed.
func (n *Node) Watch(ctx context.Context, name string) (<-chan Event, error) {
	ch, err := n.dht.Watch(ctx, name)
	return ch, errClosedOr(err)
}

// Event is one change to a watched service's provider set.
type Event = dht.Event

// What an Event reports: a provider joined the set or its record changed
// (EventUpsert), or it left the set (EventRemove, with a Reason).
const (
	EventUpsert = dht.EventUpsert
	EventRemove = dht.EventRemove
)

// FindOptions bounds a Find: a limit, a timeout, the DHT path only.
type FindOptions = dht.FindOptions

// Result is one verified provider found, with the path that brought it.
type Result = dht.Result

// Spec describes a service to provide: name, metadata, TTL, addresses.
type Spec = dht.Spec

// errClosedOr returns ErrClosed when err comes from the node closing.
func errClosedOr(err error) error {
	if errors.Is(err, dht.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}
