package registry

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxLimitedPeers bounds the limiter's memory: the peers it keeps a bucket
// for at once.
const maxLimitedPeers = 4096

// evictScan is how many of the least recently used buckets the limiter
// looks at for a full one to evict when its table is full.
const evictScan = 8

// Limiter rate-limits requests per remote peer with a token bucket
// each, in a table of at most max peers. It never gives a peer a fresh
// bucket it has not earned: when the table is full it evicts only a bucket
// that has refilled completely (so forgetting it changes nothing), looking
// at the least recently used ones; if none has, the newcomer shares one
// overflow bucket with every other peer that found the table full, until
// a slot frees. An attacker cycling identities thus drains the overflow
// bucket, never its own or anyone else's.
type Limiter struct {
	rate  rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu       sync.Mutex
	peers    map[peer.ID]*list.Element // of *limitEntry
	lru      list.List                 // front: most recently used
	overflow *rate.Limiter
}

type limitEntry struct {
	id  peer.ID
	lim *rate.Limiter
}

// NewLimiter returns a Limiter granting each peer r requests a second
// with bursts of burst, for at most 4,096 peers at once.
func NewLimiter(r float64, burst int) *Limiter {
	return newLimiterSize(r, burst, maxLimitedPeers, time.Now)
}

func newLimiterSize(r float64, burst, max int, now func() time.Time) *Limiter {
	return &Limiter{
		rate: rate.Limit(r), burst: burst, max: max, now: now,
		peers:    make(map[peer.ID]*list.Element),
		overflow: rate.NewLimiter(rate.Limit(r), burst),
	}
}

// Allow reports whether p may make one more request now.
func (l *Limiter) Allow(p peer.ID) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.peers[p]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*limitEntry).lim.AllowN(now, 1)
	}
	if len(l.peers) >= l.max && !l.evictFull(now) {
		return l.overflow.AllowN(now, 1)
	}
	lim := rate.NewLimiter(l.rate, l.burst)
	l.peers[p] = l.lru.PushFront(&limitEntry{id: p, lim: lim})
	return lim.AllowN(now, 1)
}

// evictFull drops one of the least recently used buckets that is full at
// now, and reports whether it found one.
func (l *Limiter) evictFull(now time.Time) bool {
	e := l.lru.Back()
	for i := 0; i < evictScan && e != nil; i++ {
		ent := e.Value.(*limitEntry)
		if ent.lim.TokensAt(now) >= float64(l.burst) {
			l.lru.Remove(e)
			delete(l.peers, ent.id)
			return true
		}
		e = e.Prev()
	}
	return false
}

// size returns the number of peers the limiter keeps a bucket for.
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers)
}

// WaitN waits until p may spend n tokens (n at most the burst), or ctx
// ends. Peers beyond the table share the overflow bucket, as with Allow.
func (l *Limiter) WaitN(ctx context.Context, p peer.ID, n int) error {
	return l.bucket(p).WaitN(ctx, n)
}

// bucket returns p's token bucket, making one if the table has room.
func (l *Limiter) bucket(p peer.ID) *rate.Limiter {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.peers[p]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*limitEntry).lim
	}
	if len(l.peers) >= l.max && !l.evictFull(now) {
		return l.overflow
	}
	lim := rate.NewLimiter(l.rate, l.burst)
	l.peers[p] = l.lru.PushFront(&limitEntry{id: p, lim: lim})
	return lim
}
