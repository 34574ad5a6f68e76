package dht

import (
	"cmp"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/record"
)

// maxRemembered bounds how many deregistered providers' verdicts a node
// keeps (the store holds no record of them any more).
const maxRemembered = 1 << 14

// verdicts is what a node's health checks found of each provider it holds
// records for: the one place that decides whose records are served, and
// in what order. The store tells it when a record arrives and when the
// last record of a provider goes; the monitor asks it who is due.
//
// A provider is pending from its first record until its first check
// passes, healthy while its checks pass (Failures-1 consecutive failures
// are forgiven) and unhealthy after that. With the monitor on, only
// healthy providers' records are served (and the node's own); a new record
// does not change a verdict, it only moves the provider's next check to
// now (at most once per Interval per provider). A deregistered provider is
// remembered for DeregisterAfter, so a record it signs afresh is checked
// before it is served again.
//
// One thing passes a check besides a ping: a registry-protocol put that
// the record's own peer sends on its connection (vouch). Its request and
// the answer it waits for are a completed round trip on the very
// connection a check would ping, so the record that put stores makes its
// provider healthy at once, served and announced to watchers with the
// record itself; a re-put of a record the store holds already passes the
// check as it returns. Records that arrive any other way (a DHT
// PUT_VALUE, sync, a forward, a third party's put, the node's own Put)
// still wait for a check, and every record still passes admit first.
type verdicts struct {
	on     bool // the monitor runs; off, every record is served
	self   peer.ID
	now    func() time.Time
	listen func() []ma.Multiaddr // the node's addresses (AddrsAuto)
	cfg    Health
	kick   chan struct{} // a check is due now (cap 1)

	epoch atomic.Uint64 // bumped when a verdict turns (store.Verdicts.Epoch)

	mu       sync.Mutex
	peers    map[peer.ID]*verdict
	gone     map[peer.ID]time.Time // deregistered providers: unhealthy since
	serial   uint64                // arrival order, ties of known
	vouching map[peer.ID]int       // puts by the provider itself in progress (vouch)
}

// verdict is the health of one provider.
type verdict struct {
	known     time.Time // when its first record arrived (this run)
	serial    uint64
	healthy   bool      // its last decisive check passed: serve it
	failures  int       // consecutive failed checks
	since     time.Time // when it turned unhealthy; zero otherwise
	due       time.Time // its next check
	triggered time.Time // when a new record last moved due to now
	inFlight  bool
	first     chan struct{} // closed by the outcome of its first (or triggered) check
}

func newVerdicts(self peer.ID, now func() time.Time, listen func() []ma.Multiaddr, cfg Health) *verdicts {
	return &verdicts{on: cfg.Interval > 0, self: self, now: now, listen: listen, cfg: cfg.withDefaults(),
		kick: make(chan struct{}, 1), peers: make(map[peer.ID]*verdict), gone: make(map[peer.ID]time.Time),
		vouching: make(map[peer.ID]int)}
}

// admit is the address rule for a record entering the store of a node
// whose monitor runs: see AddrPolicy. The node's own records pass.
func (v *verdicts) admit(svc *record.Service) error {
	if !v.on || svc.Peer == v.self {
		return nil
	}
	return admitAddrs(svc, v.cfg.Addrs.publicOnly(v.listen))
}

// arrived notes that a record of p entered the store. A new provider is
// pending (a remembered deregistered one unhealthy) and due at once; a
// known one that is not healthy is due at once, unless a record already
// triggered a check in the last Interval. Verdicts never change here,
// unless p itself is putting the record (vouch): that passes its check.
func (v *verdicts) arrived(p peer.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	d := v.peers[p]
	if d == nil {
		v.serial++
		d = &verdict{known: now, serial: v.serial, due: now, triggered: now, first: make(chan struct{})}
		if _, ok := v.gone[p]; ok {
			// Unhealthy still, and deregistered again after
			// DeregisterAfter unless a check passes.
			d.since, d.failures = now, v.cfg.Failures
			delete(v.gone, p)
		}
		v.peers[p] = d
		if v.vouching[p] > 0 {
			v.passLocked(d, now)
			return
		}
		v.poke()
		return
	}
	if v.vouching[p] > 0 {
		v.passLocked(d, now)
		return
	}
	if !d.healthy && now.Sub(d.triggered) >= v.cfg.Interval {
		d.due, d.triggered = now, now
		select {
		case <-d.first: // awaitFirst waits for this check now
			d.first = make(chan struct{})
		default:
		}
		v.poke()
	}
}

