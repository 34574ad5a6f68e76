package dht_test

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// BenchmarkWatch measures watch on one registry with 1,000 watchers (20
// hosts with 50 watch streams each, on TCP loopback): for 10 records and
// 10 tombstones a provider pushes to the registry, the time from the start
// of the push to each watcher reading the change (p50 / p95 over
// all watchers and changes), against a finder that asks the registry every
// second (Consul-style polling) in the same run, and against one stream
// round trip to the registry (a list). It reports the memory the watches
// take (registry and watcher ends together, heap and stacks, per watcher)
// and a repeat Find on a node that watches the service (answered from its
// watched set; p50 over 1,000 finds).
//
// Watchers verify each record with one validator and cache, as one
// process would: 1,000 Ed25519 verifications of each change on two cores
// would measure the CPU, not the push. Each real watcher adds one verify
// (about 0.1 ms) on its own machine. first-p50 is the first watcher to see
// each change; load is the machine's load average during the run;
// KiB/idle-stream is the baseline of the memory figure: a stream between
// the same hosts whose handler only waits for it to end.
func BenchmarkWatch(b *testing.B) {
	const hosts, perHost, changes = 20, 50, 10
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	net := dhttest.New(b, dhttest.Options{Registries: 1, Nodes: 3, Configure: func(c *dht.Config) {
		c.Watch = dht.WatchLimits{PerPeer: perHost, Max: hosts * perHost}
		c.RequestRate, c.RequestBurst = 1e6, 1e6
	}})
	reg, prov, wnode := net.Registries[0], net.Nodes[0], net.Nodes[1]
	c, _ := record.ServiceCID("development", "DatabaseService")
	v := record.Validator{Network: "development", Cache: store.NewCache()}

	clients := p2ptest.NewHosts(b, hosts)
	for _, h := range clients {
		p2ptest.Connect(b, h, reg.Host())
	}
	before := memUse()
	ws := openWatchers(ctx, b, clients, perHost, reg.Host().ID(), c)
	after := memUse()
	// Measured with the watches open, so that neither reuses buffers the
	// other freed.
	idle := idleStreams(ctx, b, clients, perHost, reg.Host())
	arrivals := make([][]arrival, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { arrivals[i] = readArrivals(w, v, c) })
	}

	poller := startPoller(ctx, b, net.Nodes[2], reg.Host().ID(), c)
	var rtts []float64
	for range 200 {
		start := time.Now()
		if _, err := dht.List(ctx, net.Nodes[2], reg.Host().ID(), c); err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, ms(time.Since(start)))
	}

	// The changes: a provider's record then its tombstone, signed
	// beforehand and pushed to the registry (the first step of Publish and
	// Withdraw), 10 times, 1 to 1.5 s apart so that the poller sees each.
	key := prov.Host().Peerstore().PrivKey(prov.Host().ID())
	var seqs []uint64 // in order
	bySeq := map[uint64]change{}
	b.ResetTimer()
	for i := range 2 * changes {
		s := recordtest.Valid(prov.Host().ID(), time.Now())
		s.Seq, s.Withdrawn = uint64(100+i), i%2 == 1
		env := recordtest.SealRaw(b, s, key)
		at := time.Now()
		if err := dht.Push(ctx, prov, reg.Host().ID(), env); err != nil {
			b.Fatal(err)
		}
		bySeq[s.Seq] = change{at: at, withdraw: s.Withdrawn}
		seqs = append(seqs, s.Seq)
		<-time.After(time.Duration(1000+rand.IntN(500)) * time.Millisecond) // pacing the changes, not synchronising
	}
	b.StopTimer()
	polled, missed := poller.stop(seqs, bySeq)
	for _, w := range ws {
		w.Close()
	}
	wg.Wait()

	var provided, wd, first []float64
	firstAt := map[uint64]time.Time{}
	for _, as := range arrivals {
		for _, a := range as {
			if t, ok := firstAt[a.seq]; !ok || a.at.Before(t) {
				firstAt[a.seq] = a.at
			}
		}
	}
	for seq, at := range firstAt {
		if ch, ok := bySeq[seq]; ok {
			first = append(first, ms(at.Sub(ch.at)))
		}
	}
	for _, as := range arrivals {
		for _, a := range as {
			ch, ok := bySeq[a.seq]
			if !ok {
				continue
			}
			if ch.withdraw {
				wd = append(wd, ms(a.at.Sub(ch.at)))
			} else {
				provided = append(provided, ms(a.at.Sub(ch.at)))
			}
		}
	}
	if want := hosts * perHost * changes; len(provided) < want || len(wd) < want {
		b.Fatalf("watchers read %d provides and %d withdrawals, want %d each", len(provided), len(wd), want)
	}
	rtt := pct(rtts, 50)
	b.ReportMetric(float64(hosts*perHost), "watchers")
	b.ReportMetric(pct(provided, 50), "provide-p50-ms")
	b.ReportMetric(pct(provided, 95), "provide-p95-ms")
	b.ReportMetric(pct(first, 50), "first-p50-ms")
	b.ReportMetric(pct(wd, 50), "withdraw-p50-ms")
	b.ReportMetric(pct(wd, 95), "withdraw-p95-ms")
	b.ReportMetric(pct(polled, 50), "poll-p50-ms")
	b.ReportMetric(pct(polled, 95), "poll-p95-ms")
	b.ReportMetric(float64(missed), "poll-missed")
	b.ReportMetric(rtt, "rtt-ms")
	b.ReportMetric(pct(provided, 50)/rtt, "provide/rtt")
	b.ReportMetric(pct(polled, 50)/pct(provided, 50), "poll/watch")
	b.ReportMetric(float64(after-before)/float64(hosts*perHost)/1024, "KiB/watcher")
	b.ReportMetric(idle, "KiB/idle-stream")
	b.ReportMetric(loadAvg(), "load")
	b.ReportMetric(repeatFind(ctx, b, wnode, prov), "find-p50-ms")
}

