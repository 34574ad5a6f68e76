package dht

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxLimitedPeers bounds the limiter's memory: past it, the table starts
// afresh (every peer gets a full bucket again).
const maxLimitedPeers = 4096

// peerLimiter rate-limits registry-protocol requests per remote peer.
type peerLimiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	peers map[peer.ID]*rate.Limiter
}

func newPeerLimiter(r float64, burst int) *peerLimiter {
	return &peerLimiter{rate: rate.Limit(r), burst: burst, peers: make(map[peer.ID]*rate.Limiter)}
}

// allow reports whether p may make one more request now.
func (l *peerLimiter) allow(p peer.ID) bool {
	l.mu.Lock()
	lim := l.peers[p]
	if lim == nil {
		if len(l.peers) >= maxLimitedPeers {
			clear(l.peers)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.peers[p] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
