package dht_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// writeRounds is how many turns the registry's synced writes and their
// like-for-like floor take, alternating which goes first, so neither
// inherits more of the other's compaction debt or GC cycle than it
// leaves, and the other engineers' load on the machine falls on both.
const writeRounds = 10

// writeFigures are the synced-write figures of BenchmarkRegistryScale.
type writeFigures struct {
	synced   writePhase // the registry's write path on its loaded datastore
	sameDS   writePhase // floor: verify + synced put into that same datastore
	settle   writePhase // after both: the memtable flushed, compactions done
	freshDS  writePhase // floor: verify + synced put into a fresh datastore
	memory   writePhase // the registry's write path on an in-memory store
	records  int        // records the loaded datastore held before
	profiled string     // where the profiles went, if anywhere
}

// writePhase is one kind of write, measured: writes, wall time, process
// CPU, the GC cycles and GC CPU (runtime/metrics) that fell in it, and
// what its Pebble database wrote meanwhile (its compactions run in the
// background: a turn may pay for the turn before).
type writePhase struct {
	writes     int
	wall       time.Duration
	cpu        time.Duration
	gcCycles   uint64
	gcCPU      float64 // seconds
	allocBytes uint64  // heap allocated, by every goroutine
	walBytes   uint64  // written to the write-ahead log
	tableBytes uint64  // written to tables by flushes and compactions
	compacts   int64   // compactions finished
}

// rate is writes a second.
func (p writePhase) rate() float64 { return float64(p.writes) / p.wall.Seconds() }

// cpuPerWrite is the process CPU a write took, in µs (both cores, every
// goroutine: Pebble's flushes and compactions and the GC included).
func (p writePhase) cpuPerWrite() float64 {
	return float64(p.cpu.Microseconds()) / float64(p.writes)
}

// add sums q into p.
func (p *writePhase) add(q writePhase) {
	p.writes += q.writes
	p.wall += q.wall
	p.cpu += q.cpu
	p.gcCycles += q.gcCycles
	p.gcCPU += q.gcCPU
	p.allocBytes += q.allocBytes
	p.walBytes += q.walBytes
	p.tableBytes += q.tableBytes
	p.compacts += q.compacts
}

// writeRates measures synced writes into reg, which runs on d, a Pebble
// datastore holding n records: NETGET_BENCH_WRITES (default 10,000)
// fresh records from NETGET_BENCH_WRITERS (64) goroutines at once, as
// many providers pushing together would, through the registry's write
// path (verify, index, quotas, a synced put). Two floors, same run:
// sameDS, as many other fresh records verified (record.Validator.Open)
// and put with a sync straight into d, nothing else, in writeRounds turns
// alternating with the registry's (like for like: the same loaded
// datastore, its compactions, the same heap); and freshDS, the
// registry's records verified and put into a fresh, empty Pebble
// datastore (the floor reported before the same-datastore one existed: it
// leaves out what a loaded datastore costs). memory is the registry's
// path on an in-memory store. With NETGET_BENCH_WRITEPROFILE=dir, the
// turns (and only they) are profiled into dir: cpu.pprof, its samples
// labelled phase=registry or phase=floor (go tool pprof -tagfocus),
// block.pprof and mutex.pprof.
func writeRates(b *testing.B, reg *dht.Node, d ds.Batching, n int) writeFigures {
	b.Helper()
	writes := envInt(b, "NETGET_BENCH_WRITES", 10000)
	writers := envInt(b, "NETGET_BENCH_WRITERS", 64)
	fresh := freshRecords(b, n, 2*writes)
	mine, floor := fresh[:writes], fresh[writes:]
	f := writeFigures{records: n}
	memReg := dhttest.NewNode(b, "development", dht.ModeServer, nil)
	f.memory = measureWrites(b, "memory", mine, writers, acceptInto(memReg), nil)
	db := pebbleOf(b, d)
	stop := startWriteProfiles(b)
	for r := range writeRounds {
		lo, hi := r*writes/writeRounds, (r+1)*writes/writeRounds
		regTurn := func() { f.synced.add(measureWrites(b, "registry", mine[lo:hi], writers, acceptInto(reg), db)) }
		floorTurn := func() { f.sameDS.add(measureWrites(b, "floor", floor[lo:hi], writers, rawInto(d, filedKey, true), db)) }
		if r%2 == 0 {
			floorTurn()
			regTurn()
		} else {
			regTurn()
			floorTurn()
		}
	}
	f.settle = settlePebble(b, db)
	f.profiled = stop()
	fd := scaleOpen(b, b.TempDir())
	f.freshDS = measureWrites(b, "fresh", mine, writers, rawInto(fd, ds.NewKey, false), pebbleOf(b, fd))
	return f
}

