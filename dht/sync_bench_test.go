package dht_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// syncBenchRegistry starts a registry for the sync benchmarks: sync on
// (reconciling only when a peer connects: Interval 1h), no health checks
// (the providers are keys, not hosts; health is local to each registry and
// not part of sync), quotas sized for 100,000 records of 100 services.
func syncBenchRegistry(b *testing.B, records int) *dht.Node {
	b.Helper()
	return dhttest.NewNodeOn(b, p2ptest.NewHost(b), "development", dht.ModeServer, func(c *dht.Config) {
		c.Sync = dht.RegistrySync()
		c.Sync.Interval = time.Hour
		c.Store.PerService = max(records/100, dht.MaxRecordsPerService)
		c.RequestRate, c.RequestBurst = 1e9, 1e9
	})
}

// sealMany seals one record for each of n fresh keys over 100 services,
// on every core.
func sealMany(b *testing.B, n int) ([][]byte, int) {
	b.Helper()
	out := make([][]byte, n)
	now := time.Now()
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				key, id := recordtest.NewKey(b)
				s := recordtest.Valid(id, now)
				s.Name = fmt.Sprintf("Svc%03d", i%100)
				s.Meta = map[string]string{"region": "eu-west", "engine": "postgres", "i": fmt.Sprint(i)}
				env, err := record.Seal(s, key)
				if err != nil {
					b.Error(err)
					return
				}
				out[i] = env
			}
		})
	}
	wg.Wait()
	size := 0
	for _, env := range out {
		size += len(env)
	}
	return out, size
}

// BenchmarkSyncCatchUp: a registry holds 10,000 or 100,000 records; an
// empty registry connects to it and catches up in one reconciliation
// (digest, then pulls of every range). It reports the time from connect
// to the last record stored, the bytes the newcomer read, and their ratio
// to the bytes of the records themselves (in-memory datastores; each
// record verified on arrival).
func BenchmarkSyncCatchUp(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			envs, size := sealMany(b, n)
			full := syncBenchRegistry(b, n)
			if err := dht.Load(ctx, full, envs); err != nil {
				b.Fatal(err)
			}
			joiner := syncBenchRegistry(b, n)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			p2ptest.Connect(b, joiner.Host(), full.Host())
			deadline := time.Now().Add(5 * time.Minute)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for st := joiner.SyncStatus(); st.Rounds == 0 || joiner.StoredRecords() < n; st = joiner.SyncStatus() {
				if time.Now().After(deadline) || st.Rounds > 0 {
					b.Fatalf("joiner holds %d of %d records after its reconciliation (sync %+v)", joiner.StoredRecords(), n, st)
				}
				<-tick.C
			}
			elapsed := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			st := joiner.SyncStatus()
			b.ReportMetric(cpu.Seconds(), "cpu-s")
			b.ReportMetric(elapsed.Seconds(), "catchup-s")
			b.ReportMetric(float64(size)/(1<<20), "records-MiB")
			b.ReportMetric(float64(st.LastBytes)/(1<<20), "read-MiB")
			b.ReportMetric(float64(st.LastBytes)/float64(size), "read/records")
			b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
			b.Logf("%d records (%.1f MiB): caught up in %.2fs (%.2fs of CPU, both registries), read %.1f MiB (%.2f× the records), rounds %d, last error %q",
				n, float64(size)/(1<<20), elapsed.Seconds(), cpu.Seconds(), float64(st.LastBytes)/(1<<20), float64(st.LastBytes)/float64(size),
				st.Rounds, st.LastError)
		})
	}
}

// BenchmarkSyncPropagation: 3 or 10 registries, each connected to every
// other; a client pushes a fresh record to the first, and the benchmark
// times, from the moment the push starts, until every other registry holds
// it. The first registry forwards a record as soon as it stored it, before
// it answers the push. The baseline is that push's own round trip,
// measured in the same run: a forward is one more such exchange, so the
// ratio says how many stream round trips it took for the record to be
// everywhere (the target is 2: the push, then the forwards in parallel).
func BenchmarkSyncPropagation(b *testing.B) {
	const samples = 100
	for _, size := range []int{3, 10} {
		b.Run(fmt.Sprintf("registries=%d", size), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			regs := make([]*dht.Node, size)
			for i := range regs {
				regs[i] = syncBenchRegistry(b, 0)
			}
			arrived := make(chan string, samples*size)
			for _, r := range regs[1:] {
				id := r.Host().ID().String()
				dht.ObserveSync(r, func([]byte) { arrived <- id })
			}
			for i, r := range regs {
				for _, o := range regs[i+1:] {
					p2ptest.Connect(b, r.Host(), o.Host())
				}
			}
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for _, r := range regs {
				for deadline := time.Now().Add(30 * time.Second); len(r.SyncStatus().Peers) < size-1; <-tick.C {
					if time.Now().After(deadline) {
						b.Fatalf("registry syncs with %d of %d", len(r.SyncStatus().Peers), size-1)
					}
				}
			}
			client := dhttest.NewNode(b, "development", dht.ModeClient, nil)
			p2ptest.Connect(b, client.Host(), regs[0].Host())
			envs, _ := sealMany(b, samples)
			var prop, rtt []float64
			b.ResetTimer()
			for i := range samples {
				start := time.Now()
				if err := dht.Push(ctx, client, regs[0].Host().ID(), envs[i]); err != nil {
					b.Fatal(err)
				}
				took := time.Now()
				rtt = append(rtt, ms(took.Sub(start)))
				for range size - 1 {
					select {
					case <-arrived:
					case <-time.After(10 * time.Second):
						b.Fatalf("sample %d: a registry never got the record", i)
					}
				}
				prop = append(prop, ms(time.Since(start)))
			}
			b.StopTimer()
			report(b, map[string]float64{
				"prop-p50-ms": pct(prop, 50), "prop-p95-ms": pct(prop, 95),
				"rtt-p50-ms": pct(rtt, 50), "prop/rtt": pct(prop, 50) / pct(rtt, 50),
			})
			b.Logf("%d registries: propagation p50 %.3f ms, p95 %.3f ms; push round trip p50 %.3f ms (%.2f round trips)",
				size, pct(prop, 50), pct(prop, 95), pct(rtt, 50), pct(prop, 50)/pct(rtt, 50))
		})
	}
}

// cpuTime returns the CPU time (user and system) this process used so far:
// a figure the other processes of a shared machine do not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
