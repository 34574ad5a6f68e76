package store

import (
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Lists kept: a registry answers the same list of a hot service many
// times a second, and computing one costs a sort of every provider the
// service has and a datastore read per record returned. The store keeps
// the answer of up to listCacheSize services, of at most listCacheMax
// records each (so at most listCacheSize × listCacheMax envelopes, 8 MiB
// at the 4 KiB envelope bound), and drops a service's answer when any of
// its records changes in the index, when a health verdict turns
// (Verdicts.Epoch) and once a record it considered expires.
const (
	listCacheSize = 64
	listCacheMax  = 32
)

// listed is one kept answer of List. The store holds it under s.mu from
// the moment List takes its snapshot of the index; ready once filled.
type listed struct {
	o           ListOpts
	epoch       uint64    // Verdicts.Epoch when computed
	from, until time.Time // valid for now in [from, until): the earliest expiry it considered
	envs        [][]byte
	ready       bool
}

// cachedList returns the kept answer of List for c and o at now, if it is
// still what List would compute, and the verdicts' epoch to compute a new
// one with otherwise.
func (s *Store) cachedList(c cid.Cid, now time.Time, o ListOpts) ([][]byte, uint64, bool) {
	epoch := s.health.Epoch()
	if o.Limit > listCacheMax {
		return nil, epoch, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lists[c]
	if l == nil || !l.ready || l.o != o || l.epoch != epoch || now.Before(l.from) || !now.Before(l.until) {
		return nil, epoch, false
	}
	return slices.Clone(l.envs), epoch, true
}

// keepListLocked files the answer List is about to compute for c, valid
// from now until until, evicting another service's when full. It returns
// nil when the answer is not kept. s.mu must be held.
func (s *Store) keepListLocked(c cid.Cid, o ListOpts, epoch uint64, now, until time.Time) *listed {
	if o.Limit > listCacheMax {
		return nil
	}
	if _, ok := s.lists[c]; !ok && len(s.lists) >= listCacheSize {
		for k := range s.lists {
			delete(s.lists, k)
			break
		}
	}
	l := &listed{o: o, epoch: epoch, from: now, until: until}
	s.lists[c] = l
	return l
}

// fillList completes l, the kept answer for c, with envs, unless the
// index changed for c since List took its snapshot.
func (s *Store) fillList(c cid.Cid, l *listed, envs [][]byte) {
	if l == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists[c] == l {
		l.envs, l.ready = slices.Clone(envs), true
	}
}

// firstK returns the k first of ps in the order cmp gives (a total order),
// sorted, reordering ps: the same as sorting ps and keeping k, with about
// len(ps) + k·log(len(ps)/k)·log(k) comparisons instead of
// len(ps)·log(len(ps)); a list wants 32 of a hot service's 1,000 and cmp
// asks the health verdicts each time.
func firstK(ps []peer.ID, k int, cmp func(a, b peer.ID) int) []peer.ID {
	if k <= 0 {
		return ps[:0]
	}
	if len(ps) <= k {
		slices.SortFunc(ps, cmp)
		return ps
	}
	h := ps[:k] // a max-heap of the k first seen so far: h[0] is the last of them
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i, cmp)
	}
	for _, p := range ps[k:] {
		if cmp(p, h[0]) < 0 {
			h[0] = p
			siftDown(h, 0, cmp)
		}
	}
	slices.SortFunc(h, cmp)
	return h
}

// siftDown restores the max-heap h (by cmp) below i.
func siftDown(h []peer.ID, i int, cmp func(a, b peer.ID) int) {
	for {
		largest := i
		if l := 2*i + 1; l < len(h) && cmp(h[l], h[largest]) > 0 {
			largest = l
		}
		if r := 2*i + 2; r < len(h) && cmp(h[r], h[largest]) > 0 {
			largest = r
		}
		if largest == i {
			return
		}
		h[i], h[largest] = h[largest], h[i]
		i = largest
	}
}
