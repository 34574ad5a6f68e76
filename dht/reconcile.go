package dht

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// snapshotMaxAge is how long a snapshot of the store serves the digests
// and pulls of sync peers before it is rebuilt: a joining registry's
// hundreds of pulls share one.
const snapshotMaxAge = time.Second

// applyChunk is how many records one worker of a round verifies and stores
// in a row.
const applyChunk = 32

// snapshot is the store's records as sync sees them: sorted by key hash,
// with their digest.
type snapshot struct {
	at      time.Time
	gen     uint64 // the store's generation it was taken at
	entries []snapEntry
	digest  registry.Digest
}

type snapEntry struct {
	key uint64 // registry.KeyHash of the record's DHT key
	c   cid.Cid
	p   peer.ID
	seq uint64
}

// current returns a snapshot of the store no older than maxAge, or the
// last one if the store has not changed since.
func (s *syncer) current(maxAge time.Duration) *snapshot {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	now := time.Now()
	gen := s.n.store.Generation()
	if s.snap != nil && (s.snap.gen == gen || now.Sub(s.snap.at) < maxAge) {
		return s.snap
	}
	ks := s.n.store.Versions(s.n.now())
	snap := &snapshot{at: now, gen: gen, entries: make([]snapEntry, len(ks))}
	for i, k := range ks {
		e := snapEntry{key: registry.KeyHash(k.C.Bytes(), []byte(k.P)), c: k.C, p: k.P, seq: k.Seq}
		snap.entries[i] = e
		snap.digest.Add(registry.Entry{Key: e.key, Seq: e.seq})
	}
	slices.SortFunc(snap.entries, func(a, b snapEntry) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	s.snap = snap
	return snap
}

// search returns the index of the first entry whose key hash is at least k.
func (sn *snapshot) search(k uint64) int {
	return sort.Search(len(sn.entries), func(i int) bool { return sn.entries[i].key >= k })
}

// replica is the node's side of the sync protocol (registry.Replica).
type replica struct{ s *syncer }

// Digest implements registry.Replica.
func (r replica) Digest() *registry.Digest {
	d := r.s.current(snapshotMaxAge).digest
	return &d
}

// Pull implements registry.Replica: envelopes read from the datastore, in
// key-hash order, within budget.
func (r replica) Pull(from, last uint64, have []registry.Entry, budget int) ([][]byte, uint64, bool) {
	snap := r.s.current(snapshotMaxAge)
	known := make(map[uint64]uint64, len(have))
	for _, e := range have {
		known[e.Key] = e.Seq
	}
	var out [][]byte
	size := 0
	for _, e := range snap.entries[snap.search(from):] {
		if e.key > last {
			break
		}
		if seq, ok := known[e.key]; ok && seq >= e.seq {
			continue
		}
		env, ok := r.s.n.store.Envelope(r.s.n.ctx, e.c, e.p)
		if !ok {
			continue // gone since the snapshot
		}
		if size+len(env) > budget && len(out) > 0 {
			return out, e.key, true
		}
		out = append(out, env)
		size += len(env)
	}
	return out, 0, false
}

// Forwarded implements registry.Replica: each record is verified and
// stored as a DHT write is (no source: the quotas per key, per service and
// in bytes bound it), and one new here is forwarded on to every other sync
// peer.
func (r replica) Forwarded(p peer.ID, envs [][]byte) int {
	a := r.s.newApplier(p, true)
	a.add(envs)
	a.wait()
	return int(a.refused.Load())
}

// applier verifies and stores the records sync brings, several workers at
// once (a synced datastore commits their writes together), with the
// caller waiting when they are all busy.
type applier struct {
	s       *syncer
	from    peer.ID
	forward bool // pass new records on to the other sync peers
	sem     chan struct{}
	wg      sync.WaitGroup
	taken   atomic.Uint64
	refused atomic.Uint64
}

func (s *syncer) newApplier(from peer.ID, forward bool) *applier {
	return &applier{s: s, from: from, forward: forward, sem: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
}

// add hands envs to the workers, waiting while they are all busy.
func (a *applier) add(envs [][]byte) {
	for len(envs) > 0 {
		chunk := envs[:min(applyChunk, len(envs))]
		envs = envs[len(chunk):]
		a.sem <- struct{}{}
		a.wg.Go(func() {
			defer func() { <-a.sem }()
			for _, env := range chunk {
				a.one(env)
			}
		})
	}
}

// one verifies and stores env through the one write path (acceptFresh).
func (a *applier) one(env []byte) {
	n := a.s.n
	_, _, fresh, err := n.acceptFresh(n.ctx, env, store.Source{}, "")
	switch {
	case errors.Is(err, record.ErrOlderSeq): // not newer: it stops here
	case err != nil:
		a.refused.Add(1)
	case fresh:
		a.taken.Add(1)
		if o := n.syncObserver; o != nil {
			o(env)
		}
		if a.forward {
			a.s.forward(env, a.from)
		}
	}
}

// wait waits for every record added so far.
func (a *applier) wait() {
	a.wg.Wait()
	if a.forward {
		a.s.received.Add(a.taken.Load())
	} else {
		a.s.fetched.Add(a.taken.Load())
	}
	a.s.refused.Add(a.refused.Load())
}

// budget is what is left of one round's Sync.MaxRecords and MaxBytes.
type budget struct {
	records int
	bytes   int64
}

func (b *budget) spent() bool { return b.records <= 0 || b.bytes <= 0 }

// round reconciles with every sync peer in turn, within one budget: the
// first brings most of what this node lacks, the others only their own
// differences.
func (s *syncer) round() {
	peers := s.peerList()
	if len(peers) == 0 {
		return
	}
	b := &budget{records: s.cfg.MaxRecords, bytes: s.cfg.MaxBytes}
	fetched0 := s.fetched.Load()
	var errs []error
	var read int64
	for _, p := range peers {
		before := b.bytes
		if err := s.reconcile(s.n.ctx, p, b); err != nil && s.n.ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
		read += before - b.bytes
		if b.spent() || s.n.ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	s.rounds.Add(1)
	s.mu.Lock()
	s.last.LastRound, s.last.LastError = time.Now(), ""
	if err != nil {
		s.last.LastError = err.Error()
	}
	s.last.LastFetched, s.last.LastBytes = int(s.fetched.Load()-fetched0), read
	s.mu.Unlock()
	switch {
	case err != nil:
		s.n.log.Warn("sync round", "peers", len(peers), "fetched", s.last.LastFetched, "err", err)
	default:
		s.n.log.Debug("sync round", "peers", len(peers), "fetched", s.last.LastFetched, "bytes", read)
	}
}

// reconcile compares digests with p and pulls the key ranges that differ.
func (s *syncer) reconcile(ctx context.Context, p peer.ID, b *budget) error {
	theirs, n, err := s.client.Digest(ctx, p)
	b.bytes -= int64(n)
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	mine := s.current(0)
	a := s.newApplier(p, false)
	defer a.wait()
	differs := func(bk int) bool { return theirs[bk] != mine.digest[bk] && theirs[bk].Count > 0 }
	for bk := 0; bk < registry.Buckets; bk++ {
		if !differs(bk) {
			continue
		}
		// A run of buckets that differ is pulled as one range: an empty
		// registry pulls the whole key space in full-sized responses.
		end := bk
		for end+1 < registry.Buckets && differs(end+1) {
			end++
		}
		from, _ := registry.BucketRange(bk)
		_, last := registry.BucketRange(end)
		if err := s.pullRange(ctx, p, mine, from, last, a, b); err != nil {
			return err
		}
		if b.spent() {
			return nil
		}
		bk = end
	}
	return nil
}

// pullRange pulls from p what it holds in key-hash range [from, last] that
// mine lacks or holds older, in requests naming at most registry.MaxHave
// of mine each.
func (s *syncer) pullRange(ctx context.Context, p peer.ID, mine *snapshot, from, last uint64, a *applier, b *budget) error {
	i := mine.search(from)
	for !b.spent() {
		j := i
		for j < len(mine.entries) && mine.entries[j].key <= last && j-i < registry.MaxHave {
			j++
		}
		reqLast := last
		if j < len(mine.entries) && mine.entries[j].key <= last && mine.entries[j].key > from {
			reqLast = mine.entries[j].key - 1 // the rest of mine goes in the next request
		}
		have := make([]registry.Entry, 0, j-i)
		for _, e := range mine.entries[i:j] {
			if e.key <= reqLast {
				have = append(have, registry.Entry{Key: e.key, Seq: e.seq})
			}
		}
		got, err := s.client.Pull(ctx, p, from, reqLast, have)
		b.bytes -= int64(got.Bytes)
		if err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		b.records -= len(got.Records)
		a.add(got.Records)
		switch {
		case got.More:
			from = got.Next
			i = mine.search(from)
		case reqLast >= last:
			return nil
		default:
			from = reqLast + 1
			i = mine.search(from)
		}
	}
	return nil
}
