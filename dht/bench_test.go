package dht_test

import (
	"context"
	"fmt"
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

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/record"
)

// BenchmarkNetwork builds networks of 25, 100 and 200 nodes in this process
// on TCP loopback and measures, for the same keys in the same run:
//
//   - find: time to the first verified result of netget's Find, against
//     time to the first provider of raw kad-dht FindProvidersAsync;
//   - provide: netget's Publish (signed record put + provider record,
//     concurrently) against raw kad-dht Provide of the same CID;
//   - memory (heap in use) and goroutines per node.
//
// Each lookup uses a fresh service key, a random provider and two distinct
// random finders that swap roles (netget / raw) every lookup, so neither
// finder has the key cached from an earlier lookup. Provide alternates which
// of netget / raw goes first, and find which runs first. All nodes share two
// cores, so a publish's background value-store put is settled (Node.Settle)
// before anything else is timed; it is not part of the provide figure,
// which is the time until the record is findable. The sample is fixed (30 lookups, or
// $NETGET_BENCH_LOOKUPS), so run it with -benchtime=1x (scripts/bench.sh).
func BenchmarkNetwork(b *testing.B) {
	lookups := 30
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
	var find, rawFind, prov, rawProv []float64
	misses, rawMisses := 0, 0
	sources := map[dht.Source]int{}
	ctx := context.Background()
	for i := range lookups {
		name := fmt.Sprintf("Svc%03d", i)
		c, err := record.ServiceCID("bench", name)
		if err != nil {
			b.Fatal(err)
		}
		p := rng.IntN(len(nodes))
		provider := nodes[p]
		netgetProvide := func() {
			t0 := time.Now()
			if _, err := provider.Publish(ctx, dht.Spec{Name: name}); err != nil {
				b.Fatalf("Publish %s: %v", name, err)
			}
			prov = append(prov, ms(time.Since(t0)))
		}
		rawProvide := func() {
			t0 := time.Now()
			if err := provider.Kad().Provide(ctx, c, true); err != nil {
				b.Fatalf("raw Provide %s: %v", name, err)
			}
			rawProv = append(rawProv, ms(time.Since(t0)))
		}
		// Publish leaves its value-store copy to the background; settle it
		// so its CPU (all nodes share two cores) lands in no other timing.
		settle := func() {
			sctx, cancel := context.WithTimeout(ctx, dht.ValuePutTimeout)
			defer cancel()
			if err := provider.Settle(sctx); err != nil {
				b.Fatalf("settle %s: %v", name, err)
			}
		}
		if i%2 == 0 {
			netgetProvide()
			settle()
			rawProvide()
		} else {
			rawProvide()
			netgetProvide()
			settle()
		}

		f1, f2 := pickTwo(rng, len(nodes), p)
		netgetFinder, rawFinder := nodes[f1], nodes[f2]
		if i%2 == 1 {
			netgetFinder, rawFinder = rawFinder, netgetFinder
		}
		netgetFind := func() {
			if d, src, err := firstNetget(netgetFinder, name); err == nil {
				find = append(find, d)
				sources[src]++
			} else {
				misses++
				again, err2 := netgetFinder.FindAll(ctx, name, dht.FindOptions{})
				b.Logf("miss: %s from %s (rt %d): %v; a second find got %d results (%v); rejections %v",
					name, netgetFinder.Host().ID(), netgetFinder.RoutingTableSize(), err, len(again), err2, netgetFinder.Rejections())
			}
		}
		rawFindOnce := func() {
			if d, ok := firstRaw(rawFinder, c); ok {
				rawFind = append(rawFind, d)
			} else {
				rawMisses++
			}
		}
		if i%4 < 2 {
			netgetFind()
			rawFindOnce()
		} else {
			rawFindOnce()
			netgetFind()
		}
	}

	fp50, fp95 := pct(find, 50), pct(find, 95)
	rp50, rp95 := pct(rawFind, 50), pct(rawFind, 95)
	pp50, pp95 := pct(prov, 50), pct(prov, 95)
	qp50, qp95 := pct(rawProv, 50), pct(rawProv, 95)
	b.ReportMetric(fp50, "find-p50-ms")
	b.ReportMetric(fp95, "find-p95-ms")
	b.ReportMetric(rp50, "rawfind-p50-ms")
	b.ReportMetric(rp95, "rawfind-p95-ms")
	b.ReportMetric(fp50/rp50, "find-ratio-p50")
	b.ReportMetric(pp50, "provide-p50-ms")
	b.ReportMetric(pp95, "provide-p95-ms")
	b.ReportMetric(qp50, "rawprovide-p50-ms")
	b.ReportMetric(qp95, "rawprovide-p95-ms")
	b.ReportMetric(pp50/qp50, "provide-ratio-p50")
	b.ReportMetric(mibPerNode, "MiB/node")
	b.ReportMetric(goroutinesPerNode, "goroutines/node")
	b.ReportMetric(float64(misses), "misses")
	b.ReportMetric(float64(rawMisses), "rawmisses")
	b.Logf("N=%d setup %.1fs | find p50/p95 %.2f/%.2f ms vs raw %.2f/%.2f ms (x%.2f) | provide %.2f/%.2f ms vs raw %.2f/%.2f ms (x%.2f) | %.2f MiB, %.0f goroutines per node | misses %d (raw %d) | first-result sources %v",
		size, setup.Seconds(), fp50, fp95, rp50, rp95, fp50/rp50, pp50, pp95, qp50, qp95, pp50/qp50,
		mibPerNode, goroutinesPerNode, misses, rawMisses, sources)
}

// firstNetget times netget's Find to its first verified result.
func firstNetget(n *dht.Node, name string) (float64, dht.Source, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	ch, err := n.Find(ctx, name, dht.FindOptions{Limit: 1})
	if err != nil {
		return 0, "", err
	}
	r, ok := <-ch
	d := time.Since(t0)
	cancel()
	for range ch {
	}
	if !ok {
		return 0, "", fmt.Errorf("nothing found after %s", d)
	}
	return ms(d), r.Source, nil
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

func pickTwo(rng *rand.Rand, n, not int) (int, int) {
	a := rng.IntN(n)
	for a == not {
		a = rng.IntN(n)
	}
	c := rng.IntN(n)
	for c == not || c == a {
		c = rng.IntN(n)
	}
	return a, c
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
