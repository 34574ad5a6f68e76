package dht_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/record"
)

// BenchmarkNetwork builds networks of 25, 100 and 200 nodes in this process
// on TCP loopback (2 registries, every node connected to both) and
// measures, for the same keys in the same run:
//
//   - find: time to the first verified result of netget's Find with the
//     fast path (registries asked directly, DHT walk alongside), of Find on
//     the DHT path alone (FindOptions.DHTOnly), and time to the first
//     provider of raw kad-dht FindProvidersAsync;
//   - the floor: one stream round trip on an open connection (open a
//     stream, one byte each way, from the fast finder to a registry, right
//     after its find) plus one envelope verification, p50 of each;
//   - provide: netget's Publish (registries pushed, then one DHT walk
//     placing provider and signed records) against raw kad-dht Provide of
//     the same CID;
//   - memory (heap in use) and goroutines per node.
//
// Each lookup uses a fresh service key, a random provider and two distinct
// random finders: one for the fast path, one for both the DHT path and raw
// kad-dht (which of the two goes first alternates), so no finder has the
// key cached from an earlier lookup; provide alternates which of netget /
// raw goes first. All nodes share two cores,
// so a publish's background DHT walk is settled (Node.Settle) before
// anything else is timed; the provide figure is the time until the record
// is findable. The sample is fixed (100 lookups, or
// $NETGET_BENCH_LOOKUPS), so run it with -benchtime=1x (scripts/bench.sh).
func BenchmarkNetwork(b *testing.B) {
	lookups := 100
	if v, err := strconv.Atoi(os.Getenv("NETGET_BENCH_LOOKUPS")); err == nil && v > 0 {
		lookups = v
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	b.Logf("open-file limit %d; node hosts keep 40-60 connections, registries all; %d lookups per size", lim.Cur, lookups)
	for _, n := range []int{25, 100, 200} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchNetwork(b, n, lookups) })
	}
}

// sample collects one kind of timing, in milliseconds, and its misses.
type sample struct {
	ms     []float64
	misses int
}

func (s *sample) add(d float64, ok bool) {
	if ok {
		s.ms = append(s.ms, d)
	} else {
		s.misses++
	}
}

