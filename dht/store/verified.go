package dht

import (
	"sync"

	"github.com/netget/netget-peer/record"
)

// verifiedCacheSize is how many verified records a node remembers, by the
// SHA-256 of their envelope, so that the same bytes are not verified twice:
// a record a node was given (and verified) is served from its own index to
// its own finds, every holder of a record returns the same bytes, and finds
// repeat. The time-bound checks run on every use (record.Validator.Cache).
const verifiedCacheSize = 1024

// verifiedCache is the node's verified-record cache: a record.Cache that
// forgets its oldest entry when full.
type verifiedCache struct {
	mu   sync.Mutex
	m    map[[32]byte]*record.Service
	ring [][32]byte // keys in insertion order, for eviction
	next int        // the oldest key in ring, once it is full
	size int
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{m: make(map[[32]byte]*record.Service), size: size}
}

// Get implements record.Cache.
func (c *verifiedCache) Get(sum [32]byte) (*record.Service, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[sum]
	return s, ok
}

// Add implements record.Cache.
func (c *verifiedCache) Add(sum [32]byte, s *record.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[sum]; ok {
		return
	}
	if len(c.ring) < c.size {
		c.ring = append(c.ring, sum)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = sum
		c.next = (c.next + 1) % c.size
	}
	c.m[sum] = s
}
