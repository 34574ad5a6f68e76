package registry

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of the idle registry-protocol streams a node keeps for reuse.
const (
	maxIdlePerPeer = 4
	maxIdleStreams = 256
	// idleReuse is how long an idle stream stays worth reusing: well
	// inside the responder's streamIdleTimeout.
	idleReuse = streamIdleTimeout / 2
)

// streamPool keeps idle registry-protocol streams per peer, so a request
// to a peer asked before (a registry, above all) skips opening a stream.
type streamPool struct {
	mu    sync.Mutex
	idle  map[peer.ID][]idleStream
	count int
}

type idleStream struct {
	s     network.Stream
	since time.Time
}

func newStreamPool() *streamPool { return &streamPool{idle: make(map[peer.ID][]idleStream)} }

// take returns an idle stream to p, or nil. Streams idle too long are reset.
func (sp *streamPool) take(p peer.ID) network.Stream {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for list := sp.idle[p]; len(list) > 0; list = sp.idle[p] {
		last := list[len(list)-1]
		sp.drop(p, len(list)-1)
		if time.Since(last.since) < idleReuse && !last.s.Conn().IsClosed() {
			return last.s
		}
		last.s.Reset()
	}
	return nil
}

// give keeps s, a stream to p between requests, for reuse, or closes it
// when the pool is full.
func (sp *streamPool) give(p peer.ID, s network.Stream) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.idle == nil || len(sp.idle[p]) >= maxIdlePerPeer || sp.count >= maxIdleStreams {
		s.Close()
		return
	}
	sp.idle[p] = append(sp.idle[p], idleStream{s: s, since: time.Now()})
	sp.count++
}

// drop removes p's i-th idle stream from the pool. sp.mu must be held.
func (sp *streamPool) drop(p peer.ID, i int) {
	list := sp.idle[p]
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(sp.idle, p)
	} else {
		sp.idle[p] = list
	}
	sp.count--
}

// close resets every idle stream; later gives close their stream.
func (sp *streamPool) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, list := range sp.idle {
		for _, is := range list {
			is.s.Reset()
		}
	}
	sp.idle, sp.count = nil, 0
}
