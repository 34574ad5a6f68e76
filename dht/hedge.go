package dht

import (
	"sync"
	"time"
)

// MaxWalkHedge bounds the adaptive hedge (Node.hedge): however slow this
// node's round trips, a step of a find or a publish waits at most this long
// for the asks of the step before it.
const MaxWalkHedge = time.Second

// rttEstimator smooths the round trips of the lists a node's finds send
// to its registries, as TCP smooths its own (RFC 6298: SRTT and RTTVAR,
// gains 1/8 and 1/4). DHT peers' answers are left out: any peer can be
// slow on purpose, and the hedge would stretch with it (up to
// MaxWalkHedge) for every find.
type rttEstimator struct {
	mu     sync.Mutex
	srtt   time.Duration
	rttvar time.Duration
}

// observe takes one measured round trip.
func (e *rttEstimator) observe(d time.Duration) {
	if d <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srtt == 0 {
		e.srtt, e.rttvar = d, d/2
		return
	}
	diff := e.srtt - d
	if diff < 0 {
		diff = -diff
	}
	e.rttvar = (3*e.rttvar + diff) / 4
	e.srtt = (7*e.srtt + d) / 8
}

// timeout returns SRTT + 4·RTTVAR, the time by which nearly every answer
// to a request is in (TCP's retransmission timeout); 0 before the first
// round trip.
func (e *rttEstimator) timeout() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srtt + 4*e.rttvar
}

// hedge returns how long a find's DHT path (the nearest peers' asks and,
// after nearHeadStart at most, the DHT walk) or a publish's DHT walk waits for the
// registries: Config.WalkHedge, or, when this node's round
// trips are slower than that, the time by which nearly all their answers
// are in (roundTripTimeout), at most MaxWalkHedge. A fixed hedge shorter
// than the round trip started the next step before any answer could
// arrive: under a 100 ms RTT the registries' answer, which usually ends a
// find, came after the walk had started, for several times the requests
// per find and no earlier result. The walk no longer waits out the
// nearest peers' round trip (nearHeadStart says why). 0 (WalkHedge 0)
// runs every step at once.
func (n *Node) hedge() time.Duration {
	h := n.cfg.WalkHedge
	if h <= 0 {
		return 0
	}
	return max(h, min(n.roundTripTimeout(), MaxWalkHedge))
}

// roundTripTimeout returns the time by which nearly every answer of this
// node's registries is in (rttEstimator.timeout). Before its
// finds have measured any, it takes the round trip go-libp2p's peerstore
// holds for its registries (kad-dht records one on every request, so a
// node that joined has it), as TCP's first sample: three times the slowest.
func (n *Node) roundTripTimeout() time.Duration {
	if t := n.rtt.timeout(); t > 0 {
		return t
	}
	var slowest time.Duration
	for _, p := range n.Registries() {
		slowest = max(slowest, n.host.Peerstore().LatencyEWMA(p))
	}
	return 3 * slowest
}

// SmoothedRTT returns the smoothed round trip of this node's record
// requests (0 before its first find has had an answer), the base of its
// adaptive hedge.
func (n *Node) SmoothedRTT() time.Duration {
	n.rtt.mu.Lock()
	defer n.rtt.mu.Unlock()
	return n.rtt.srtt
}
