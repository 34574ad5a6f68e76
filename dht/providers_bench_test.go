package dht_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

// BenchmarkProviderFlood floods a DHT server (with a Pebble datastore,
// and with the in-memory default) with $NETGET_FLOOD (default 20,000)
// ADD_PROVIDER messages for random keys from one attacker host and reports
// the process's heap and RSS growth and the datastore's growth. Attacker
// and victim share the process. Run it once:
//
//	NETGET_FLOOD=1000000 go test ./dht -run '^$' -bench ProviderFlood -benchtime 1x
func BenchmarkProviderFlood(b *testing.B) {
	b.Run("pebble", func(b *testing.B) { benchmarkProviderFlood(b, true) })
	b.Run("memory", func(b *testing.B) { benchmarkProviderFlood(b, false) })
}

func benchmarkProviderFlood(b *testing.B, persistent bool) {
	count := 20_000
	if s := os.Getenv("NETGET_FLOOD"); s != "" {
		var err error
		if count, err = strconv.Atoi(s); err != nil || count <= 0 || count > 10_000_000 {
			b.Fatalf("NETGET_FLOOD=%q: want 1..10000000", s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := b.TempDir()
	cfg := dht.DefaultConfig("development")
	if persistent {
		store, err := dht.OpenDatastore(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		cfg.Datastore = store
	}
	victim, err := dht.New(p2ptest.NewHost(b), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer victim.Close()
	attacker := newKadFlooder(b, ctx, p2ptest.NewHost(b), victim.Host())
	heap0, rss0, disk0 := memStats(), rssBytes(b), dirBytes(dir)
	b.ResetTimer()
	for range b.N {
		attacker.flood(b, count)
	}
	b.StopTimer()
	victim.Close() // kad-dht commits its buffered writes
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	b.ReportMetric(mib(int64(memStats())-int64(heap0)), "heap-MiB")
	b.ReportMetric(mib(rssBytes(b)-rss0), "rss-MiB")
	b.ReportMetric(mib(dirBytes(dir)-disk0), "disk-MiB")
	b.ReportMetric(float64(count), "msgs")
	b.Logf("rss %.0f MiB -> %.0f MiB", mib(rss0), mib(rssBytes(b)))
}

// memStats returns the heap in use after a collection.
func memStats() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// dirBytes returns the total size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
