package dht_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/netget/netget-peer/dht"
)

// lookupTrace follows one find to count the sequential round trips until
// its first result: the depth of the DHT walk's query that found it (a
// peer from the finder's routing table is depth 1, a peer first named by
// a depth-d peer's answer is depth d+1), plus, on the netget DHT path, the
// nearest peers' asks before the walk and a fetch from the provider. Wall
// time over the RTT minus those hops is time spent waiting on something
// other than a round trip: a hedge timer, a slow answer, or the CPU.
type lookupTrace struct {
	mu      sync.Mutex
	t0      time.Time
	depth   map[peer.ID]int
	sent    map[peer.ID]time.Duration // walk query sent
	done    map[peer.ID]time.Duration // walk query answered or failed
	answers []traceAnswer             // netget's list answers
	walk    time.Duration             // first walk event; -1 before
}

// traceAnswer is one netget list answer.
type traceAnswer struct {
	p       peer.ID
	src     dht.Source
	records int
	at      time.Duration
}

func newLookupTrace() *lookupTrace {
	return &lookupTrace{t0: time.Now(), depth: map[peer.ID]int{}, sent: map[peer.ID]time.Duration{},
		done: map[peer.ID]time.Duration{}, walk: -1}
}

// event takes one kad-dht query event of the traced walk.
func (t *lookupTrace) event(ev routing.QueryEvent) {
	at := time.Since(t.t0)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.walk < 0 {
		t.walk = at
	}
	switch ev.Type {
	case routing.SendingQuery:
		if t.depth[ev.ID] == 0 {
			t.depth[ev.ID] = 1 // a seed: from the routing table
		}
		t.sent[ev.ID] = at
	case routing.PeerResponse:
		t.done[ev.ID] = at
		for _, r := range ev.Responses {
			if t.depth[r.ID] == 0 {
				t.depth[r.ID] = t.depth[ev.ID] + 1
			}
		}
	case routing.QueryError:
		if ev.ID != "" {
			t.done[ev.ID] = at
		}
	}
}

// answer takes one netget list answer (records -1: failed).
func (t *lookupTrace) answer(p peer.ID, src dht.Source, records int) {
	at := time.Since(t.t0)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.answers = append(t.answers, traceAnswer{p, src, records, at})
}

// rawResponder returns the peer whose query brought the raw walk's first
// provider at wall time d, and its depth: of the queries still unanswered
// then, the one sent last but at least 0.9 RTT before d (kad-dht returns
// without a PeerResponse event once it has its provider; on mocknet an
// answer takes one RTT, plus whatever the CPU adds).
func (t *lookupTrace) rawResponder(d, rtt time.Duration) (peer.ID, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var best peer.ID
	at := time.Duration(-1)
	for p, s := range t.sent {
		if done, ok := t.done[p]; ok && done <= d {
			continue
		}
		if s <= d-rtt*9/10 && s > at {
			best, at = p, s
		}
	}
	return best, t.depth[best]
}

// detail says, for a netget find traced, what its lists brought and when
// (in RTTs), how many peers its walk queried and how many of them it sent
// a list, and what it heard from peer p (the raw walk's responder).
func (t *lookupTrace) detail(rtt time.Duration, p peer.ID) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := func(d time.Duration) float64 { return float64(d) / float64(rtt) }
	first := "no list brought a record"
	lists := map[dht.Source]int{}
	for _, a := range t.answers {
		lists[a.src]++
	}
	for _, a := range t.answers {
		if a.records > 0 {
			first = fmt.Sprintf("first record from %s at %.2f RTT (walk depth %d)", a.src, r(a.at), t.depth[a.p])
			break
		}
	}
	fromP := "not asked"
	for _, a := range t.answers {
		if a.p == p {
			fromP = fmt.Sprintf("%s list answered %d records at %.2f RTT", a.src, a.records, r(a.at))
		}
	}
	if s, ok := t.sent[p]; ok {
		fromP += fmt.Sprintf(", walk query sent at %.2f RTT (depth %d)", r(s), t.depth[p])
	}
	return fmt.Sprintf("%s; lists answered %v; walk queried %d peers; raw's responder: %s", first, lists, len(t.sent), fromP)
}

// netgetHops returns the sequential round trips of a netget DHT-path find
// whose first result came from src: one for the nearest peers' asks if the
// walk waited for them (started half an RTT or more after the find), then
// the walk depth of the peer whose list answered (for a fetched record:
// the deepest walk query answered by then, plus the fetch). It also
// returns when the walk started.
func (t *lookupTrace) netgetHops(src dht.Source, d, rtt time.Duration) (hops int, walkStart time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	near := 0
	if t.walk >= rtt/2 {
		near = 1
	}
	switch src {
	case dht.SourceNear:
		return 1, t.walk
	case dht.SourceWalk:
		for _, a := range t.answers {
			if a.src == dht.SourceWalk && a.records > 0 && a.at <= d {
				return near + t.depth[a.p], t.walk
			}
		}
	case dht.SourceProvider, dht.SourceDHT:
		deepest := 0
		for p, done := range t.done {
			if done <= d {
				deepest = max(deepest, t.depth[p])
			}
		}
		return near + deepest + 1, t.walk
	}
	return 0, t.walk
}

// depthStats gathers, per path, the hops of each lookup and its wall time
// in RTTs.
type depthStats struct {
	hops []int
	wall []float64
}

func (s *depthStats) add(hops int, wallRTT float64) {
	s.hops = append(s.hops, hops)
	s.wall = append(s.wall, wallRTT)
}

// histogram prints "hops:count" in order of hops, with the mean wall time
// of each group in RTTs.
func (s *depthStats) histogram() string {
	count := map[int]int{}
	sum := map[int]float64{}
	for i, h := range s.hops {
		count[h]++
		sum[h] += s.wall[i]
	}
	var parts []string
	for _, h := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d hops ×%d (wall %.2f RTT)", h, count[h], sum[h]/float64(count[h])))
	}
	return strings.Join(parts, ", ")
}

// excess returns the mean and the largest wall time beyond the hops, in
// RTTs: what the lookups waited for besides sequential round trips.
func (s *depthStats) excess() (meanX, maxX float64) {
	for i, h := range s.hops {
		x := s.wall[i] - float64(h)
		meanX += x
		maxX = max(maxX, x)
	}
	if len(s.hops) > 0 {
		meanX /= float64(len(s.hops))
	}
	return meanX, maxX
}

// logDepths prints both paths' hop histograms and excesses, and one line
// per slow lookup (either path over 1.5 RTT).
func logDepths(b *testing.B, dhtD, rawD *depthStats, slow []string) {
	dm, dx := dhtD.excess()
	rm, rx := rawD.excess()
	b.Logf("sequential round trips to the first result (hops) | DHT path: %s; wall beyond hops mean %.2f max %.2f RTT | raw: %s; wall beyond hops mean %.2f max %.2f RTT",
		dhtD.histogram(), dm, dx, rawD.histogram(), rm, rx)
	for _, s := range slow {
		b.Log("slow lookup: " + s)
	}
}
