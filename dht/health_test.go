package dht_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kadrecord "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// clock is a registry's injected clock: health rounds advance only when a
// test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// checkedRegistry starts a registry whose health monitor runs on clk.
func checkedRegistry(t *testing.T, clk *clock, h dht.Health) *dht.Node {
	t.Helper()
	return dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.Health, c.Now = h, clk.Now
	})
}

// sybil signs a DatabaseService record for a fresh key, naming addrs.
func sybil(t *testing.T, now time.Time, addrs ...string) ([]byte, peer.ID, func(seq uint64) []byte) {
	t.Helper()
	key, id := recordtest.NewKey(t)
	sign := func(seq uint64) []byte {
		svc := recordtest.Valid(id, now)
		svc.Addrs, svc.Seq = addrs, seq
		return recordtest.SealRaw(t, svc, key)
	}
	return sign(1), id, sign
}

// deadAddr returns a loopback TCP address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)
}

// rawListener is attacker code: a TCP listener on 127.0.0.1 that counts
// the connections it accepts and either holds them open, never answering
// (a tarpit), or closes them at once.
type rawListener struct {
	l        net.Listener
	hold     bool
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	done     chan struct{}
}

func listenRaw(t *testing.T, hold bool) *rawListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rawListener{l: l, hold: hold, done: make(chan struct{})}
	go r.serve()
	t.Cleanup(r.close)
	return r
}

func (r *rawListener) serve() {
	defer close(r.done)
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		if !r.hold {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
	}
}

func (r *rawListener) close() {
	r.l.Close()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *rawListener) addr() string {
	return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(r.l.Addr().(*net.TCPAddr).Port)
}

// listed returns the peers of the records reg lists for DatabaseService,
// asked by from, in the order listed.
func listed(t *testing.T, from, reg *dht.Node) []peer.ID {
	t.Helper()
	c, _ := record.ServiceCID("development", "DatabaseService")
	envs, err := dht.List(testCtx(t), from, reg.Host().ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	v := record.Validator{Network: "development"}
	var out []peer.ID
	for _, env := range envs {
		svc, err := v.Open(env)
		if err != nil {
			t.Fatalf("listed record: %v", err)
		}
		out = append(out, svc.Peer)
	}
	return out
}

// state returns reg's health state of p.
func state(reg *dht.Node, p peer.ID) (dht.ProviderState, bool) {
	for _, st := range reg.Providers() {
		if st.Peer == p {
			return st, true
		}
	}
	return dht.ProviderState{}, false
}

// push offers reg each record from attacker, failing the test on a refusal.
func pushAll(t *testing.T, attacker, reg *dht.Node, envs [][]byte) {
	t.Helper()
	for _, env := range envs {
		if err := dht.Push(testCtx(t), attacker, reg.Host().ID(), env); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
}

// TestSybilsNotServedAheadOfHealthyProvider: a registry lists only
// providers whose health check passed, longest known first. 200 Sybil
// records naming dead addresses, pushed after an honest provider and a
// few live Sybils, are never listed, and the honest provider, served as
// soon as its push returned, comes first.
func TestSybilsNotServedAheadOfHealthyProvider(t *testing.T) {
	clk := newClock()
	reg := checkedRegistry(t, clk, dht.Health{Interval: time.Hour, Failures: 2})
	ctx := testCtx(t)
	honest := joined(t, nil, reg, dht.ModeClient)
	if _, err := honest.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatal(err)
	}
	finder := joined(t, nil, reg, dht.ModeClient)
	if got := listed(t, finder, reg); len(got) != 1 || got[0] != honest.Host().ID() {
		t.Fatalf("right after its publish the registry lists %v, want the honest provider %s", got, honest.Host().ID())
	}
	want := []peer.ID{honest.Host().ID()}
	for range 3 {
		live := joined(t, nil, reg, dht.ModeClient)
		if _, err := live.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
			t.Fatal(err)
		}
		want = append(want, live.Host().ID())
	}
	attacker := joined(t, nil, reg, dht.ModeClient)
	dead := deadAddr(t)
	var envs [][]byte
	for range 200 {
		env, _, _ := sybil(t, clk.Now(), dead)
		envs = append(envs, env)
	}
	pushAll(t, attacker, reg, envs)
	if got := reg.StoredRecords(); got < 204 {
		t.Fatalf("registry holds %d records, want the 204 pushed", got)
	}
	got := listed(t, finder, reg)
	if len(got) != len(want) {
		t.Fatalf("registry lists %d providers, want the %d that passed a check", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listed[%d] = %s, want %s (healthy, longest known first): got %v", i, got[i], want[i], got)
		}
	}
	res, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(want) {
		t.Fatalf("a find got %d providers, want %d", len(res), len(want))
	}
}

