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
// health verdict turning, a record it holds expiring). A walk is sorted
// from the index, in memory; it reads an envelope from the datastore only
// when a page first reaches it, so a page costs at most about as many
// reads as it carries records, whether its service's walk was kept or not.
const (
	walkCacheSize  = 16
	walkCacheBytes = 32 << 20
)

// walk is the kept, sorted copy of one service's served records. Its
// envs and read are filled as pages reach them, under the store's lock.
type walk struct {
	epoch       uint64
	from, until time.Time
	ids         []peer.ID        // sorted
	unverified  map[peer.ID]bool // loaded at start-up, not checked yet: verified when read
	envs        [][]byte         // envs[i] is ids[i]'s envelope once read; nil: not read, or not served (failed verification, gone)
	read        []bool           // envs[i] was read
	bytes       int              // of envs, counted in the store's walkBytes while kept
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
	w := s.walkOf(c, now)
	i, found := slices.BinarySearch(w.ids, o.After)
	if found {
		i++
	}
	limit := max(o.Limit, 1)
	pg := Page{Records: make([][]byte, 0, min(limit, len(w.ids)-i))}
	size := 0
	s.mu.Lock()
	for ; i < len(w.ids) && len(pg.Records) < limit; i++ {
		if !w.read[i] {
			s.mu.Unlock()
			s.readWalk(ctx, c, w, i)
			s.mu.Lock()
		}
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
	s.mu.Unlock()
	if i < len(w.ids) { // more follow: the last one considered is where the next page starts
		pg.Next = w.ids[i-1]
	}
	return pg
}

// walkOf returns c's walk: the one kept when it is still valid at now,
// else a fresh one sorted from the index (kept, evicting another when
// the cache is full).
func (s *Store) walkOf(c cid.Cid, now time.Time) *walk {
	epoch := s.health.Epoch()
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.walks[c]; w != nil && w.epoch == epoch && !now.Before(w.from) && now.Before(w.until) {
		return w
	}
	w := &walk{epoch: epoch, from: now, until: now.Add(time.Hour), unverified: make(map[peer.ID]bool)}
	for p, h := range s.bySvc[c] {
		switch {
		case !now.Before(h.expires), h.withdrawn, !s.health.Serves(p):
		default:
			w.ids = append(w.ids, p)
			if h.expires.Before(w.until) {
				w.until = h.expires
			}
			if !h.verified {
				w.unverified[p] = true
			}
		}
	}
	slices.Sort(w.ids)
	w.envs, w.read = make([][]byte, len(w.ids)), make([]bool, len(w.ids))
	s.dropWalkLocked(c)
	s.trimWalksLocked(c, 1)
	s.walks[c] = w
	return w
}

// readWalk reads the envelope of w's i-th provider from the datastore
// (verifying it, if it was loaded unverified) into w, unless another page
// did already: nil when it is not served (gone since, or failed
// verification). s.mu must not be held.
func (s *Store) readWalk(ctx context.Context, c cid.Cid, w *walk, i int) {
	p := w.ids[i]
	var env []byte
	if b, err := s.ds.Get(ctx, dsKey(record.Key(c, p))); err == nil { // else deleted since: gone
		env = envOf(b)
		if env != nil && w.unverified[p] && !s.verified(c, p, env) {
			env = nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.read[i] {
		return
	}
	w.envs[i], w.read[i] = env, true
	w.bytes += len(env)
	if s.walks[c] == w {
		s.walkBytes += len(env)
		s.trimWalksLocked(c, 0)
	}
}

// trimWalksLocked drops other services' walks than keep until at most
// walkCacheSize-room are kept and their envelopes fit walkCacheBytes.
// s.mu must be held.
func (s *Store) trimWalksLocked(keep cid.Cid, room int) {
	for k := range s.walks {
		if len(s.walks) <= walkCacheSize-room && s.walkBytes <= walkCacheBytes {
			return
		}
		if k != keep {
			s.dropWalkLocked(k)
		}
	}
}

// dropWalkLocked forgets c's walk. s.mu must be held.
func (s *Store) dropWalkLocked(c cid.Cid) {
	if w := s.walks[c]; w != nil {
		s.walkBytes -= w.bytes
		delete(s.walks, c)
	}
}

// forgetLocked drops what the store keeps of c's answers (its kept list
// and walk) as one of its records changes. s.mu must be held.
func (s *Store) forgetLocked(c cid.Cid) {
	delete(s.lists, c)
	s.dropWalkLocked(c)
}