// poke wakes the monitor. v.mu must be held.
func (v *verdicts) poke() {
	if !v.on {
		return
	}
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// left notes that the store holds no record of p any more. An unhealthy
// provider's verdict is remembered for DeregisterAfter.
func (v *verdicts) left(p peer.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.peers[p]
	if d == nil {
		return
	}
	delete(v.peers, p)
	d.settle() // nobody waits for its check any more
	if d.since.IsZero() || !v.on {
		return
	}
	if len(v.gone) >= maxRemembered {
		v.forgetLocked()
	}
	v.gone[p] = d.since
}

// forgetLocked drops remembered providers deregistered longer than
// DeregisterAfter ago, or, if none is, an arbitrary half. v.mu must be held.
func (v *verdicts) forgetLocked() {
	cutoff := v.now().Add(-2 * v.cfg.DeregisterAfter)
	for p, since := range v.gone {
		if since.Before(cutoff) {
			delete(v.gone, p)
		}
	}
	for p := range v.gone {
		if len(v.gone) < maxRemembered/2 {
			return
		}
		delete(v.gone, p)
	}
}

// serves reports whether p's records are served now.
func (v *verdicts) serves(p peer.ID) bool {
	if !v.on || p == v.self {
		return true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.peers[p]
	return d != nil && d.healthy
}

// expendable reports whether p's records may be evicted to make room for
// a newcomer, and whether p is unhealthy (evicted first): it is unhealthy,
// or it never passed a check. Without health checks nobody is known to be
// either, so nobody is; the node's own records never are.
func (v *verdicts) expendable(p peer.ID) (ok, unhealthy bool) {
	if !v.on || p == v.self {
		return false, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.peers[p]
	switch {
	case d == nil:
		return true, false
	case !d.since.IsZero():
		return true, true
	}
	return !d.healthy, false
}

// rank orders providers for a list: healthy ones first (the node's own
// first of all), then by how long they have been known, oldest first.
func (v *verdicts) rank(a, b peer.ID) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	da, db := v.peers[a], v.peers[b]
	if c := cmp.Compare(v.tier(a, da), v.tier(b, db)); c != 0 {
		return c
	}
	switch {
	case da == nil || db == nil:
		return cmp.Compare(a, b)
	case !da.known.Equal(db.known):
		return da.known.Compare(db.known)
	}
	return cmp.Compare(da.serial, db.serial)
}

// tier is 0 for the node itself, 1 for a healthy provider, 2 otherwise.
// v.mu must be held.
func (v *verdicts) tier(p peer.ID, d *verdict) int {
	switch {
	case p == v.self:
		return 0
	case !v.on || d != nil && d.healthy:
		return 1
	}
	return 2
}

// due returns the providers whose check is due at now and not running,
// marks them running and schedules their next check an Interval on.
// Healthy providers come in served, the others in suspect.
func (v *verdicts) due(now time.Time) (served, suspect []peer.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for p, d := range v.peers {
		if p == v.self || d.inFlight || now.Before(d.due) {
			continue
		}
		d.inFlight, d.due = true, now.Add(v.cfg.Interval)
		if d.healthy {
			served = append(served, p)
		} else {
			suspect = append(suspect, p)
		}
	}
	return served, suspect
}

// next returns when the earliest check not running is due (zero: none).
func (v *verdicts) next() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	var t time.Time
	for p, d := range v.peers {
		if p != v.self && !d.inFlight && (t.IsZero() || d.due.Before(t)) {
			t = d.due
		}
	}
	return t
}

// checked records a check of p that started at start: ok makes it healthy;
// a failure makes it unhealthy at the Failures-th in a row. retry (no
// verdict: the check could not run) makes it due again at retry. It
// returns whether p's verdict changed, and to what.
func (v *verdicts) checked(p peer.ID, ok bool, at time.Time, retry time.Time) (changed, healthy bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	d := v.peers[p]
	if d == nil {
		return false, ok // its records went while the check ran
	}
	d.inFlight = false
	if !retry.IsZero() {
		d.due = retry
		return false, d.healthy
	}
	defer d.settle()
	if ok {
		return v.turnHealthyLocked(d), true
	}
	d.failures++
	if d.failures >= v.cfg.Failures && d.since.IsZero() {
		d.since = at
		changed = d.healthy
		d.healthy = false
		v.epoch.Add(1)
	}
	return changed, d.healthy
}

// turnHealthyLocked is a passed check's verdict: healthy, no failures. It
// reports whether d turned healthy. v.mu must be held.
func (v *verdicts) turnHealthyLocked(d *verdict) (changed bool) {
	changed = !d.healthy
	if changed || !d.since.IsZero() {
		v.epoch.Add(1)
	}
	d.healthy, d.failures, d.since = true, 0, time.Time{}
	return changed
}

// passLocked passes d's check at now without a ping (vouch): healthy, the
// next check an Interval on (unless one is running), and anyone waiting
// for its first check released. v.mu must be held.
func (v *verdicts) passLocked(d *verdict, now time.Time) (changed bool) {
	changed = v.turnHealthyLocked(d)
	if !d.inFlight {
		d.due = now.Add(v.cfg.Interval)
	}
	d.triggered = now
	d.settle()
	return changed
}

// vouch starts a registry-protocol put that p sends of its own record on
// its connection: until done, a record of p entering the store passes p's
// check (arrived). done(stored) ends it; stored says the put succeeded,
// and then p's check passes if the store held that very record already
// (no arrival). done reports whether p was not healthy before the put and
// is now, so its other records' watchers must hear of it. With the
// monitor off, or for the node itself, it does nothing.
func (v *verdicts) vouch(p peer.ID) (done func(stored bool) (turned bool)) {
	if !v.on || p == v.self {
		return func(bool) bool { return false }
	}
	v.mu.Lock()
	v.vouching[p]++
	was := v.peers[p] != nil && v.peers[p].healthy
	v.mu.Unlock()
	return func(stored bool) bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.vouching[p]--; v.vouching[p] <= 0 {
			delete(v.vouching, p)
		}
		d := v.peers[p]
		if d == nil || !stored {
			return false
		}
		v.passLocked(d, v.now())
		return !was
	}
}

