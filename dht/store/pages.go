package store

import (
	"context"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
)

// Paged lists. A list of a whole service walks its records in pages, in
// the order of the providers' binary peer IDs, each page asked after the
// last provider the previous one considered (keyset paging): a provider
// whose record stays from one page to the next is returned exactly once,
// whatever else joins or leaves in between, and no page depends on a
// snapshot the store must keep for the walker. To answer pages of a hot
// service without reading the datastore each time, the store keeps one
// sorted copy of a service's served records (a walk) for up to
// walkCacheSize services and walkCacheBytes of envelopes in all, dropped
// with the service's kept list (any change to one of its records, a
// health verdict turning, a record it holds expiring).
const (
	walkCacheSize  = 16
	walkCacheBytes = 32 << 20
)

// walk is the kept, sorted copy of one service's served records.
type walk struct {
	epoch       uint64
	from, until time.Time
	ids         []peer.ID // sorted
	envs        [][]byte  // envs[i] is ids[i]'s envelope; nil: not served (failed verification, gone)
	bytes       int
	ready       bool
}

// PageOpts selects one page of Store.Page.
type PageOpts struct {
	// After is the provider the page starts after ("": the first page).
	After peer.ID
	// Limit is the most records the page carries (at least 1).
	Limit int
	// Bytes is the most envelope bytes the page carries (0: no bound);
	// a page always carries at least one record if any follows.
	Bytes int
}

// Page is one page of a service's served records.
type Page struct {
	// Records are the signed envelopes, in peer-ID order.
	Records [][]byte
	// Next is the provider to ask the next page after; "" when no
	// provider follows this page.
	Next peer.ID
}

// Page returns the page of service c's served records (unexpired, not
// withdrawn, of providers healthy; verified first if loaded unverified)
// whose providers come after o.After in peer-ID order.
func (s *Store) Page(ctx context.Context, c cid.Cid, now time.Time, o PageOpts) Page {
	w := s.walkOf(ctx, c, now)
	i, found := slices.BinarySearch(w.ids, o.After)
	if found {
		i++
	}
	limit := max(o.Limit, 1)
	pg := Page{Records: make([][]byte, 0, min(limit, len(w.ids)-i))}
	size := 0
	for ; i < len(w.ids) && len(pg.Records) < limit; i++ {
		env := w.envs[i]
		if env == nil {
			continue
		}
		if o.Bytes > 0 && len(pg.Records) > 0 && size+len(env) > o.Bytes {
			break
		}
		pg.Records = append(pg.Records, env)
		size += len(env)
	}
	if i < len(w.ids) { // more follow: the last one considered is where the next page starts
		pg.Next = w.ids[i-1]
	}
	return pg
}

// walkOf returns c's walk: the one kept when it is still valid at now,
// else a fresh one, read from the datastore (and kept when it fits).
func (s *Store) walkOf(ctx context.Context, c cid.Cid, now time.Time) *walk {
	epoch := s.health.Epoch()
	s.mu.Lock()
	if w := s.walks[c]; w != nil && w.ready && w.epoch == epoch && !now.Before(w.from) && now.Before(w.until) {
		s.mu.Unlock()
		return w
	}
	w := &walk{epoch: epoch, from: now, until: now.Add(time.Hour)}
	unverified := make(map[peer.ID]bool)
	for p, h := range s.bySvc[c] {
		switch {
		case !now.Before(h.expires), h.withdrawn, !s.health.Serves(p):
		default:
			w.ids = append(w.ids, p)
			if h.expires.Before(w.until) {
				w.until = h.expires
			}
			if !h.verified {
				unverified[p] = true
			}
		}
	}
	s.dropWalkLocked(c)
	s.walks[c] = w
	s.mu.Unlock()
	slices.Sort(w.ids)
	w.envs = make([][]byte, len(w.ids))
	for i, p := range w.ids {
		b, err := s.ds.Get(ctx, dsKey(record.Key(c, p)))
		if err != nil {
			continue // deleted since: gone
		}
		env := envOf(b)
		if env != nil && (!unverified[p] || s.verified(c, p, env)) {
			w.envs[i] = env
			w.bytes += len(env)
		}
	}
	s.keepWalk(c, w)
	return w
}

// keepWalk marks w, c's fresh walk, ready, unless the index changed for c
// since it was taken or it does not fit the cache: then it is forgotten.
func (s *Store) keepWalk(c cid.Cid, w *walk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.walks[c] != w {
		return
	}
	if w.bytes > walkCacheBytes {
		delete(s.walks, c)
		return
	}
	for k := range s.walks {
		if len(s.walks) <= walkCacheSize && s.walkBytes+w.bytes <= walkCacheBytes {
			break
		}
		if k != c {
			s.dropWalkLocked(k)
		}
	}
	w.ready = true
	s.walkBytes += w.bytes
}

// dropWalkLocked forgets c's walk. s.mu must be held.
func (s *Store) dropWalkLocked(c cid.Cid) {
	if w := s.walks[c]; w != nil {
		if w.ready {
			s.walkBytes -= w.bytes
		}
		delete(s.walks, c)
	}
}

// forgetLocked drops what the store keeps of c's answers (its kept list
// and walk) as one of its records changes. s.mu must be held.
func (s *Store) forgetLocked(c cid.Cid) {
	delete(s.lists, c)
	s.dropWalkLocked(c)
}
