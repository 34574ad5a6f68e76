package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	kadrecord "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// DefaultTTL is a provided record's lifetime when Spec.TTL is zero.
const DefaultTTL = time.Hour

// MinRepublishInterval is the shortest time between two publications of
// one record by Provide, whatever its TTL.
const MinRepublishInterval = 500 * time.Millisecond

// spreadTimeout bounds a publication's background work: registry pushes and
// the DHT walk that places the provider record and the signed record.
const spreadTimeout = 30 * time.Second

// Spec describes a service this node provides.
type Spec struct {
	// Name is the service name, [A-Za-z0-9._-]{1,64}.
	Name string
	// Meta is free-form metadata (≤ 32 pairs) carried in the signed record.
	Meta map[string]string
	// TTL is the record's lifetime (default DefaultTTL; record.ValidateTTL:
	// 1s to 24h). The record is republished at half its TTL, and never
	// more often than MinRepublishInterval.
	TTL time.Duration
	// Addrs overrides the addresses in the record; default: the host's.
	Addrs []ma.Multiaddr
}

func (s Spec) ttl() time.Duration {
	if s.TTL == 0 {
		return DefaultTTL
	}
	return s.TTL
}

// Publish seals a fresh record for spec and publishes it once. It returns
// when the peers closest to the service hold the signed record and this node
// as a provider (one DHT walk); the copy in the DHT value store, a fallback
// for finders, is put in the background. It waits for Ready first.
func (n *Node) Publish(ctx context.Context, spec Spec) (*record.Service, error) {
	if err := record.ValidateTTL(spec.ttl()); err != nil {
		return nil, fmt.Errorf("publish %s: %w", spec.Name, err)
	}
	if err := record.ValidateMeta(spec.Meta); err != nil {
		return nil, fmt.Errorf("publish %s: %w", spec.Name, err)
	}
	c, err := record.ServiceCID(n.cfg.Network, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	now := n.now()
	svc := &record.Service{
		Name:      spec.Name,
		Meta:      spec.Meta,
		Addrs:     n.recordAddrs(spec.Addrs),
		IssuedAt:  now,
		ExpiresAt: now.Add(spec.ttl()),
	}
	return n.publish(ctx, c, svc, true)
}

// Withdraw publishes a signed tombstone for name: a record with a higher seq
// and Withdrawn set, which replaces this node's record wherever it lands.
// The tombstone lives as long as the record it replaces (record.MaxTTL when
// this process never published one, as for `netget-peer unprovide`).
func (n *Node) Withdraw(ctx context.Context, name string) (*record.Service, error) {
	c, err := record.ServiceCID(n.cfg.Network, name)
	if err != nil {
		return nil, fmt.Errorf("withdraw: %w", err)
	}
	// The tombstone must outlive the record it replaces: that record's
	// expiry when this node published it, else the longest a record lives.
	now := n.now()
	svc := &record.Service{Name: name, Withdrawn: true, IssuedAt: now, ExpiresAt: now.Add(record.MaxTTL)}
	if prev, ok := n.ownExpires(c); ok {
		svc.ExpiresAt = now.Add(time.Minute)
		if prev.After(svc.ExpiresAt) {
			svc.ExpiresAt = prev
		}
	}
	return n.publish(ctx, c, svc, false)
}

// publish fills in the fields every record shares, seals svc, keeps it as
// this node's record for c and spreads it. A live record is published once
// it is findable: as soon as one registry holds it (the fast path), else
// once the DHT walk has placed it; the rest goes on in the background
// (Settle waits for it). A tombstone, often the last thing a node sends
// before it exits, waits for every copy.
func (n *Node) publish(ctx context.Context, c cid.Cid, svc *record.Service, provide bool) (*record.Service, error) {
	if err := n.Ready(ctx); err != nil {
		return nil, fmt.Errorf("publish %s: %w", svc.Name, err)
	}
	svc.Version = record.Version
	svc.Network = n.cfg.Network
	svc.Peer = n.host.ID()
	env, err := n.sealOwn(ctx, c, svc)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", svc.Name, err)
	}
	sp := n.spread(c, env, provide)
	if provide {
		err = sp.findable(ctx)
	} else {
		err = sp.wait(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", svc.Name, err)
	}
	n.log.Debug("published", "service", svc.Name, "seq", svc.Seq, "withdrawn", svc.Withdrawn)
	return svc, nil
}

// spreading is one record on its way out.
type spreading struct {
	registries int
	accepted   chan bool  // one value per registry push: did it take the record
	dht        chan error // the DHT walk's outcome, once
	done       chan struct{}
}

// findable waits until one registry accepted the record, or, if none
// did, for the DHT walk.
func (sp *spreading) findable(ctx context.Context) error {
	for range sp.registries {
		select {
		case ok := <-sp.accepted:
			if ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case err := <-sp.dht:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for every copy: registries, DHT walk and value store.
func (sp *spreading) wait(ctx context.Context) error {
	select {
	case <-sp.done:
		return <-sp.dht
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spread sends a sealed record out, as the node's background work (Settle
// waits for it), bounded by spreadTimeout: pushed to every connected
// registry (the fast path), and, once they have answered (or after the
// hedge, Node.hedge), one DHT walk to the peers closest to c, each given the
// signed record and, when provide is set, a provider record (announce).
// The signed record lands in each peer's DHT value store, so GET_VALUE
// finds it there too: no second walk is needed to put it.
func (n *Node) spread(c cid.Cid, env []byte, provide bool) *spreading {
	regs := n.fastPath()
	sp := &spreading{registries: len(regs), accepted: make(chan bool, len(regs)),
		dht: make(chan error, 1), done: make(chan struct{})}
	bctx, cancel := context.WithTimeout(n.ctx, spreadTimeout)
	var pushes sync.WaitGroup
	for _, p := range regs {
		pushes.Go(func() {
			pctx, cancel := context.WithTimeout(bctx, n.cfg.FetchTimeout)
			defer cancel()
			err := n.client.Push(pctx, p, env)
			if err != nil && n.ctx.Err() == nil {
				n.log.Warn("registry did not take the record", "registry", p, "err", err)
			}
			sp.accepted <- err == nil
		})
	}
	n.wg.Add(1)
	n.bg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.bg.Done()
		defer cancel()
		// The walk would only compete with the registries' round trip.
		if h := n.hedge(); h > 0 {
			waitFor(bctx, &pushes, h)
		}
		err := n.announce(bctx, c, env, provide)
		pushes.Wait()
		sp.dht <- err
		close(sp.done)
	}()
	return sp
}

// announce walks the DHT once to the peers closest to service c and gives
// each, concurrently, the signed record and, when provide is set, a
// provider record (kad ADD_PROVIDER). This is kad-dht's classic provide
// built from its exported parts, so that one walk places both: a finder's
// provider walk meets the same peers and gets the signed record from them
// without dialling the provider. Peers that speak the registry protocol
// get the record by put (verified once, indexed); others by kad PUT_VALUE.
func (n *Node) announce(ctx context.Context, c cid.Cid, env []byte, provide bool) error {
	mh := c.Hash()
	self := peer.AddrInfo{ID: n.host.ID(), Addrs: n.kad.FilteredAddrs()}
	if provide {
		if err := n.kad.ProviderStore().AddProvider(ctx, mh, self); err != nil {
			return fmt.Errorf("provide locally: %w", err)
		}
	}
	peers, err := n.kad.GetClosestPeers(ctx, string(mh))
	if err != nil {
		return fmt.Errorf("provide: %w", err)
	}
	key := record.Key(c, self.ID)
	var wg sync.WaitGroup
	var stored atomic.Int32
	for _, p := range peers {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, n.cfg.FetchTimeout)
			defer cancel()
			if provide {
				if err := n.messenger.PutProviderAddrs(pctx, p, mh, self); err != nil {
					n.log.Debug("provider record not stored", "peer", p, "err", err)
				}
			}
			var err error
			if ok, _ := n.host.Peerstore().SupportsProtocols(p, n.proto); len(ok) > 0 {
				err = n.client.Push(pctx, p, env)
			} else {
				err = n.messenger.PutValue(pctx, p, kadrecord.MakePutRecord(key, env))
			}
			if err != nil {
				n.log.Debug("signed record not stored", "peer", p, "err", err)
				return
			}
			stored.Add(1)
		})
	}
	wg.Wait()
	if stored.Load() == 0 {
		return fmt.Errorf("%w: %d peers closest to the service refused it or did not answer", ErrNotPublished, len(peers))
	}
	return nil
}

// sealOwn assigns svc the next seq, seals it and stores it as this node's
// latest record for c, all under one lock so seqs never go backwards.
func (n *Node) sealOwn(ctx context.Context, c cid.Cid, svc *record.Service) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// Seqs are microseconds since the epoch (below 2^53, so JavaScript
	// reads them exactly) and strictly increase within this process; a
	// restarted node continues above what it published before.
	seq := uint64(svc.IssuedAt.UnixMicro())
	if seq <= n.lastSeq {
		seq = n.lastSeq + 1
	}
	svc.Seq = seq
	env, err := record.Seal(svc, n.key)
	if err != nil {
		return nil, err
	}
	if err := n.store.Add(ctx, c, svc, env, store.Source{}); err != nil {
		return nil, err
	}
	n.lastSeq = seq
	return env, nil
}

// Put verifies a record sealed by any peer, stores it in this node's index
// and puts it in the DHT value store. A record whose seq is not above the
// one held for its peer is refused with record.ErrOlderSeq.
func (n *Node) Put(ctx context.Context, env []byte) (*record.Service, error) {
	svc, c, fresh, err := n.acceptFresh(ctx, env, store.Source{}, "")
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	if fresh {
		n.sync.forward(env, "")
	}
	if err := n.putValue(ctx, c, svc, env); err != nil {
		return nil, fmt.Errorf("put %s: %w", svc.Name, err)
	}
	return svc, nil
}

// accept is the write path of records that arrive without a DHT key, for
// Put and the registry protocol's put alike: verify as a DHT write does,
// then store (Store.Add, which a DHT PUT_VALUE reaches too). Every offer is
// counted, by reason when refused. src is who delivered it (StoreLimits
// .PerSource); the zero source is none.
func (n *Node) accept(ctx context.Context, env []byte, src store.Source) (*record.Service, cid.Cid, error) {
	svc, c, _, err := n.acceptFresh(ctx, env, src, "")
	return svc, c, err
}

// acceptFresh is accept that also says whether the record was new to the
// store (not the very envelope it held already): what registry sync
// forwards. from is the peer whose registry-protocol put delivered env on
// its own connection ("" for every other path): a put of from's own record
// passes from's health check (verdicts.vouch).
func (n *Node) acceptFresh(ctx context.Context, env []byte, src store.Source, from peer.ID) (*record.Service, cid.Cid, bool, error) {
	svc, err := n.validator.Open(env)
	var c cid.Cid
	if err == nil {
		c, err = record.ServiceCID(svc.Network, svc.Name)
	}
	fresh := false
	if err == nil {
		fresh = !n.store.Holds(c, svc.Peer, env)
		if from != "" && from == svc.Peer {
			done := n.health.vouch(from)
			err = n.store.Add(ctx, c, svc, env, src)
			if done(err == nil) {
				n.log.Info("provider healthy; serving its records", "provider", from, "by", "its own put")
				n.watchHub.peerChanged(from) // its other services' watchers
			}
		} else {
			err = n.store.Add(ctx, c, svc, env, src)
		}
	}
	n.metrics.record(err)
	if err != nil {
		return nil, cid.Undef, false, err
	}
	return svc, c, fresh, nil
}

// putValue puts a verified record into the DHT value store.
func (n *Node) putValue(ctx context.Context, c cid.Cid, svc *record.Service, env []byte) error {
	err := n.kad.PutValue(ctx, record.Key(c, svc.Peer), env)
	if errors.Is(err, records.ErrOldRecord) {
		err = record.ErrOlderSeq
	}
	if err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	return nil
}

// recordAddrs returns the addresses to put in a record: override, or the
// host's listen addresses, capped at record.MaxAddrs.
func (n *Node) recordAddrs(override []ma.Multiaddr) []string {
	addrs := override
	if len(addrs) == 0 {
		addrs = n.host.Addrs()
	}
	out := make([]string, 0, min(len(addrs), record.MaxAddrs))
	for _, a := range addrs {
		if len(out) == record.MaxAddrs {
			break
		}
		out = append(out, a.String())
	}
	return out
}

// Provide publishes spec and republishes it at half its TTL until ctx ends.
// published, if not nil, is called after every attempt. A failed first
// publish is returned; later failures are retried with backoff, since the
// record already out there is valid until it expires. Provide returns nil
// when ctx ends; withdrawing is the caller's choice (Withdraw).
func (n *Node) Provide(ctx context.Context, spec Spec, published func(*record.Service, error)) error {
	report := func(s *record.Service, err error) {
		if published != nil {
			published(s, err)
		}
	}
	svc, err := n.Publish(ctx, spec)
	report(svc, err)
	if err != nil {
		return err
	}
	every := max(spec.ttl()/2, MinRepublishInterval)
	next, retry := time.Now().Add(every), time.Duration(0)
	moved, stop := n.addrsMoved(spec)
	defer stop()
	last := svc.Addrs
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-n.ctx.Done():
			t.Stop()
			return ErrClosed
		case <-moved:
			t.Stop()
			// The node's addresses changed (a relay slot gained or lost):
			// republish soon, once they settle, if the record's differ.
			if soon := time.Now().Add(MinRepublishInterval); soon.Before(next) &&
				!slices.Equal(last, n.recordAddrs(spec.Addrs)) {
				next = soon
			}
			continue
		case <-t.C:
		}
		svc, err := n.Publish(ctx, spec)
		if ctx.Err() != nil {
			return nil
		}
		report(svc, err)
		if err != nil {
			n.log.Warn("republish failed; retrying", "service", spec.Name, "err", err)
			retry = min(max(2*retry, time.Second), every)
			next = time.Now().Add(retry)
			continue
		}
		next, retry, last = time.Now().Add(every), 0, svc.Addrs
	}
}

// addrsMoved returns a channel that receives when the host's addresses
// change, for a spec that carries the host's own (no Spec.Addrs), and
// the function that stops it; nil (never receiving) otherwise.
func (n *Node) addrsMoved(spec Spec) (<-chan event.EvtLocalAddressesUpdated, func()) {
	if len(spec.Addrs) > 0 {
		return nil, func() {}
	}
	sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return nil, func() {}
	}
	out := make(chan event.EvtLocalAddressesUpdated, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.Out() {
			select {
			case out <- e.(event.EvtLocalAddressesUpdated):
			default: // one is pending: the loop compares addresses then
			}
		}
	}()
	return out, func() { sub.Close(); <-done }
}
