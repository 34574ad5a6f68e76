package dht_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// scaleProviders is how many providers each service has in
// BenchmarkRegistryScale: one hot service of 1,000 is what a list reads.
const scaleProviders = 1000

// BenchmarkRegistryScale measures a registry at scale: a synced Pebble
// datastore holding NETGET_BENCH_RECORDS (default 100,000) live records
// of as many providers (one fresh key each, signed in parallel), over
// services of 1,000 providers. It reports the time a registry takes to
// start on it (New returns and serves: records indexed unverified) and
// until every signature is checked in the background, the heap the
// registry then takes per record beyond the datastore, and lists per
// second of one hot service (1,000 providers, MaxListLimit records a
// list) by as many goroutines as CPUs, NETGET_BENCH_LISTS of them
// (default 20,000), against a baseline measured in the same run: the same
// envelopes picked from a Go map, no store. A list repeated is answered
// from what the store kept; cold-lists/s is a list computed afresh each
// time (a verdict turned before each: the sort of 1,000 providers and a
// datastore read per record), NETGET_BENCH_LISTS/20 of them. Synced
// writes, against their two floors: writeRates. With
// NETGET_BENCH_HEAPPROFILE set, it writes the heap profile there once the
// registry holds every record.
//
// Limits raised for it, explicitly: StoreLimits.Bytes (the default 256
// MiB holds about 250,000 records) to 4 GiB. PerKey (64) and PerService
// (1,024) hold as they are: every provider has one record and every
// service 1,000.
func BenchmarkRegistryScale(b *testing.B) {
	n := envInt(b, "NETGET_BENCH_RECORDS", 100000)
	lists := envInt(b, "NETGET_BENCH_LISTS", 20000)
	if n < scaleProviders {
		b.Fatalf("NETGET_BENCH_RECORDS=%d: want at least %d (one hot service)", n, scaleProviders)
	}
	dir := b.TempDir()
	start := time.Now()
	scaleDatastore(b, dir, n)
	b.Logf("datastore of %d records ready in %v", n, time.Since(start).Round(time.Millisecond))
	d := scaleOpen(b, dir)
	scanned, scan := scanFloor(b, d)
	if scanned != n {
		b.Fatalf("datastore holds %d records, want %d", scanned, n)
	}
	before := heapAndGoroutines()
	b.ResetTimer()
	start = time.Now()
	cpu0 := cpuTime()
	reg := dhttest.NewNode(b, "development", dht.ModeServer, func(c *dht.Config) {
		c.Datastore = d
		c.Store.Bytes = 4 << 30
	})
	startup, startupCPU := time.Since(start), cpuTime()-cpu0
	waitFor(b, 30*time.Minute, func() bool { return dht.Unverified(reg) == 0 })
	verified, verifiedCPU := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if got := reg.StoredRecords(); got != n {
		b.Fatalf("registry holds %d records, want %d", got, n)
	}
	after := heapAndGoroutines()
	if path := os.Getenv("NETGET_BENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path) // what the registry holds, while it holds it
	}
	hot, err := record.ServiceCID("development", scaleName(0))
	if err != nil {
		b.Fatal(err)
	}
	all := dht.ListHeld(reg, hot, scaleProviders)
	if len(all) != scaleProviders {
		b.Fatalf("hot service lists %d records, want %d", len(all), scaleProviders)
	}
	listRate := listsPerSecond(b, lists, registry.MaxListLimit, func() int { return len(dht.ListHeld(reg, hot, registry.MaxListLimit)) })
	coldRate := listsPerSecond(b, lists/20, registry.MaxListLimit, func() int {
		dht.TurnVerdicts(reg) // a verdict turned: the kept answer is stale
		return len(dht.ListHeld(reg, hot, registry.MaxListLimit))
	})
	floor := map[cid.Cid][][]byte{hot: all}
	baseRate := listsPerSecond(b, lists, registry.MaxListLimit, func() int { return len(slices.Clone(floor[hot][:registry.MaxListLimit])) })
	pages := pagedRates(b, reg, hot, floor, lists)
	w := writeRates(b, reg, d, n)
	b.ReportMetric(float64(n), "records")
	w.report(b)
	b.ReportMetric(startup.Seconds(), "startup-s")
	b.ReportMetric(startupCPU.Seconds(), "startup-cpu-s")
	b.ReportMetric(scan.Seconds(), "scan-s")
	b.ReportMetric(startup.Seconds()/scan.Seconds(), "startup/scan")
	b.ReportMetric(verified.Seconds(), "verified-s")
	b.ReportMetric(verifiedCPU.Seconds(), "verified-cpu-s")
	b.ReportMetric(float64(int64(after.heap)-int64(before.heap))/float64(n), "heap-B/record")
	b.ReportMetric(listRate, "lists/s")
	b.ReportMetric(coldRate, "cold-lists/s")
	b.ReportMetric(baseRate, "baseline-lists/s")
	b.ReportMetric(listRate/baseRate, "lists/baseline")
	b.ReportMetric(pages.page, "pages100/s")
	b.ReportMetric(pages.basePage, "baseline-pages100/s")
	b.ReportMetric(pages.page/pages.basePage, "pages100/baseline")
	b.ReportMetric(pages.walk, "walks/s")
	b.ReportMetric(pages.baseWalk, "baseline-walks/s")
	b.ReportMetric(pages.walk/pages.baseWalk, "walks/baseline")
	b.ReportMetric(pages.coldPage, "cold-pages100/s")
	b.ReportMetric(float64(pages.walkPages), "pages/walk")
	runtime.KeepAlive(reg)
}