func benchNetwork(b *testing.B, size, lookups int) {
	before := heapAndGoroutines()
	start := time.Now()
	net := dhttest.New(b, dhttest.Options{Network: "bench", Registries: 2, Nodes: size - 2,
		// Joining nodes refresh their tables under dhttest's bounded
		// concurrency; kad-dht's automatic refresh on join would start
		// hundreds of walks at once and starve two cores.
		Configure: func(c *dht.Config) { c.KadOptions = append(c.KadOptions, kaddht.DisableAutoRefresh()) }})
	setup := time.Since(start)
	after := heapAndGoroutines()
	mibPerNode := float64(after.heap-before.heap) / float64(size) / (1 << 20)
	goroutinesPerNode := float64(after.goroutines-before.goroutines) / float64(size)

	rng := rand.New(rand.NewPCG(uint64(size), 1))
	nodes := net.Nodes
	serveEcho(net.Registries)
	var fast, dhtOnly, raw, prov, rawProv, rtt, verify sample
	sources, dhtSources := map[dht.Source]int{}, map[dht.Source]int{}
	for i := range lookups {
		name := fmt.Sprintf("Svc%03d", i)
		c, err := record.ServiceCID("bench", name)
		if err != nil {
			b.Fatal(err)
		}
		p := rng.IntN(len(nodes))
		provider := nodes[p]
		benchProvide(b, provider, name, c, i%2 == 0, &prov, &rawProv)
		// One finder for the fast path; one for the DHT path and raw
		// kad-dht alike, so the two walks start from the same routing
		// table (a paired comparison; which goes first alternates).
		finders := pickDistinct(rng, len(nodes), 2, p)
		runs := []func(){
			func() {
				d, src, err := firstNetget(nodes[finders[0]], name, false)
				fast.add(d, err == nil)
				sources[src]++
			},
			func() {
				d, src, err := firstNetget(nodes[finders[1]], name, true)
				dhtOnly.add(d, err == nil)
				dhtSources[src]++
			},
			func() {
				d, ok := firstRaw(nodes[finders[1]], c)
				raw.add(d, ok)
			},
		}
		runs[0]()
		if i%2 == 0 {
			runs[1]()
			runs[2]()
		} else {
			runs[2]()
			runs[1]()
		}
		// The floor, in the same conditions: from the fast finder to one
		// of its registries, after its find.
		r, v := floorSample(b, nodes[finders[0]], net.Registries[i%len(net.Registries)])
		rtt.add(r, true)
		verify.add(v, true)
	}
	floor := pct(rtt.ms, 50) + pct(verify.ms, 50)
	report(b, map[string]float64{
		"fast-p50-ms": pct(fast.ms, 50), "fast-p95-ms": pct(fast.ms, 95),
		"dht-p50-ms": pct(dhtOnly.ms, 50), "dht-p95-ms": pct(dhtOnly.ms, 95),
		"raw-p50-ms": pct(raw.ms, 50), "raw-p95-ms": pct(raw.ms, 95),
		"floor-ms":       floor,
		"fast/floor":     pct(fast.ms, 50) / floor,
		"dht/raw":        pct(dhtOnly.ms, 50) / pct(raw.ms, 50),
		"provide-p50-ms": pct(prov.ms, 50), "provide-p95-ms": pct(prov.ms, 95),
		"rawprov-p50-ms": pct(rawProv.ms, 50), "rawprov-p95-ms": pct(rawProv.ms, 95),
		"provide/raw":     pct(prov.ms, 50) / pct(rawProv.ms, 50),
		"MiB/node":        mibPerNode,
		"goroutines/node": goroutinesPerNode,
		"fast-misses":     float64(fast.misses), "dht-misses": float64(dhtOnly.misses), "raw-misses": float64(raw.misses),
		"setup-s": setup.Seconds(),
	})
	b.Logf("N=%d setup %.1fs | floor %.3f ms | find p50/p95 fast %.2f/%.2f, dht-only %.2f/%.2f, raw %.2f/%.2f ms | provide %.2f/%.2f vs raw %.2f/%.2f ms | %.2f MiB, %.0f goroutines per node | misses fast %d dht %d raw %d | first-result sources: fast %v, dht-only %v",
		size, setup.Seconds(), floor, pct(fast.ms, 50), pct(fast.ms, 95), pct(dhtOnly.ms, 50), pct(dhtOnly.ms, 95),
		pct(raw.ms, 50), pct(raw.ms, 95), pct(prov.ms, 50), pct(prov.ms, 95), pct(rawProv.ms, 50), pct(rawProv.ms, 95),
		mibPerNode, goroutinesPerNode, fast.misses, dhtOnly.misses, raw.misses, sources, dhtSources)
}

// report reports every metric, in a stable order.
func report(b *testing.B, m map[string]float64) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.ReportMetric(m[k], k)
	}
}

// benchProvide publishes name from provider with netget and announces c
// with raw kad-dht Provide, netget first when netgetFirst is set.
func benchProvide(b *testing.B, provider *dht.Node, name string, c cid.Cid, netgetFirst bool, prov, rawProv *sample) {
	ctx := context.Background()
	netget := func() {
		t0 := time.Now()
		if _, err := provider.Publish(ctx, dht.Spec{Name: name}); err != nil {
			b.Fatalf("Publish %s: %v", name, err)
		}
		prov.add(ms(time.Since(t0)), true)
		// The value-store copy goes on in the background; settle it so
		// its CPU (all nodes share two cores) lands in no other timing.
		sctx, cancel := context.WithTimeout(ctx, dht.SpreadTimeout)
		defer cancel()
		if err := provider.Settle(sctx); err != nil {
			b.Fatalf("settle %s: %v", name, err)
		}
	}
	raw := func() {
		t0 := time.Now()
		if err := provider.Kad().Provide(ctx, c, true); err != nil {
			b.Fatalf("raw Provide %s: %v", name, err)
		}
		rawProv.add(ms(time.Since(t0)), true)
	}
	if netgetFirst {
		netget()
		raw()
	} else {
		raw()
		netget()
	}
}