// report prints f's figures as benchmark metrics and one log line each.
func (f writeFigures) report(b *testing.B) {
	b.ReportMetric(f.synced.rate(), "synced-writes/s")
	b.ReportMetric(f.memory.rate(), "memory-writes/s")
	b.ReportMetric(f.sameDS.rate(), "raw-same-writes/s")
	b.ReportMetric(f.freshDS.rate(), "raw-writes/s")
	b.ReportMetric(f.synced.rate()/f.sameDS.rate(), "synced/raw-same")
	b.ReportMetric(f.sustained(f.synced), "synced-settled-writes/s")
	b.ReportMetric(f.sustained(f.sameDS), "raw-same-settled-writes/s")
	b.ReportMetric(f.synced.rate()/f.freshDS.rate(), "synced/raw")
	b.ReportMetric(f.synced.cpuPerWrite(), "synced-cpu-µs/write")
	b.ReportMetric(f.sameDS.cpuPerWrite(), "raw-same-cpu-µs/write")
	for _, row := range []struct {
		name string
		p    writePhase
	}{
		{"registry, loaded datastore", f.synced},
		{"floor, same datastore", f.sameDS},
		{"floor, fresh datastore", f.freshDS},
		{"registry, in memory", f.memory},
	} {
		b.Logf("writes at %d records: %-27s %6.0f/s  %4.0f µs CPU, %5d B allocated a write  %d GC cycles (%.2f s GC CPU)  WAL %4d B, tables %5d B a write, %d compactions  in %v",
			f.records, row.name, row.p.rate(), row.p.cpuPerWrite(), row.p.allocBytes/uint64(row.p.writes), row.p.gcCycles, row.p.gcCPU,
			row.p.walBytes/uint64(row.p.writes), row.p.tableBytes/uint64(row.p.writes), row.p.compacts, row.p.wall.Round(time.Millisecond))
	}
	b.Logf("writes at %d records: then the memtable flushed and compactions done in %v (%.2f s CPU, tables %d B a write of both); settled: registry %.0f/s, floor %.0f/s",
		f.records, f.settle.wall.Round(time.Millisecond), f.settle.cpu.Seconds(), f.settle.tableBytes/uint64(f.synced.writes+f.sameDS.writes),
		f.sustained(f.synced), f.sustained(f.sameDS))
	if f.profiled != "" {
		b.Logf("write profiles in %s", f.profiled)
	}
}

// sustained is p's rate (p: synced or sameDS) when it also pays its share
// of settling the datastore after the turns: half the wall time, as it
// wrote half the write-ahead log's bytes (the registry and its floor put
// the same bytes). The turns' own rates leave out the flush and the
// compactions still owed when they end, which a larger memtable defers
// past a short run.
func (f writeFigures) sustained(p writePhase) float64 {
	share := float64(p.walBytes) / float64(f.synced.walBytes+f.sameDS.walBytes)
	return float64(p.writes) / (p.wall.Seconds() + share*f.settle.wall.Seconds())
}

// settlePebble flushes db's memtable and waits until no compaction runs,
// as measured a phase: what the writes before it still owed the datastore.
func settlePebble(b *testing.B, db *pebble.DB) writePhase {
	b.Helper()
	wal0, tables0, compacts0 := pebbleWrites(db)
	cpu0, start := cpuTime(), time.Now()
	if err := db.Flush(); err != nil {
		b.Fatalf("flush: %v", err)
	}
	waitFor(b, 5*time.Minute, func() bool { return db.Metrics().Compact.NumInProgress == 0 })
	p := writePhase{wall: time.Since(start), cpu: cpuTime() - cpu0}
	wal, tables, compacts := pebbleWrites(db)
	p.walBytes, p.tableBytes, p.compacts = wal-wal0, tables-tables0, compacts-compacts0
	return p
}

// acceptInto is the registry's write path into reg (dht.Accept).
func acceptInto(reg *dht.Node) func([]byte) error {
	ctx := context.Background()
	return func(env []byte) error { return dht.Accept(ctx, reg, env) }
}

