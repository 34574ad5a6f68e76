package store

import (
	"sync"

	"github.com/netget/netget-peer/record"
)

// cacheSize is how many verified records a node remembers, by the
// SHA-256 of their envelope, so that the same bytes are not verified twice:
// a record a node was given (and verified) is served from its own index to
// its own finds, every holder of a record returns the same bytes, and finds
// repeat. The time-bound checks run on every use (record.Validator.Cache).
const cacheSize = 1024

// Cache is the node's verified-record cache: a record.Cache that forgets
// its oldest entry when full. Its validator verifies the records the store
// takes, so it lives beside the store.
type Cache struct {
	mu   sync.Mutex
	m    map[[32]byte]*record.Service
	ring [][32]byte // keys in insertion order, for eviction
	next int        // the oldest key in ring, once it is full
	size int
}

// NewCache returns an empty cache of the node's size.
func NewCache() *Cache { return newCache(cacheSize) }

// newCache returns an empty cache of size records.
func newCache(size int) *Cache {
	return &Cache{m: make(map[[32]byte]*record.Service), size: size}
}

// Get implements record.Cache.
func (c *Cache) Get(sum [32]byte) (*record.Service, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[sum]
	return s, ok
}

// Add implements record.Cache.
func (c *Cache) Add(sum [32]byte, s *record.Service) {
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
