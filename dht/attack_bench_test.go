package dht_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// BenchmarkHealthAttacks measures, in real time on loopback, rows 3-6 of
// issue 13's table against one registry checking every second (3 failures):
// how often a find's first 32 results hold the honest provider among 1,023
// Sybil records; how many re-signed records of unhealthy Sybils are served
// at once; how long 1,000 tarpit records hide a crashed provider's removal;
// how often 2,000 records naming one address make the registry dial it in
// 20s. Run once: go test -run '^$' -bench HealthAttacks -benchtime 1x ./dht/.
// Figures vary with the machine's load.
func BenchmarkHealthAttacks(b *testing.B) {
	for range b.N {
		b.Run("sybils", benchSybils)
		b.Run("tarpits", benchTarpits)
		b.Run("victim", benchVictim)
	}
}

// attackHealth is the registry's health config in these measurements.
func attackHealth() dht.Health {
	return dht.Health{Interval: time.Second, Failures: 3, DeregisterAfter: 5 * time.Minute, Timeout: time.Second}
}

// benchRegistry starts a registry and the attackers that push to it (the
// registry rate-limits each peer: 200/s, burst 400).
func benchRegistry(b *testing.B, attackers int) (*dht.Node, []*dht.Node) {
	reg := dhttest.NewNode(b, "development", dht.ModeServer, func(c *dht.Config) { c.Health = attackHealth() })
	var as []*dht.Node
	for range attackers {
		as = append(as, benchJoined(b, reg))
	}
	return reg, as
}

func benchJoined(b *testing.B, reg *dht.Node) *dht.Node {
	n := dhttest.NewNode(b, "development", dht.ModeClient, nil)
	p2ptest.Connect(b, n.Host(), reg.Host())
	n.AddRegistry(reg.Host().ID())
	return n
}

// sybilKey signs records of one Sybil key naming addrs.
type sybilKey struct {
	key crypto.PrivKey
	id  peer.ID
}

func (s sybilKey) sign(b *testing.B, seq uint64, addrs ...string) []byte {
	svc := recordtest.Valid(s.id, time.Now())
	svc.Addrs, svc.Seq = addrs, seq
	return recordtest.SealRaw(b, svc, s.key)
}

// pushSpread pushes envs to reg from the attackers in turn, in parallel,
// each push bounded by limit; it returns how many were accepted.
func pushSpread(b *testing.B, as []*dht.Node, reg *dht.Node, envs [][]byte, limit time.Duration) int64 {
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(envs); j += len(as) {
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				if dht.Push(ctx, a, reg.Host().ID(), envs[j]) == nil {
					ok.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	return ok.Load()
}

func benchSybils(b *testing.B) {
	reg, as := benchRegistry(b, 8)
	dead := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(closedPort(b))
	keys := make([]sybilKey, 1023)
	envs := make([][]byte, len(keys))
	for i := range keys {
		keys[i].key, keys[i].id = recordtest.NewKey(b)
		envs[i] = keys[i].sign(b, 1, dead)
	}
	accepted := pushSpread(b, as, reg, envs, 10*time.Second)
	honest := benchJoined(b, reg)
	ctx := context.Background()
	_, err := honest.Publish(ctx, dht.Spec{Name: "DatabaseService"})
	b.Logf("row 3: %d Sybil records accepted; honest provider's publish: %v", accepted, err)
	finder := benchJoined(b, reg)
	hits := 0
	for range 5 {
		res, _ := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Limit: 32, Timeout: 5 * time.Second})
		for _, r := range res {
			if r.Record.Peer == honest.Host().ID() {
				hits++
			}
		}
	}
	b.Logf("row 3: the honest provider was in the first 32 results of %d of 5 finds", hits)
	c, _ := record.ServiceCID("development", "DatabaseService")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && countUnhealthy(reg) < len(keys) {
		<-time.After(100 * time.Millisecond)
	}
	b.Logf("row 4: %d of %d Sybils unhealthy; they re-sign", countUnhealthy(reg), len(keys))
	for i := range keys {
		envs[i] = keys[i].sign(b, 2, dead)
	}
	pushSpread(b, as, reg, envs, 10*time.Second)
	listedNow, _ := dht.List(ctx, finder, reg.Host().ID(), c)
	b.Logf("row 4: right after re-signing, the registry lists %d records (the honest one included)", len(listedNow))
}

// countUnhealthy counts the providers reg does not serve.
func countUnhealthy(reg *dht.Node) int {
	n := 0
	for _, st := range reg.Providers() {
		if !st.Healthy {
			n++
		}
	}
	return n
}

func closedPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// benchListener accepts TCP on 127.0.0.1, counting; hold keeps each
// connection open without a byte (a tarpit), else it is closed at once.
func benchListener(b *testing.B, hold bool) (string, *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			if !hold {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), &n
}

func benchTarpits(b *testing.B) {
	reg, as := benchRegistry(b, 4)
	honest := benchJoined(b, reg)
	if _, err := honest.Publish(context.Background(), dht.Spec{Name: "DatabaseService"}); err != nil {
		b.Fatal(err)
	}
	var envs [][]byte
	for range 50 {
		addr, _ := benchListener(b, true)
		for range 20 {
			var s sybilKey
			s.key, s.id = recordtest.NewKey(b)
			envs = append(envs, s.sign(b, 1, addr))
		}
	}
	pushSpread(b, as, reg, envs, 100*time.Millisecond)
	b.Logf("row 5: registry holds %d records", reg.StoredRecords())
	id := honest.Host().ID()
	honest.Close()
	honest.Host().Close()
	start := time.Now()
	for time.Since(start) < 90*time.Second {
		if st, ok := benchState(reg, id); ok && !st.Healthy {
			b.Logf("row 5: the crashed provider hidden after %.1fs", time.Since(start).Seconds())
			return
		}
		<-time.After(50 * time.Millisecond)
	}
	b.Logf("row 5: the crashed provider still served after 90s")
}

func benchState(reg *dht.Node, p peer.ID) (dht.ProviderState, bool) {
	for _, st := range reg.Providers() {
		if st.Peer == p {
			return st, true
		}
	}
	return dht.ProviderState{}, false
}

func benchVictim(b *testing.B) {
	reg, as := benchRegistry(b, 8)
	addr, dials := benchListener(b, false)
	var envs [][]byte
	for range 2000 {
		var s sybilKey
		s.key, s.id = recordtest.NewKey(b)
		envs = append(envs, s.sign(b, 1, addr))
	}
	start := time.Now()
	accepted := pushSpread(b, as, reg, envs, 10*time.Second)
	<-time.After(20*time.Second - time.Since(start))
	b.Logf("row 6: %d records naming one address (%d accepted): %d dials to it in 20s", len(envs), accepted, dials.Load())
}