// TestNewRecordDoesNotResetHealth: a provider that failed its checks and
// signs a new record is checked again (at most once per Interval), but is
// not served until a check passes; nor is one deregistered that comes back.
func TestNewRecordDoesNotResetHealth(t *testing.T) {
	clk := newClock()
	reg := checkedRegistry(t, clk, dht.Health{Interval: time.Minute, Failures: 1, DeregisterAfter: 5 * time.Minute})
	attacker := joined(t, nil, reg, dht.ModeClient)
	finder := joined(t, nil, reg, dht.ModeClient)
	env, id, sign := sybil(t, clk.Now(), deadAddr(t))
	pushAll(t, attacker, reg, [][]byte{env})
	st, _ := state(reg, id)
	if st.Healthy || st.UnhealthySince.IsZero() || st.Failures != 1 {
		t.Fatalf("after a failed first check: %+v, want unhealthy after 1 failure", st)
	}
	pushAll(t, attacker, reg, [][]byte{sign(2)})
	if got := listed(t, finder, reg); len(got) != 0 {
		t.Fatalf("a re-signed record of an unhealthy provider is listed: %v", got)
	}
	if st, _ := state(reg, id); st.Failures != 1 {
		t.Fatalf("a re-sign within the Interval triggered a check: %+v", st)
	}
	clk.Advance(30 * time.Second)
	pushAll(t, attacker, reg, [][]byte{sign(3)}) // not yet an Interval since the last trigger
	clk.Advance(31 * time.Second)
	pushAll(t, attacker, reg, [][]byte{sign(4)})
	if st, _ := state(reg, id); st.Healthy || st.Failures < 2 {
		t.Fatalf("a re-sign after an Interval: %+v, want one more failed check, still unhealthy", st)
	}
	if got := listed(t, finder, reg); len(got) != 0 {
		t.Fatalf("re-signed records of an unhealthy provider are listed: %v", got)
	}
	clk.Advance(5 * time.Minute)
	eventually(t, "the unhealthy provider is deregistered", func() bool { return reg.StoredRecords() == 0 })
	pushAll(t, attacker, reg, [][]byte{sign(5)})
	if st, ok := state(reg, id); !ok || st.Healthy || st.Pending {
		t.Fatalf("a deregistered provider back with a new record: %+v, want unhealthy still", st)
	}
	if got := listed(t, finder, reg); len(got) != 0 {
		t.Fatalf("a deregistered provider's new record is listed: %v", got)
	}
}

// TestTarpitsDoNotDelayVerdicts: Sybil records naming tarpits (hosts that
// accept TCP and never answer) hold every check slot of their lane, and
// for as long as the test runs; a provider that pushes is still served at
// once, and a crashed honest provider is still found unhealthy and hidden.
func TestTarpitsDoNotDelayVerdicts(t *testing.T) {
	clk := newClock()
	reg := checkedRegistry(t, clk, dht.Health{Interval: time.Minute, Failures: 2, Timeout: time.Hour,
		DialTimeout: time.Hour, SuspectConcurrency: 4, Concurrency: 4})
	ctx := testCtx(t)
	honest := joined(t, nil, reg, dht.ModeClient)
	if _, err := honest.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatal(err)
	}
	attacker := joined(t, nil, reg, dht.ModeClient)
	var tarpits []*rawListener
	for range 12 {
		tp := listenRaw(t, true)
		tarpits = append(tarpits, tp)
		env, _, _ := sybil(t, clk.Now(), tp.addr())
		// The registry answers a push once the first check is done, which
		// a tarpit never lets happen: push and move on.
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = dht.Push(pctx, attacker, reg.Host().ID(), env)
		cancel()
	}
	eventually(t, "every tarpit record is held", func() bool { return reg.StoredRecords() == 13 })
	held := func() int64 {
		var n int64
		for _, tp := range tarpits {
			n += tp.accepted.Load()
		}
		return n
	}
	eventually(t, "the suspect lane is full of tarpit checks", func() bool { return held() >= 4 })

	// A provider that pushes now is checked on its connection, in a lane
	// of its own, and served when its publish returns.
	fresh := joined(t, nil, reg, dht.ModeClient)
	if _, err := fresh.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := state(reg, fresh.Host().ID()); !st.Healthy {
		t.Fatalf("a provider that pushed behind tarpits: %+v, want healthy at once", st)
	}

	honestID := honest.Host().ID()
	honest.Close()
	honest.Host().Close()
	finder := joined(t, nil, reg, dht.ModeClient)
	for round := 1; round <= 2; round++ {
		clk.Advance(time.Minute)
		eventually(t, "the crashed provider is checked again", func() bool {
			st, _ := state(reg, honestID)
			return st.Failures >= round
		})
	}
	if st, _ := state(reg, honestID); st.Healthy {
		t.Fatalf("the crashed provider after 2 failed checks: %+v, want unhealthy", st)
	}
	if got := listed(t, finder, reg); len(got) != 1 || got[0] != fresh.Host().ID() {
		t.Fatalf("registry lists %v, want only %s: the other honest provider crashed and the rest are tarpits", got, fresh.Host().ID())
	}
	if got := held(); got > 12 {
		t.Fatalf("tarpits were dialled %d times, want at most once each while their checks hang", got)
	}
}

