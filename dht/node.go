package dht

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

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

	store    *store // verified records held, this node's own included
	rejected *rejections

	mu      sync.Mutex // serialises sealing, so seqs only grow
	lastSeq uint64

	regMu      sync.Mutex
	registries map[peer.ID]bool // registries this node uses for the fast path
	limiter    *peerLimiter     // registry-protocol requests per remote peer

	// askWalk decides which peers met in a find's provider walk are asked
	// for records; nil asks every one. A test seam (export_test.go).
	askWalk func(p peer.ID, c cid.Cid) bool
}

// New starts a DHT node for cfg.Network on h. The caller still owns h and
// closes it after the Node.
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
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v := record.Validator{Network: cfg.Network, Now: cfg.Now}
	rej := newRejections()
	opts := append([]kaddht.Option{}, cfg.KadOptions...)
	opts = append(opts,
		kaddht.ProtocolPrefix(protocol.ID("/netget/"+cfg.Network)),
		kaddht.Validator(kadValidator(v, rej)),
		kaddht.Mode(cfg.Mode.kad()),
	)
	kad, err := kaddht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start dht: %w", err)
	}
	messenger, err := kadpb.NewProtocolMessenger(kad.MessageSender())
	if err != nil {
		kad.Close()
		return nil, fmt.Errorf("start dht: %w", err)
	}
	n := &Node{
		messenger:  messenger,
		cfg:        cfg,
		host:       h,
		key:        key,
		kad:        kad,
		validator:  v,
		log:        log.With("network", cfg.Network),
		proto:      RegistryProtocol(cfg.Network),
		store:      newStore(),
		registries: make(map[peer.ID]bool),
		limiter:    newPeerLimiter(cfg.RequestRate, cfg.RequestBurst),
		rejected:   rej,
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(n.proto, n.handleStream)
	return n, nil
}

// Close stops background work and the DHT. It is idempotent and does not
// close the host.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.host.RemoveStreamHandler(n.proto)
		n.cancel()
		n.wg.Wait()
		err = n.kad.Close()
	})
	return err
}

// Host returns the host the node runs on.
func (n *Node) Host() host.Host { return n.host }

// Network returns the network the node is on.
func (n *Node) Network() string { return n.cfg.Network }

// Kad returns the underlying kad-dht, for benchmarks and diagnostics that
// compare netget with the raw DHT. Writing through it bypasses nothing: the
// netget validator still runs on every put.
func (n *Node) Kad() *kaddht.IpfsDHT { return n.kad }

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

// Settle waits until the background work Publish started (the DHT
// value-store copies of published records) has finished, or ctx ends.
func (n *Node) Settle(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		n.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
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

// ownFor returns this node's latest record for service c, if any.
func (n *Node) ownFor(c cid.Cid) (held, bool) { return n.store.get(c, n.host.ID()) }

// Rejections returns how many records this node refused, by reason (a
// record sentinel error such as record.ErrExpired), on every path: DHT
// writes to it, DHT reads, registry-protocol fetches and Put.
func (n *Node) Rejections() map[error]uint64 { return n.rejected.snapshot() }
