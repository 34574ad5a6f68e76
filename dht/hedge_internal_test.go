package dht

import (
	"testing"
	"time"
)

// TestHedgeAdaptsToRoundTrips: the hedge is Config.WalkHedge while round
// trips are faster than it (loopback, a LAN), grows to SRTT + 4·RTTVAR
// where they are slower, and never passes MaxWalkHedge; WalkHedge 0 keeps
// every step at once.
func TestHedgeAdaptsToRoundTrips(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		hedge  time.Duration
		trips  []time.Duration
		want   time.Duration
		srtt   time.Duration
		rttvar time.Duration
	}{
		{name: "no round trip yet", hedge: 50 * ms, want: 50 * ms},
		{name: "loopback", hedge: 50 * ms, trips: []time.Duration{ms / 5, ms / 5}, want: 50 * ms, srtt: ms / 5, rttvar: 75 * time.Microsecond},
		{name: "RTT 100ms, steady", hedge: 50 * ms, trips: []time.Duration{100 * ms, 100 * ms, 100 * ms},
			srtt: 100 * ms, rttvar: 28125 * time.Microsecond, want: 100*ms + 4*28125*time.Microsecond},
		{name: "RTT 100ms then 20ms", hedge: 50 * ms, trips: []time.Duration{100 * ms, 20 * ms},
			srtt: 90 * ms, rttvar: 57500 * time.Microsecond, want: 90*ms + 4*57500*time.Microsecond},
		{name: "slow beyond the cap", hedge: 50 * ms, trips: []time.Duration{2 * time.Second}, srtt: 2 * time.Second, rttvar: time.Second, want: MaxWalkHedge},
		{name: "hedging off", hedge: 0, trips: []time.Duration{100 * ms}, srtt: 100 * ms, rttvar: 50 * ms, want: 0},
		{name: "nonsense ignored", hedge: 50 * ms, trips: []time.Duration{0, -ms}, want: 50 * ms},
		{name: "RTT 20ms, steady", hedge: 50 * ms, trips: []time.Duration{20 * ms, 20 * ms},
			srtt: 20 * ms, rttvar: 7500 * time.Microsecond, want: 50 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{cfg: Config{WalkHedge: tc.hedge}}
			for _, d := range tc.trips {
				n.rtt.observe(d)
			}
			if n.rtt.srtt != tc.srtt || n.rtt.rttvar != tc.rttvar {
				t.Errorf("srtt, rttvar = %v, %v; want %v, %v", n.rtt.srtt, n.rtt.rttvar, tc.srtt, tc.rttvar)
			}
			if got := n.hedge(); got != tc.want {
				t.Errorf("hedge = %v, want %v", got, tc.want)
			}
		})
	}
}
