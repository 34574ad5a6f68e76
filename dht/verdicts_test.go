package dht

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/record"
)

// TestVerdicts walks one provider through its states on an injected clock:
// pending (not served) until a check passes, a re-arrival while unhealthy
// changes nothing but the next check, and lists rank healthy providers
// first, longest known first.
func TestVerdicts(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	self, a, b, c := peer.ID("self"), peer.ID("a"), peer.ID("b"), peer.ID("c")
	v := newVerdicts(self, clock, func() []ma.Multiaddr { return nil }, Health{Interval: time.Minute, Failures: 2})
	for _, p := range []peer.ID{a, b, c} {
		v.arrived(p)
		now = now.Add(time.Second)
	}
	if v.serves(a) || !v.serves(self) {
		t.Fatal("a provider never checked is served, or the node's own records are not")
	}
	served, suspect := v.due(now)
	if len(served) != 0 || len(suspect) != 3 {
		t.Fatalf("due at arrival: served %v suspect %v, want the 3 new providers as suspects", served, suspect)
	}
	v.checked(a, false, now, time.Time{})
	v.checked(b, true, now, time.Time{})
	v.checked(c, true, now, time.Time{})
	if v.serves(a) || !v.serves(b) {
		t.Fatal("after the first checks: a (failed) served or b (passed) not")
	}
	ps := []peer.ID{c, a, self, b}
	slices.SortFunc(ps, v.rank)
	if want := []peer.ID{self, b, c, a}; !slices.Equal(ps, want) {
		t.Fatalf("rank: %v, want %v", ps, want)
	}
	// a fails again: unhealthy. A new record within the Interval does not
	// bring its check forward; after it, it does, and serves nothing.
	now = now.Add(time.Minute)
	if _, suspect := v.due(now); !slices.Contains(suspect, a) {
		t.Fatalf("a not due a minute on: %v", suspect)
	}
	if changed, healthy := v.checked(a, false, now, time.Time{}); changed || healthy {
		t.Fatalf("a pending provider failing twice: changed %v healthy %v, want no change, not healthy", changed, healthy)
	}
	v.arrived(a) // the last trigger was its first record, an Interval ago
	if _, suspect := v.due(now); !slices.Contains(suspect, a) {
		t.Fatal("a new record an Interval after the last trigger did not make a due")
	}
	v.checked(a, false, now, time.Time{})
	v.arrived(a)
	if v.serves(a) {
		t.Fatal("a new record made an unhealthy provider served")
	}
	if _, suspect := v.due(now); slices.Contains(suspect, a) {
		t.Fatal("a second new record within the Interval made a due again")
	}
}

// TestAdmitAddrs: with public addresses required, a record needs one;
// otherwise anything goes.
func TestAdmitAddrs(t *testing.T) {
	for name, tc := range map[string]struct {
		addrs  []string
		public bool
		want   error
	}{
		"loopback, any":      {[]string{"/ip4/127.0.0.1/tcp/1"}, false, nil},
		"loopback, public":   {[]string{"/ip4/127.0.0.1/tcp/1"}, true, ErrPrivateAddrs},
		"private, public":    {[]string{"/ip4/10.1.2.3/tcp/1", "/ip4/192.168.1.2/tcp/1"}, true, ErrPrivateAddrs},
		"one public, public": {[]string{"/ip4/10.1.2.3/tcp/1", "/ip4/1.1.1.1/tcp/4001"}, true, nil},
		"no addrs, public":   {nil, true, ErrPrivateAddrs},
	} {
		t.Run(name, func(t *testing.T) {
			err := admitAddrs(&record.Service{Addrs: tc.addrs}, tc.public)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	listen := func(a string) func() []ma.Multiaddr {
		return func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast(a)} }
	}
	if AddrsAuto.publicOnly(listen("/ip4/127.0.0.1/tcp/4001")) {
		t.Fatal("auto on a loopback registry requires public addresses")
	}
	if !AddrsAuto.publicOnly(listen("/ip4/1.1.1.1/tcp/4001")) {
		t.Fatal("auto on a public registry accepts private addresses")
	}
}

// TestVouch: a provider's own put passes its check: a record arriving
// during it is served at once (no check due for an Interval), a refused put
// changes nothing, a re-put of a held record passes an unhealthy
// provider's check as it ends, and a record arriving outside a put does not.
func TestVouch(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := newVerdicts("self", func() time.Time { return now }, func() []ma.Multiaddr { return nil }, Health{Interval: time.Minute, Failures: 1})
	a, b := peer.ID("a"), peer.ID("b")
	done := v.vouch(a)
	v.arrived(a)
	if !v.serves(a) {
		t.Fatal("a record arriving during its provider's own put is not served")
	}
	if !done(true) {
		t.Fatal("done does not report that the provider turned healthy")
	}
	if served, suspect := v.due(now); len(served)+len(suspect) != 0 {
		t.Fatalf("checks due right after an own put: %v %v", served, suspect)
	}
	if done := v.vouch(b); done(false) || v.serves(b) {
		t.Fatal("a refused put made its provider served")
	}
	v.arrived(b)
	if v.serves(b) {
		t.Fatal("a record arriving outside an own put is served before a check")
	}
	v.due(now)
	v.checked(b, false, now, time.Time{})
	done = v.vouch(b) // the store holds that very record: no arrival
	if !done(true) || !v.serves(b) {
		t.Fatal("an unhealthy provider's own re-put did not pass its check")
	}
}