// rawInto is the floor of the registry's write path: env verified
// (record.Validator.Open) and put with a sync into d under key(its DHT
// key), nothing else: no index, no quotas, no health. With kad, what is
// put is the kad-dht record the store files (key, envelope and time
// received: the same bytes as the registry's write); without, the bare
// envelope.
func rawInto(d ds.Datastore, key func(string) ds.Key, kad bool) func([]byte) error {
	ctx := context.Background()
	v := record.Validator{Network: "development"}
	return func(env []byte) error {
		svc, err := v.Open(env)
		if err != nil {
			return err
		}
		c, err := record.ServiceCID(svc.Network, svc.Name)
		if err != nil {
			return err
		}
		k, val := record.Key(c, svc.Peer), env
		if kad {
			if val, err = proto.Marshal(&recpb.Record{Key: []byte(k), Value: env,
				TimeReceived: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
				return err
			}
		}
		return d.Put(ctx, key(k), val)
	}
}

// filedKey is where the store files DHT key k in its datastore, as
// kad-dht does: "/netget/" + base32 of k, so the same-datastore floor's
// records land among the loaded ones, as the registry's do (record.Key
// itself, which the fresh-datastore floor uses, sorts after all of them).
func filedKey(k string) ds.Key {
	return ds.NewKey("/" + record.Namespace + "/" + base32.RawStdEncoding.EncodeToString([]byte(k)))
}

// measureWrites has writers goroutines write envs with write, each taking
// the next, labelled phase=label for the CPU profile, and reads what db
// (nil: none) wrote meanwhile; every write must succeed.
func measureWrites(b *testing.B, label string, envs [][]byte, writers int, write func([]byte) error, db *pebble.DB) writePhase {
	b.Helper()
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	cycles0, gc0, alloc0 := samples[0].Value.Uint64(), samples[1].Value.Float64(), samples[2].Value.Uint64()
	wal0, tables0, compacts0 := pebbleWrites(db)
	var next atomic.Int64
	cpu0, start := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			pprof.Do(context.Background(), pprof.Labels("phase", label), func(context.Context) {
				for i := next.Add(1) - 1; i < int64(len(envs)); i = next.Add(1) - 1 {
					if err := write(envs[i]); err != nil {
						b.Errorf("%s write %d: %v", label, i, err)
						return
					}
				}
			})
		})
	}
	wg.Wait()
	p := writePhase{writes: len(envs), wall: time.Since(start), cpu: cpuTime() - cpu0}
	if b.Failed() {
		b.FailNow()
	}
	metrics.Read(samples)
	p.gcCycles = samples[0].Value.Uint64() - cycles0
	p.gcCPU = samples[1].Value.Float64() - gc0
	p.allocBytes = samples[2].Value.Uint64() - alloc0
	wal, tables, compacts := pebbleWrites(db)
	p.walBytes, p.tableBytes, p.compacts = wal-wal0, tables-tables0, compacts-compacts0
	return p
}

// pebbleWrites returns what db has written to its write-ahead log and to
// tables (flushes and compactions, all levels), and how many compactions
// it ran; zeros for nil.
func pebbleWrites(db *pebble.DB) (wal, tables uint64, compacts int64) {
	if db == nil {
		return 0, 0, 0
	}
	m := db.Metrics()
	for _, l := range m.Levels {
		tables += l.TableBytesFlushed + l.TableBytesCompacted
	}
	return m.WAL.BytesWritten, tables, m.Compact.Count
}

// pebbleOf is the Pebble database under d, a datastore store.Open made.
func pebbleOf(b *testing.B, d ds.Datastore) *pebble.DB {
	b.Helper()
	pd, ok := d.(*pebbleds.Datastore)
	if !ok {
		b.Fatalf("datastore is a %T, want Pebble's", d)
	}
	return pd.DB
}

// startWriteProfiles starts the CPU, block and mutex profiles into
// $NETGET_BENCH_WRITEPROFILE, if set, and returns what stops them and
// says where they went ("" when unset).
func startWriteProfiles(b *testing.B) (stop func() string) {
	b.Helper()
	dir := os.Getenv("NETGET_BENCH_WRITEPROFILE")
	if dir == "" {
		return func() string { return "" }
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		b.Fatal(err)
	}
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(5)
	return func() string {
		pprof.StopCPUProfile()
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
		for _, name := range []string{"block", "mutex"} {
			out, err := os.Create(filepath.Join(dir, name+".pprof"))
			if err == nil {
				err = pprof.Lookup(name).WriteTo(out, 0)
				out.Close()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := cpu.Close(); err != nil {
			b.Fatal(err)
		}
		return dir
	}
}

// freshRecords signs writes records of as many fresh providers, for
// services after the n records' own, in parallel.
func freshRecords(b *testing.B, n, writes int) [][]byte {
	b.Helper()
	now := time.Now()
	out := make([][]byte, writes)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < writes; i += workers {
				priv, id, err := crypto.GenerateEd25519Key(nil)
				if err != nil {
					b.Error(err)
					return
				}
				p, err := peer.IDFromPublicKey(id)
				if err != nil {
					b.Error(err)
					return
				}
				s := recordtest.Valid(p, now)
				s.Name = scaleName((n+scaleProviders-1)/scaleProviders + i/scaleProviders)
				s.Meta = map[string]string{"region": "eu-west", "engine": "postgres", "i": fmt.Sprint(n + i)}
				out[i] = recordtest.SealRaw(b, s, priv)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return out
}
