package dht_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/record"
)

// The readers of BenchmarkWatchLatency (watch_latency_bench_test.go): a
// group of k watchers, or of floor streams, and when each had each change.

// watchGroup is what k readers read: when each had each seq.
type watchGroup struct {
	k       int
	bad     *atomic.Int64
	mu      sync.Mutex
	at      map[uint64][]time.Time // verified
	decoded map[uint64][]time.Time // decoded, before verification
	fulls   map[uint64]chan struct{}

	// own, when set, has readers keep each record for later instead of
	// verifying it (ownReads, ownFull): the verification is then timed
	// alone, as on the watcher's own CPU.
	own      atomic.Bool
	ownReads []ownRead
	ownFull  chan struct{}
}

// ownRead is a record a reader decoded and kept, and when.
type ownRead struct {
	at  time.Time
	env []byte
}

func newWatchGroup(k int) *watchGroup {
	return &watchGroup{k: k, bad: new(atomic.Int64), at: map[uint64][]time.Time{}, decoded: map[uint64][]time.Time{}, fulls: map[uint64]chan struct{}{}}
}

// read reads messages with next until it fails, verifying each record
// with a validator of its own (no cache) and noting when it had it.
func (g *watchGroup) read(next func() (registry.WatchMsg, error)) {
	v := record.Validator{Network: "development"}
	for {
		m, err := next()
		if err != nil {
			return
		}
		if len(m.Record) == 0 {
			continue
		}
		read := time.Now()
		if g.own.Load() {
			g.mu.Lock()
			g.ownReads = append(g.ownReads, ownRead{at: read, env: m.Record})
			if len(g.ownReads) == g.k {
				close(g.ownFull)
			}
			g.mu.Unlock()
			continue
		}
		s, err := v.Open(m.Record)
		if err != nil {
			g.bad.Add(1)
			continue
		}
		now := time.Now()
		g.mu.Lock()
		g.decoded[s.Seq] = append(g.decoded[s.Seq], read)
		g.at[s.Seq] = append(g.at[s.Seq], now)
		if len(g.at[s.Seq]) == g.k {
			close(g.fullLocked(s.Seq))
		}
		g.mu.Unlock()
	}
}

// full returns a channel closed once all k readers have seq.
func (g *watchGroup) full(seq uint64) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fullLocked(seq)
}

func (g *watchGroup) fullLocked(seq uint64) chan struct{} {
	ch, ok := g.fulls[seq]
	if !ok {
		ch = make(chan struct{})
		g.fulls[seq] = ch
	}
	return ch
}

// wait waits until full is closed, for at most a minute.
func (g *watchGroup) wait(b *testing.B, seq uint64, full chan struct{}) {
	select {
	case <-full:
	case <-time.After(time.Minute):
		g.mu.Lock()
		n := len(g.at[seq])
		g.mu.Unlock()
		b.Fatalf("after a minute %d of %d readers have seq %d", n, g.k, seq)
	}
}

// since is how long after at each reader had seq verified, and had it
// read (decoded, before verification).
func (g *watchGroup) since(seq uint64, at time.Time) latencies {
	g.mu.Lock()
	defer g.mu.Unlock()
	var l latencies
	for i, t := range g.at[seq] {
		l.verified = append(l.verified, ms(t.Sub(at)))
		l.read = append(l.read, ms(g.decoded[seq][i].Sub(at)))
	}
	return l
}

// latencies are one change's latencies, one per reader, in ms.
type latencies struct{ verified, read []float64 }

// into adds every verified latency to all, the least to first, and every
// read latency to read.
func (l latencies) into(all, first, read *sample) {
	for _, d := range l.verified {
		all.add(d, true)
	}
	if len(l.verified) > 0 {
		first.add(slices.Min(l.verified), true)
	}
	for _, d := range l.read {
		read.add(d, true)
	}
}