// scaleOpen opens the datastore in dir as a registry does, with a
// memtable of NETGET_BENCH_MEMTABLE_MIB if set (default
// store.DefaultMemtableBytes; 4 is Pebble's own default, the size before
// it): the writes' figures depend on it.
func scaleOpen(b *testing.B, dir string) ds.Batching {
	b.Helper()
	d, err := dht.OpenDatastoreWith(dir, scaleDatastoreOptions(b))
	if err != nil {
		b.Fatalf("open datastore: %v", err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// scaleDatastoreOptions are the datastore options of
// BenchmarkRegistryScale's registry and of its floors.
func scaleDatastoreOptions(b *testing.B) dht.DatastoreOptions {
	var o dht.DatastoreOptions
	if os.Getenv("NETGET_BENCH_MEMTABLE_MIB") != "" {
		o.MemtableBytes = int64(envInt(b, "NETGET_BENCH_MEMTABLE_MIB", 0)) << 20
	}
	b.Logf("datastore memtable: %d MiB (0: the default, %d MiB)", o.MemtableBytes>>20, store.DefaultMemtableBytes>>20)
	return o
}

// scanFloor reads every netget record of d in key order straight from
// Pebble, copying each key and value and nothing more: the floor of any
// start-up from that datastore, measured on the same files in the same
// run. It also brings them into the page cache, so the start-up after it
// reads warm files too (a start-up from a cold disk adds the disk's own
// read time to both). It returns how many it read and how long it took.
func scanFloor(b *testing.B, d ds.Batching) (int, time.Duration) {
	b.Helper()
	pd, ok := d.(*pebbleds.Datastore)
	if !ok {
		b.Fatalf("datastore is a %T, want Pebble's", d)
	}
	start := time.Now()
	it, err := pd.DB.NewIter(&pebble.IterOptions{LowerBound: []byte("/netget/"), UpperBound: []byte("/netget0")})
	if err != nil {
		b.Fatal(err)
	}
	n, sum := 0, 0
	var buf []byte
	for ok := it.First(); ok; ok = it.Next() {
		buf = append(append(buf[:0], it.Key()...), it.Value()...)
		n, sum = n+1, sum+len(buf)
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.Logf("scan floor: %d records, %d MiB in %v", n, sum>>20, elapsed.Round(time.Millisecond))
	return n, elapsed
}

// pageFigures are the paged-list rates of BenchmarkRegistryScale.
type pageFigures struct {
	page, basePage, coldPage float64 // pages of 100 a second
	walk, baseWalk           float64 // walks of all 1,000 a second
	walkPages                int     // pages one walk of all 1,000 takes
}

// pagedRates measures paged lists of the hot service c of reg, as its
// registry-protocol handler serves them without the stream: pages of 100
// (each of the 10 pages in turn, from its cursor), a fresh page of 100
// (a verdict turned before each: the sorted copy rebuilt from the
// datastore), and walks of all 1,000 providers in pages of MaxPageLimit
// (each cut at PageBytes); against the same slices of the same envelopes
// picked from a Go map, no store, in the same run.
func pagedRates(b *testing.B, reg *dht.Node, c cid.Cid, floor map[cid.Cid][][]byte, lists int) pageFigures {
	b.Helper()
	const size = 100
	var cursors []peer.ID
	var after peer.ID
	for {
		cursors = append(cursors, after)
		page, next := dht.PageHeld(reg, c, after, size)
		if len(page) != size {
			b.Fatalf("page after %q holds %d records, want %d", after, len(page), size)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(cursors) != scaleProviders/size {
		b.Fatalf("a walk in pages of %d took %d pages, want %d", size, len(cursors), scaleProviders/size)
	}
	var f pageFigures
	var turn atomic.Int64
	f.page = listsPerSecond(b, lists, size, func() int {
		page, _ := dht.PageHeld(reg, c, cursors[turn.Add(1)%int64(len(cursors))], size)
		return len(page)
	})
	f.basePage = listsPerSecond(b, lists, size, func() int {
		i := int(turn.Add(1) % int64(len(cursors)))
		return len(slices.Clone(floor[c][i*size : (i+1)*size]))
	})
	f.coldPage = listsPerSecond(b, max(lists/200, 20), size, func() int {
		dht.TurnVerdicts(reg)
		page, _ := dht.PageHeld(reg, c, cursors[turn.Add(1)%int64(len(cursors))], size)
		return len(page)
	})
	walk := func() (records, pages int) {
		var after peer.ID
		for {
			page, next := dht.PageHeld(reg, c, after, registry.MaxPageLimit)
			records, pages = records+len(page), pages+1
			if next == "" {
				return records, pages
			}
			after = next
		}
	}
	_, f.walkPages = walk()
	f.walk = listsPerSecond(b, lists/10, scaleProviders, func() int { n, _ := walk(); return n })
	f.baseWalk = listsPerSecond(b, lists/10, scaleProviders, func() int { return len(slices.Clone(floor[c])) })
	return f
}

// listsPerSecond runs list total times from as many goroutines as CPUs
// (for at most a minute) and returns how many it ran per second. Each must
// return want records.
func listsPerSecond(b *testing.B, total, want int, list func() int) float64 {
	b.Helper()
	var done, bad atomic.Int64
	deadline := time.Now().Add(time.Minute)
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for done.Add(1) <= int64(total) && time.Now().Before(deadline) {
				if list() != want {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bad.Load() > 0 {
		b.Fatalf("%d lists did not return %d records", bad.Load(), want)
	}
	return float64(min(done.Load(), int64(total))) / elapsed.Seconds()
}

// fillScale writes n records of n fresh providers, scaleProviders per
// service, into d as a registry files them: keys generated and records
// signed by as many workers as CPUs, committed in batches.
func fillScale(b *testing.B, d ds.Batching, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	const perBatch = 5000
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			batch, err := d.Batch(ctx)
			pending := 0
			for i := w; i < n && err == nil; i += workers {
				var priv crypto.PrivKey
				if priv, _, err = crypto.GenerateEd25519Key(nil); err != nil {
					break
				}
				key, val := sealedScale(b, priv, i, now)
				if err = batch.Put(ctx, key, val); err != nil {
					break
				}
				if pending++; pending == perBatch {
					if err = batch.Commit(ctx); err == nil {
						batch, err = d.Batch(ctx)
					}
					pending = 0
				}
			}
			if err == nil {
				err = batch.Commit(ctx)
			}
			if err != nil {
				b.Errorf("fill datastore: %v", err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// scaleCacheTTL is how long a generated datastore is reused: its records
// live scaleTTL, and a registry started on one must find them all live.
const (
	scaleTTL      = 24*time.Hour - 2*time.Minute
	scaleCacheTTL = 20 * time.Hour
)

// scaleDatastore makes dir a Pebble datastore of n records as fillScale
// writes them. Signing a million records takes minutes, so the first run
// generates them under NETGET_BENCH_CACHE (default ../bench-results, the
// repository's git-ignored results directory) in scale-<n>, and later runs
// within scaleCacheTTL copy that (its immutable tables hard-linked): the
// benchmark itself adds and changes records, never in the cached copy.
// NETGET_BENCH_CACHE=off generates into dir every time.
func scaleDatastore(b *testing.B, dir string, n int) {
	b.Helper()
	root := os.Getenv("NETGET_BENCH_CACHE")
	if root == "off" {
		d, err := dht.OpenDatastore(dir)
		if err != nil {
			b.Fatalf("open datastore: %v", err)
		}
		fillScale(b, d, n)
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
		return
	}
	if root == "" {
		root = filepath.Join("..", "bench-results")
	}
	cache := filepath.Join(root, fmt.Sprintf("scale-%d", n))
	stamp := filepath.Join(cache, "NETGET-FILLED")
	fi, err := os.Stat(stamp)
	if err != nil || time.Since(fi.ModTime()) > scaleCacheTTL {
		b.Logf("generating %d records into %s (reused for %v)", n, cache, scaleCacheTTL)
		if err := os.RemoveAll(cache); err != nil {
			b.Fatal(err)
		}
		d, err := dht.OpenDatastore(cache)
		if err != nil {
			b.Fatalf("open datastore: %v", err)
		}
		fillScale(b, d, n)
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(stamp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	copyPebble(b, cache, dir)
}

// copyPebble copies the closed Pebble datastore src into dst: its .sst
// tables, which Pebble never rewrites, as hard links; the rest as copies.
func copyPebble(b *testing.B, src, dst string) {
	b.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.IsDir() || e.Name() == "NETGET-FILLED" || e.Name() == "LOCK" {
			continue
		}
		if strings.HasSuffix(e.Name(), ".sst") && os.Link(from, to) == nil {
			continue
		}
		data, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(to, data, 0o600)
		}
		if err != nil {
			b.Fatalf("copy cached datastore: %v", err)
		}
	}
}

// scaleName is the name of service i of BenchmarkRegistryScale.
func scaleName(i int) string { return fmt.Sprintf("Svc%05d", i) }

// sealedScale is record i of BenchmarkRegistryScale, signed by priv.
func sealedScale(b testing.TB, priv crypto.PrivKey, i int, now time.Time) (ds.Key, []byte) {
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	s := recordtest.Valid(id, now)
	s.ExpiresAt = s.IssuedAt.Add(scaleTTL) // live while the datastore is reused
	s.Name = scaleName(i / scaleProviders)
	s.Meta = map[string]string{"region": "eu-west", "engine": "postgres", "i": fmt.Sprint(i)}
	return filed(b, s, priv)
}

// waitFor waits until cond holds, checking every 100 ms, for at most max.
func waitFor(b *testing.B, max time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(max)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("condition not met within %v", max)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeHeapProfile writes the heap profile to path.
func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// envInt reads a positive integer from the environment, or returns def.
