package dht

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/netget/netget-peer/record"
)

// Source says which path brought a result.
type Source string

const (
	// SourceProvider: fetched from the provider itself over the registry protocol.
	SourceProvider Source = "provider"
	// SourceDHT: fetched from the DHT value store.
	SourceDHT Source = "dht"
	// SourceLocal: this node's own record.
	SourceLocal Source = "local"
)

// Result is one verified provider of a service.
type Result struct {
	// Record is the provider's verified, unexpired, not-withdrawn record.
	Record *record.Service
	// Source is the path the record came by.
	Source Source
	// Elapsed is the time from the start of the Find to this result.
	Elapsed time.Duration
}

// FindOptions bounds a Find.
type FindOptions struct {
	// Limit stops the search after this many results; 0 means no limit.
	Limit int
	// Timeout bounds the whole search; 0 means Config.FindTimeout.
	Timeout time.Duration
}

// Find looks up the providers of service name and streams each verified
// record on the returned channel as soon as it is verified, at most once
// per peer. The channel closes when the search ends: the DHT walk finished,
// Limit was reached, the timeout passed or ctx ended. An empty, closed
// channel means nothing was found in time. Cancel ctx to stop early; the
// Node owns the search goroutines and Close waits for them.
func (n *Node) Find(ctx context.Context, name string, opts FindOptions) (<-chan Result, error) {
	c, err := record.ServiceCID(n.cfg.Network, name)
	if err != nil {
		return nil, fmt.Errorf("find: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = n.cfg.FindTimeout
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	stop := context.AfterFunc(n.ctx, cancel)
	if err := n.Ready(ctx); err != nil {
		stop()
		cancel()
		return nil, fmt.Errorf("find %s: %w", name, err)
	}
	f := &search{n: n, c: c, limit: opts.Limit, start: time.Now(), cancel: cancel,
		out: make(chan Result), seen: make(map[peer.ID]bool)}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer stop()
		defer cancel()
		defer close(f.out)
		f.run(ctx)
	}()
	return f.out, nil
}

// FindAll runs Find and collects its results.
func (n *Node) FindAll(ctx context.Context, name string, opts FindOptions) ([]Result, error) {
	ch, err := n.Find(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	var out []Result
	for r := range ch {
		out = append(out, r)
	}
	return out, nil
}

// search is one Find in flight.
type search struct {
	n      *Node
	c      cid.Cid
	limit  int
	start  time.Time
	cancel context.CancelFunc
	out    chan Result

	mu      sync.Mutex
	seen    map[peer.ID]bool // peers fetched or being fetched
	emitted int
}

func (f *search) run(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, f.n.cfg.FetchConcurrency)
	for ai := range f.n.kad.FindProvidersAsync(ctx, f.c, 0) {
		if !f.claim(ai.ID) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if s, src := f.fetch(ctx, ai); s != nil {
				f.emit(ctx, s, src)
			}
		}()
	}
	wg.Wait()
}

// claim marks p as being fetched; false if it already was.
func (f *search) claim(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[p] {
		return false
	}
	f.seen[p] = true
	return true
}

// fetch returns provider ai's verified record for the service: its own
// copy over the registry protocol first, the DHT value store if that fails.
// Withdrawn records and failures return nil.
func (f *search) fetch(ctx context.Context, ai peer.AddrInfo) (*record.Service, Source) {
	n := f.n
	log := n.log.With("service", f.c, "provider", ai.ID)
	if ai.ID == n.host.ID() {
		if r, ok := n.ownFor(f.c); ok {
			return f.accept(log, r.env, ai.ID, SourceLocal)
		}
		return nil, ""
	}
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	fctx, cancel := context.WithTimeout(ctx, n.cfg.FetchTimeout)
	defer cancel()
	envs, err := n.list(fctx, ai.ID, f.c, 1)
	if err != nil {
		log.Debug("provider fetch failed; trying the DHT", "err", err)
	}
	for _, env := range envs {
		if s, src := f.accept(log, env, ai.ID, SourceProvider); s != nil || src != "" {
			return s, src
		}
	}
	env, err := n.kad.GetValue(fctx, record.Key(f.c, ai.ID))
	if err != nil {
		log.Debug("no record in the DHT", "err", err)
		return nil, ""
	}
	return f.accept(log, env, ai.ID, SourceDHT)
}

// accept verifies env as p's record for the service. It returns the record
// and src when it is live, nil and src when it is a valid tombstone (the
// provider withdrew: stop looking), and nil, "" when it is invalid.
func (f *search) accept(log *slog.Logger, env []byte, p peer.ID, src Source) (*record.Service, Source) {
	s, err := f.n.validator.OpenKey(record.Key(f.c, p), env)
	if err != nil {
		f.n.rejected.add(err)
		log.Info("rejected record", "source", src, "err", err)
		return nil, ""
	}
	if s.Withdrawn {
		return nil, src
	}
	return s, src
}

// emit streams one result, stopping the search once Limit is reached.
func (f *search) emit(ctx context.Context, s *record.Service, src Source) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limit > 0 && f.emitted >= f.limit {
		return
	}
	select {
	case f.out <- Result{Record: s, Source: src, Elapsed: time.Since(f.start)}:
		f.emitted++
		if f.limit > 0 && f.emitted >= f.limit {
			f.cancel()
		}
	case <-ctx.Done():
	}
}
