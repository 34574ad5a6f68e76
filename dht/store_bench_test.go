package dht_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// BenchmarkOneKeyFlood is the attack "one key puts 20,000 records under
// different service names": one signing key, 20,000 services, pushed to a
// registry on a synced Pebble datastore by 4 concurrent senders. It reports
// how many the registry accepted and the process's heap and RSS growth.
func BenchmarkOneKeyFlood(b *testing.B) {
	const records, senders = 20000, 4
	key, id := recordtest.NewKey(b)
	now := time.Now()
	envs := make([][]byte, records)
	for i := range envs {
		s := recordtest.Valid(id, now)
		s.Name = fmt.Sprintf("Flood%05d", i)
		s.Meta = map[string]string{"region": "eu-west", "engine": "postgres", "i": fmt.Sprint(i)}
		envs[i] = recordtest.SealRaw(b, s, key)
	}
	reg := dhttest.NewNode(b, "development", dht.ModeServer, func(c *dht.Config) {
		c.Datastore = openStore(b, b.TempDir())
		c.RequestRate, c.RequestBurst = 1e9, 1e9 // the quota under test is the store's, not the rate
	})
	clients := make([]*dht.Node, senders)
	for i := range clients {
		clients[i] = dhttest.NewNode(b, "development", dht.ModeClient, nil)
		p2ptest.Connect(b, clients[i].Host(), reg.Host())
	}
	before, rssBefore := heapAndGoroutines(), rssBytes(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for j := i; j < len(envs); j += senders {
				_ = dht.Push(context.Background(), c, reg.Host().ID(), envs[j]) // refusals are the point
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	after := heapAndGoroutines()
	b.ReportMetric(float64(reg.StoredRecords()), "accepted")
	b.ReportMetric(float64(int64(after.heap)-int64(before.heap))/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rssBytes(b)-rssBefore)/(1<<20), "rss-MiB")
	runtime.KeepAlive(reg)
}

// BenchmarkRegistryRestart measures what a registry holding 100,000 records
// on a Pebble datastore costs to start: the time New takes to verify and
// index them, and the heap they then take per record.
func BenchmarkRegistryRestart(b *testing.B) {
	const records = 100000
	dir := b.TempDir()
	d := openStore(b, dir)
	fillDatastore(b, d, records)
	for b.Loop() {
		runtime.GC()
		before := heapAndGoroutines()
		start := time.Now()
		reg := dhttest.NewNode(b, "development", dht.ModeServer, func(c *dht.Config) { c.Datastore = d })
		elapsed := time.Since(start)
		if got := reg.StoredRecords(); got != records {
			b.Fatalf("registry holds %d records, want %d", got, records)
		}
		runtime.GC()
		after := heapAndGoroutines()
		b.ReportMetric(elapsed.Seconds(), "restart-s")
		b.ReportMetric(float64(int64(after.heap)-int64(before.heap))/records, "heap-B/record")
		reg.Close()
	}
}

// fillDatastore writes n valid records of n distinct providers (over 1,000
// services) into d as a registry files them, in batches, without a node.
func fillDatastore(b testing.TB, d ds.Batching, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			batch, err := d.Batch(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			for i := w; i < n; i += workers {
				priv, _, err := crypto.GenerateEd25519Key(nil)
				if err != nil {
					b.Error(err)
					return
				}
				key, val := sealedFor(b, priv, i, now)
				mu.Lock()
				err = batch.Put(ctx, key, val)
				mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
			if err := batch.Commit(ctx); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// sealedFor seals record i for priv and returns its datastore key and the
// kad record protobuf filed under it.
func sealedFor(b testing.TB, priv crypto.PrivKey, i int, now time.Time) (ds.Key, []byte) {
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	s := recordtest.Valid(id, now)
	s.Name = fmt.Sprintf("Svc%03d", i%1000)
	s.Meta = map[string]string{"region": "eu-west", "engine": "postgres", "i": fmt.Sprint(i)}
	return filed(b, s, priv)
}

// filed seals s with priv (whatever its peer) and returns where a registry
// files it and the kad record protobuf it files.
func filed(b testing.TB, s *record.Service, priv crypto.PrivKey) (ds.Key, []byte) {
	env := recordtest.SealRaw(b, s, priv)
	id := s.Peer
	c, err := record.ServiceCID(s.Network, s.Name)
	if err != nil {
		b.Fatal(err)
	}
	k := record.Key(c, id)
	val, err := proto.Marshal(&recpb.Record{Key: []byte(k), Value: env})
	if err != nil {
		b.Fatal(err)
	}
	return ds.NewKey("/" + record.Namespace + "/" + base32.RawStdEncoding.EncodeToString([]byte(k))), val
}

// rssBytes returns the process's resident set size (Linux).
func rssBytes(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}
