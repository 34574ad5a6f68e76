package dht_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// BenchmarkRegistryWrite measures a registry's write path: signed records
// from 10,000 distinct providers pushed to one registry over the registry
// protocol (one stream each, verified and stored, the path every provide
// takes), by 8 concurrent senders, with the store in memory and on a
// synced Pebble datastore; then on Pebble with 8 pushes in flight per
// sender (64 at once, as many providers pushing together): concurrent
// synced puts share one fsync, so it is the pushes in flight, not the
// disk, that bound a synced registry. It reports records accepted per
// second and the registry's heap per 10,000 stored records (in-memory
// store).
func BenchmarkRegistryWrite(b *testing.B) {
	const records, senders = 10000, 8
	envs := signedRecords(b, records)
	for _, run := range []struct {
		name, backend string
		inFlight      int // pushes in flight per sender
	}{{"memory", "memory", 1}, {"pebble", "pebble", 1}, {"pebble-64-in-flight", "pebble", 8}} {
		backend := run.backend
		b.Run(run.name, func(b *testing.B) {
			var store ds.Batching
			if backend == "pebble" {
				store = openStore(b, b.TempDir())
			}
			reg := dhttest.NewNode(b, "development", dht.ModeServer, func(c *dht.Config) {
				c.Datastore = store
				c.RequestRate, c.RequestBurst = 1e9, 1e9 // one sender pushes many providers' records
				c.Store.PerSource = records              // and all of them come from 127.0.0.1
			})
			clients := make([]*dht.Node, senders)
			for i := range clients {
				clients[i] = dhttest.NewNode(b, "development", dht.ModeClient, nil)
				p2ptest.Connect(b, clients[i].Host(), reg.Host())
			}
			before := heapAndGoroutines() // the nodes are up: what follows is the records
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, c := range clients {
				for k := range run.inFlight {
					wg.Go(func() {
						step := senders * run.inFlight
						for j := i*run.inFlight + k; j < len(envs); j += step {
							if err := dht.Push(context.Background(), c, reg.Host().ID(), envs[j]); err != nil {
								b.Errorf("push %d: %v", j, err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if got := reg.StoredRecords(); got != records {
				b.Fatalf("registry holds %d records, want %d", got, records)
			}
			after := heapAndGoroutines()
			b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
			if backend == "memory" {
				b.ReportMetric(float64(after.heap-before.heap)/(1<<20), "MiB/10k-records")
			}
			runtime.KeepAlive(reg)
		})
	}
}

// signedRecords seals one record for each of n fresh peers, over 100 services.
func signedRecords(b *testing.B, n int) [][]byte {
	b.Helper()
	now := time.Now()
	out := make([][]byte, n)
	for i := range out {
		key, id := recordtest.NewKey(b)
		s := recordtest.Valid(id, now)
		s.Name = fmt.Sprintf("Svc%03d", i%100) // 100 services of 100 providers
		s.Meta = map[string]string{"region": "eu-west", "engine": "postgres", "i": fmt.Sprint(i)}
		env, err := record.Seal(s, key)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = env
	}
	return out
}