// TestVictimAddressDialledOncePerRound: 300 Sybil records naming one
// victim address make the registry dial it at most once per round.
func TestVictimAddressDialledOncePerRound(t *testing.T) {
	clk := newClock()
	reg := checkedRegistry(t, clk, dht.Health{Interval: time.Minute, Failures: 100, Timeout: 5 * time.Second})
	victim := listenRaw(t, false)
	attacker := joined(t, nil, reg, dht.ModeClient)
	const n = 300
	var envs [][]byte
	var ids []peer.ID
	for range n {
		env, id, _ := sybil(t, clk.Now(), victim.addr())
		envs, ids = append(envs, env), append(ids, id)
	}
	pushAll(t, attacker, reg, envs)
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		clk.Advance(time.Minute)
		eventually(t, "every Sybil is checked once more", func() bool {
			for _, id := range ids {
				if st, _ := state(reg, id); st.Failures < round+1 {
					return false
				}
			}
			return true
		})
	}
	got := victim.accepted.Load()
	t.Logf("%d records naming one address, %d rounds: %d dials", n, rounds+1, got)
	if got > rounds+1 {
		t.Fatalf("the victim was dialled %d times in %d rounds, want at most one per round", got, rounds+1)
	}
}

// TestPrivateAddrsRefused: a registry that accepts only public provider
// addresses refuses a record naming only loopback ones, on the registry
// protocol and on a DHT PUT_VALUE alike; by default (AddrsAuto) a registry
// on 127.0.0.1 accepts them.
func TestPrivateAddrsRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		policy dht.AddrPolicy
		refuse bool
	}{
		"public": {dht.AddrsPublic, true},
		"auto":   {dht.AddrsAuto, false},
		"any":    {dht.AddrsAny, false},
	} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			reg := checkedRegistry(t, clk, dht.Health{Interval: time.Minute, Addrs: tc.policy, Timeout: time.Second})
			attacker := joined(t, nil, reg, dht.ModeClient)
			env, id, _ := sybil(t, clk.Now(), "/ip4/127.0.0.1/tcp/1", "/ip4/10.0.0.1/tcp/4001")
			err := dht.Push(testCtx(t), attacker, reg.Host().ID(), env)
			if tc.refuse != (err != nil) {
				t.Fatalf("push: %v, want refused: %v", err, tc.refuse)
			}
			if tc.refuse && !strings.Contains(err.Error(), dht.ErrPrivateAddrs.Error()) {
				t.Fatalf("push: %v, want %v", err, dht.ErrPrivateAddrs)
			}
			pm := messenger(t, attacker)
			c, _ := record.ServiceCID("development", "DatabaseService")
			// The DHT path: refused by the same rule (kad-dht logs it).
			_ = pm.PutValue(testCtx(t), reg.Host().ID(), kadrecord.MakePutRecord(record.Key(c, id), env))
			if _, held := state(reg, id); held == tc.refuse {
				t.Fatalf("registry holds the record: %v, want %v", held, !tc.refuse)
			}
			if got := reg.Rejections()[dht.ErrPrivateAddrs]; tc.refuse && got < 2 {
				t.Fatalf("%d rejections counted for %v, want the push's and the PUT_VALUE's", got, dht.ErrPrivateAddrs)
			}
		})
	}
}