// echoProtocol is the floor's round trip: one byte each way on a fresh
// stream over an open connection.
const echoProtocol = "/netget/bench/echo/1.0.0"

// serveEcho makes each registry answer echoProtocol.
func serveEcho(regs []*dht.Node) {
	for _, r := range regs {
		r.Host().SetStreamHandler(echoProtocol, func(s network.Stream) {
			defer s.Close()
			buf := make([]byte, 1)
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			s.Write(buf)
			// Close once the finder has: mocknet delivers what a stream
			// wrote just before it closed without the link's latency.
			io.Copy(io.Discard, s)
		})
	}
}

// floorSample times one stream round trip from a to reg on their open
// connection (a fresh stream, one byte each way) and one verification of
// a record sealed by a, in ms.
func floorSample(b *testing.B, a, reg *dht.Node) (rtt, verify float64) {
	ctx := context.Background()
	t0 := time.Now()
	s, err := a.Host().NewStream(ctx, reg.Host().ID(), echoProtocol)
	if err != nil {
		b.Fatalf("floor: open stream: %v", err)
	}
	buf := []byte{1}
	if _, err := s.Write(buf); err != nil {
		b.Fatalf("floor: write: %v", err)
	}
	if _, err := io.ReadFull(s, buf); err != nil {
		b.Fatalf("floor: read: %v", err)
	}
	rtt = ms(time.Since(t0))
	s.Close()
	now := time.Now()
	env, err := record.Seal(&record.Service{Version: record.Version, Network: "bench", Name: "Floor",
		Peer: a.Host().ID(), Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Meta: map[string]string{"k": "v"},
		Seq: 1, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, a.Host().Peerstore().PrivKey(a.Host().ID()))
	if err != nil {
		b.Fatal(err)
	}
	t0 = time.Now()
	if _, err := (record.Validator{Network: "bench"}).Open(env); err != nil {
		b.Fatal(err)
	}
	return rtt, ms(time.Since(t0))
}

// firstNetget times netget's Find to its first verified result.
func firstNetget(n *dht.Node, name string, dhtOnly bool) (float64, dht.Source, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	var d time.Duration
	var src dht.Source
	ok := false
	err := n.Find(ctx, name, dht.FindOptions{Limit: 1, DHTOnly: dhtOnly}, func(r dht.Result) bool {
		d, src, ok = time.Since(t0), r.Source, true
		return false
	})
	if err != nil && !errors.Is(err, dht.ErrFindTimeout) {
		return 0, "", err
	}
	if !ok {
		d = time.Since(t0)
		return 0, "", fmt.Errorf("nothing found after %s", d)
	}
	return ms(d), src, nil
}

// firstRaw times raw kad-dht FindProvidersAsync to its first provider.
func firstRaw(n *dht.Node, c cid.Cid) (float64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	ch := n.Kad().FindProvidersAsync(ctx, c, 1)
	_, ok := <-ch
	d := time.Since(t0)
	cancel()
	for range ch {
	}
	return ms(d), ok
}

// pickDistinct returns k distinct indexes below n, none equal to not.
func pickDistinct(rng *rand.Rand, n, k, not int) []int {
	out := make([]int, 0, k)
	for len(out) < k {
		i := rng.IntN(n)
		if i != not && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct returns the p-th percentile (nearest rank) of xs, 0 when empty.
func pct(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

type usage struct {
	heap       uint64
	goroutines int
}

func heapAndGoroutines() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{heap: m.HeapInuse, goroutines: runtime.NumGoroutine()}
}
