package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLimiterBoundedWithoutReset fills the limiter's table with drained
// buckets and checks that newcomers neither grow it nor give a drained peer
// a fresh bucket, and that full (idle) buckets make room.
func TestLimiterBoundedWithoutReset(t *testing.T) {
	const size, burst = 64, 3
	now := time.Unix(1_000_000, 0)
	l := newLimiterSize(1, burst, size, func() time.Time { return now })
	id := func(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%d", i)) }
	drain := func(p peer.ID) {
		for l.Allow(p) {
		}
	}
	attacker := id(0)
	drain(attacker)
	for i := 1; i < 10*size; i++ { // sybils: far more identities than slots
		drain(id(i))
		if got := l.size(); got > size {
			t.Fatalf("table holds %d peers, want at most %d", got, size)
		}
	}
	if l.Allow(attacker) {
		t.Fatal("a drained peer got a fresh bucket after the table filled")
	}
	if l.Allow(id(10*size + 1)) {
		t.Fatal("a newcomer got tokens while every bucket and the overflow are drained")
	}
	now = now.Add(time.Hour) // every bucket refills: the idle ones can go
	for i := range size {
		if !l.Allow(id(20*size + i)) {
			t.Fatalf("newcomer %d refused though idle buckets are full", i)
		}
	}
	if got := l.size(); got != size {
		t.Fatalf("table holds %d peers, want %d", got, size)
	}
}