// settle closes first, once.
func (d *verdict) settle() {
	select {
	case <-d.first:
	default:
		close(d.first)
	}
}

// awaitFirst waits until p's first check, or the check its latest record
// triggered, has an outcome, at most limit or until ctx ends, so that a
// provider whose push a registry answers is served by it at once. It
// returns whether p is served.
func (v *verdicts) awaitFirst(ctx context.Context, p peer.ID, limit time.Duration) bool {
	if !v.on || p == v.self {
		return true
	}
	v.mu.Lock()
	var first chan struct{}
	if d := v.peers[p]; d != nil {
		first = d.first
	}
	v.mu.Unlock()
	if first == nil {
		return false
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-first:
	case <-t.C:
	case <-ctx.Done():
	}
	return v.serves(p)
}

// unhealthyFor returns the providers unhealthy since before cutoff.
func (v *verdicts) unhealthyFor(cutoff time.Time) map[peer.ID]bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[peer.ID]bool)
	for p, d := range v.peers {
		if !d.since.IsZero() && !d.since.After(cutoff) {
			out[p] = true
		}
	}
	return out
}

// state fills in what the checks found of st.Peer.
func (v *verdicts) state(st *ProviderState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	st.Healthy = !v.on
	if d := v.peers[st.Peer]; d != nil {
		st.KnownSince, st.Failures, st.UnhealthySince = d.known, d.failures, d.since
		st.Healthy = st.Healthy || d.healthy
		st.Pending = v.on && !d.healthy && d.since.IsZero()
	}
}