// repeatFind has n watch DatabaseService, provided by p, and returns the
// p50 of 1,000 Finds of it, each limited to the one provider.
func repeatFind(ctx context.Context, b *testing.B, n, p *dht.Node) float64 {
	if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := n.Watch(wctx, "DatabaseService")
	if err != nil {
		b.Fatal(err)
	}
	if ev := <-ch; ev.Kind != dht.EventUpsert {
		b.Fatalf("watch: first event %+v", ev)
	}
	var took []float64
	for range 1000 {
		start := time.Now()
		rs, err := n.FindAll(ctx, "DatabaseService", dht.FindOptions{Limit: 1})
		if err != nil || len(rs) != 1 || rs[0].Source != dht.SourceWatch {
			b.Fatalf("find on the watching node: %v %v", rs, err)
		}
		took = append(took, ms(time.Since(start)))
	}
	return pct(took, 50)
}

// idleStreams opens perHost streams from each host to reg whose handler
// only waits for the stream to end (one goroutine, as a watcher's reader),
// and returns what each costs, both ends, in KiB: the baseline a watch's
// memory compares with. It closes them before it returns.
func idleStreams(ctx context.Context, b *testing.B, hosts []host.Host, perHost int, reg host.Host) float64 {
	const proto = "/netget-bench/idle/1.0.0"
	var running, ended atomic.Int64
	reg.SetStreamHandler(proto, func(s network.Stream) {
		running.Add(1)
		defer ended.Add(1)
		_, _ = io.Copy(io.Discard, s)
		s.Reset()
	})
	defer reg.RemoveStreamHandler(proto)
	before := memUse()
	var open []network.Stream
	for _, h := range hosts {
		for range perHost {
			s, err := h.NewStream(ctx, reg.ID(), proto)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Write([]byte{1}); err != nil { // the handler runs once the stream opens
				b.Fatal(err)
			}
			open = append(open, s)
		}
	}
	waitBench(b, "every idle stream's handler runs", func() bool { return running.Load() == int64(len(open)) })
	after := memUse()
	for _, s := range open {
		s.Reset()
	}
	waitBench(b, "every idle stream's handler ends", func() bool { return ended.Load() == int64(len(open)) })
	return float64(after-before) / float64(len(open)) / 1024
}

