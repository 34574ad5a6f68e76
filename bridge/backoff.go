package bridge

import (
	"sync"
	"time"
)

// tokenBackoff remembers wrong tokens per address (addrKey) and bars an
// address after each one, for base * 2^(n-1) after the n-th in a row, at
// most max. It holds at most size addresses. Its clock is injected.
type tokenBackoff struct {
	base, max time.Duration
	size      int
	now       func() time.Time

	mu    sync.Mutex
	addrs map[string]*guesses
}

// guesses is one address's run of wrong tokens.
type guesses struct {
	n     int       // wrong tokens in a row
	until time.Time // barred until then
}

func newTokenBackoff(c *Config, now func() time.Time) *tokenBackoff {
	return &tokenBackoff{base: c.TokenBackoff, max: c.MaxTokenBackoff, size: c.MaxTrackedAddrs, now: now,
		addrs: make(map[string]*guesses)}
}

// barred returns how long key is still barred; 0 if it is not.
func (b *tokenBackoff) barred(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.addrs[key]
	if g == nil {
		return 0
	}
	return max(g.until.Sub(b.now()), 0)
}

// fail records a wrong token from key and returns how long key is barred.
func (b *tokenBackoff) fail(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	g := b.addrs[key]
	if g != nil && now.Sub(g.until) >= b.max {
		g = nil // quiet for MaxTokenBackoff: start over
	}
	if g == nil {
		b.makeRoom(now)
		g = &guesses{}
		b.addrs[key] = g
	}
	g.n++
	d := b.max
	if g.n <= 32 {
		d = min(b.base<<(g.n-1), b.max)
		if d <= 0 { // overflow
			d = b.max
		}
	}
	g.until = now.Add(d)
	return d
}

// succeed clears key's run after a right token.
func (b *tokenBackoff) succeed(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.addrs, key)
}

// makeRoom frees a slot when the table is full: it forgets the addresses
// quiet for MaxTokenBackoff since their bar, then, if none, the one whose
// bar ends first. Called with b.mu held.
func (b *tokenBackoff) makeRoom(now time.Time) {
	if len(b.addrs) < b.size {
		return
	}
	var oldest string
	var oldestUntil time.Time
	for k, g := range b.addrs {
		if now.Sub(g.until) >= b.max {
			delete(b.addrs, k)
			continue
		}
		if oldest == "" || g.until.Before(oldestUntil) {
			oldest, oldestUntil = k, g.until
		}
	}
	if len(b.addrs) >= b.size {
		delete(b.addrs, oldest)
	}
}

// tracked returns how many addresses the table holds.
func (b *tokenBackoff) tracked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.addrs)
}