// waitBench waits until cond holds, for at most a minute.
func waitBench(b *testing.B, what string, cond func() bool) {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting until %s", what)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// memUse is the process's heap and goroutine stacks in use, after a GC.
func memUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// openWatchers opens perHost watches of c on reg from each host, each past
// its (empty) snapshot.
func openWatchers(ctx context.Context, b *testing.B, hosts []host.Host, perHost int, reg peer.ID, c cid.Cid) []*registry.WatchStream {
	var out []*registry.WatchStream
	for _, h := range hosts {
		for range perHost {
			w, err := registry.OpenWatch(ctx, h, registry.WatchProtocol("development"), reg, c)
			if err != nil {
				b.Fatal(err)
			}
			if m, _, err := w.Next(); err != nil || m.Type != registry.WatchSynced {
				b.Fatalf("watch: %+v %v, want the empty snapshot", m, err)
			}
			out = append(out, w)
		}
	}
	return out
}

// arrival is a change a watcher read: the seq of the record or tombstone.
type arrival struct {
	seq uint64
	at  time.Time
}

// readArrivals reads w until it ends, verifying each record with v.
func readArrivals(w *registry.WatchStream, v record.Validator, c cid.Cid) []arrival {
	var out []arrival
	for {
		m, _, err := w.Next()
		if err != nil {
			return out
		}
		at := time.Now()
		if len(m.Record) == 0 {
			continue
		}
		if s, err := v.OpenForSum(c, sha256.Sum256(m.Record), m.Record); err == nil {
			out = append(out, arrival{seq: s.Seq, at: at})
		}
	}
}

// change is one provide or withdrawal of the benchmark.
type change struct {
	at       time.Time
	withdraw bool
}

// poller asks a registry for a service's records every second, and notes
// when it first saw each record, and each withdrawal (the provider gone).
type poller struct {
	cancel context.CancelFunc
	done   chan struct{}
	seen   []polled
}

// polled is what one poll found changed: a record (seq) listed for the
// first time, or the provider of record seq gone (gone).
type polled struct {
	seq  uint64
	gone bool
	at   time.Time
}

func startPoller(ctx context.Context, b *testing.B, n *dht.Node, reg peer.ID, c cid.Cid) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{cancel: cancel, done: make(chan struct{})}
	v := record.Validator{Network: "development", Cache: store.NewCache()}
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var live uint64 // the provider's seq listed last; 0: none
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			envs, err := dht.List(ctx, n, reg, c)
			if err != nil {
				continue
			}
			at := time.Now()
			var now uint64
			for _, env := range envs {
				if s, err := v.OpenFor(c, env); err == nil {
					now = s.Seq
				}
			}
			switch {
			case now == live:
			case now == 0:
				p.seen = append(p.seen, polled{seq: live, gone: true, at: at})
			default:
				p.seen = append(p.seen, polled{seq: now, at: at})
			}
			live = now
		}
	}()
	return p
}

// stop ends the poller and returns how long after each change it saw it
// (ms), and how many changes it never saw. seqs are the changes' seqs in
// order; a withdrawal is seen as the provider of the record before it gone.
func (p *poller) stop(seqs []uint64, bySeq map[uint64]change) ([]float64, int) {
	p.cancel()
	<-p.done
	var out []float64
	for _, a := range p.seen {
		seq := a.seq
		if a.gone {
			seq = 0
			for i, s := range seqs {
				if s == a.seq && i+1 < len(seqs) {
					seq = seqs[i+1]
				}
			}
		}
		if ch, ok := bySeq[seq]; ok {
			out = append(out, ms(a.at.Sub(ch.at)))
		}
	}
	return out, len(seqs) - len(out)
}

// loadAvg is the machine's one-minute load average (0 if unknown): the
// latencies above are scheduling delays on a loaded machine.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}
