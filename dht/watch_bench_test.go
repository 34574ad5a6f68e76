package dht_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// BenchmarkWatch measures watch on one registry (dht.RegistryHealth on)
// with 1,000 watchers, each its own peer, all in a child process (the test
// binary run again, watch_bench_child_test.go), so that this process's
// heap is the registry's (and three idle nodes': a provider, a poller and
// a watching node, the same before and after):
//
//   - memory: the registry's heap and stacks with 1,000 peers connected and
//     idle, against none (KiB per connected peer, for information), and
//     then with each peer watching one service (KiB per watch: the
//     difference / 1,000; target ≤ 16 KiB);
//   - one watcher: a provider puts 200 records of a service only host 0
//     of the child watches, one at a time; from the registry accepting the
//     put (its store's change hook, after the write lands) to that watcher
//     having the verified record, p50 / p95, against the bare libp2p
//     stream round trip between the same two hosts (an echo of a message
//     of the same size, 200 times), measured in the same run (target ≤ 2×);
//   - 1,000 watchers: 10 records and 10 tombstones of the watched service,
//     1–1.5 s apart (so that a finder listing the registry every second,
//     Consul-style, sees each: the poll baseline); from acceptance to each
//     watcher having the verified change (p50 / p95 over all watchers and
//     changes; first-p50 is the first watcher of each change), and the
//     registry's fan-out, from its first write of a change to its last;
//     against a fan-out floor on the same 1,000 connections in the same
//     run: a bare protocol handler per stream that writes the very same
//     message bytes when handed them (as the hub's writer does, with none
//     of the hub's work), each reader decoding it and verifying its one
//     Ed25519 signature, as a watcher must;
//   - a repeat Find (limit 1) on a node that watches the service (p50 of
//     1,000; answered from its watched set).
//
// Every watcher verifies every record itself (no shared cache), all 1,000
// in the child on the same two cores as the registry: the floor carries
// the same cost, so the ratio to the floor is the figure that says what
// watch adds. Latencies across the two processes are wall-clock times,
// read from the same kernel clock. The registry's host is p2p.NewHost's
// (TCP, Noise, yamux) with p2p.Config.MaxConns raised for 1,000 inbound
// peers, as a registry's; load is the machine's load average.
func BenchmarkWatch(b *testing.B) {
	if reg := os.Getenv(watchChildEnv); reg != "" {
		watchChild(b, reg)
		return
	}
	const peers, changes, oneChanges = 1000, 10, 200
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	regHost := benchRegistryHost(b, peers+64)
	reg := dhttest.NewNodeOn(b, regHost, "development", dht.ModeServer, func(c *dht.Config) {
		c.Health = dht.RegistryHealth()
		c.RequestRate, c.RequestBurst = 1e6, 1e6
	})
	var accepted atomic.Int64 // unix ns of the store's last change
	dht.OnAccepted(reg, func() { accepted.Store(time.Now().UnixNano()) })
	var firstWrite, lastWrite, writes atomic.Int64 // of the change being sent
	dht.OnWatchWrite(reg, func() {
		writes.Add(1)
		now := time.Now().UnixNano()
		firstWrite.CompareAndSwap(0, now)
		for last := lastWrite.Load(); now > last && !lastWrite.CompareAndSwap(last, now); last = lastWrite.Load() {
		}
	})
	regHost.SetStreamHandler(echoProto, func(s network.Stream) {
		_, _ = io.Copy(s, s)
		s.Reset()
	})
	floor, floorOne := &floorFanout{}, &floorFanout{}
	regHost.SetStreamHandler(floorProto, floor.handle)
	regHost.SetStreamHandler(floorOneProto, floorOne.handle)
	defer floor.close()
	defer floorOne.close()
	nodes := make([]*dht.Node, 3)
	for i := range nodes {
		nodes[i] = dhttest.NewNode(b, "development", dht.ModeClient, nil)
		p2ptest.Connect(b, nodes[i].Host(), regHost)
		nodes[i].AddRegistry(regHost.ID())
	}
	prov, pollNode, wnode := nodes[0], nodes[1], nodes[2]
	key := prov.Host().Peerstore().PrivKey(prov.Host().ID())
	seal := func(name string, seq uint64, withdrawn bool) []byte {
		s := recordtest.Valid(prov.Host().ID(), time.Now())
		s.Name, s.Seq, s.Withdrawn = name, seq, withdrawn
		return recordtest.SealRaw(b, s, key)
	}

	before := memUse()
	child := startWatchChild(b, regHost.Addrs()[0].String()+"/p2p/"+regHost.ID().String(), peers)
	child.wait("connected", 5*time.Minute)
	waitBench(b, "every child peer connected", func() bool { return len(regHost.Network().Peers()) >= peers+len(nodes) })
	connected, gConnected := memUse(), runtime.NumGoroutine()
	child.send("watch DatabaseService %d", peers)
	child.wait("watching", 5*time.Minute)
	waitBench(b, "the registry serves every watch", func() bool { return dht.Watchers(reg) == peers })
	watching, gWatching := memUse(), runtime.NumGoroutine()

	// One watcher: its pair's bare round trip, then 200 changes.
	child.send("watch OneService 1")
	child.wait("watching", time.Minute)
	enc, err := registry.EncodeWatchMsg(registry.WatchMsg{Type: registry.WatchUpsert, Record: seal("OneService", 1, false)})
	if err != nil {
		b.Fatal(err)
	}
	child.send("rtt %d %d", len(enc), oneChanges)
	f := child.wait("rtt", time.Minute)
	rttP50, _ := strconv.ParseFloat(f[1], 64)
	rttP95, _ := strconv.ParseFloat(f[2], 64)
	oneAt := map[uint64]time.Time{}
	b.ResetTimer()
	for i := range oneChanges {
		seq := uint64(1 + i)
		if err := dht.Push(ctx, prov, regHost.ID(), seal("OneService", seq, false)); err != nil {
			b.Fatal(err)
		}
		oneAt[seq] = time.Unix(0, accepted.Load())
		child.wait("all OneService", time.Minute)
	}
	var one []float64
	for _, a := range child.report("OneService") {
		if at, ok := oneAt[a.seq]; ok {
			one = append(one, ms(a.at.Sub(at)))
		}
	}
	if len(one) != oneChanges {
		b.Fatalf("the one watcher read %d changes, want %d", len(one), oneChanges)
	}
	// Its floor: the same messages written to one bare stream of the pair,
	// read, decoded and verified.
	child.send("floor %s 1 %s", floorOneProto, floorOneGroup)
	child.wait("floorready", time.Minute)
	waitBench(b, "the one floor stream's handler runs", func() bool { return floorOne.count() == 1 })
	oneFloorAt := map[uint64]time.Time{}
	for i := range oneChanges {
		seq := uint64(1 + i)
		m, err := registry.EncodeWatchMsg(registry.WatchMsg{Type: registry.WatchUpsert, Record: seal("OneService", seq, false)})
		if err != nil {
			b.Fatal(err)
		}
		oneFloorAt[seq] = floorOne.round(m)
		child.wait("all "+floorOneGroup, time.Minute)
	}
	var oneFloor []float64
	for _, a := range child.report(floorOneGroup) {
		if at, ok := oneFloorAt[a.seq]; ok {
			oneFloor = append(oneFloor, ms(a.at.Sub(at)))
		}
	}

	// 1,000 watchers, with a poller beside them.
	c, _ := record.ServiceCID("development", "DatabaseService")
	poller := startPoller(ctx, b, pollNode, regHost.ID(), c)
	var seqs []uint64 // in order
	bySeq := map[uint64]change{}
	msgs := map[uint64][]byte{} // what the registry sent of each change
	var fanouts []float64
	for i := range 2 * changes {
		seq, withdraw := uint64(100+i), i%2 == 1
		env := seal("DatabaseService", seq, withdraw)
		firstWrite.Store(0)
		lastWrite.Store(0)
		writes.Store(0)
		pushed := time.Now()
		if err := dht.Push(ctx, prov, regHost.ID(), env); err != nil {
			b.Fatal(err)
		}
		bySeq[seq] = change{at: time.Unix(0, accepted.Load()), withdraw: withdraw}
		seqs = append(seqs, seq)
		child.wait("all DatabaseService", time.Minute)
		waitBench(b, "the registry's every write of the change", func() bool { return writes.Load() >= peers })
		fanouts = append(fanouts, ms(time.Duration(lastWrite.Load()-firstWrite.Load())))
		m := registry.WatchMsg{Type: registry.WatchUpsert, Record: env}
		if withdraw {
			m = registry.WatchMsg{Type: registry.WatchRemove, Peer: prov.Host().ID().String(), Reason: registry.ReasonWithdrawn, Record: env}
		}
		if msgs[seq], err = registry.EncodeWatchMsg(m); err != nil {
			b.Fatal(err)
		}
		<-time.After(time.Until(pushed.Add(time.Duration(1000+rand.IntN(500)) * time.Millisecond))) // pacing for the poller, not synchronising
	}
	polled, missed := poller.stop(seqs, bySeq)
	var provided, wd, first []float64
	firstAt := map[uint64]time.Time{}
	for _, a := range child.report("DatabaseService") {
		ch, ok := bySeq[a.seq]
		if !ok {
			continue
		}
		if t, ok := firstAt[a.seq]; !ok || a.at.Before(t) {
			firstAt[a.seq] = a.at
		}
		if ch.withdraw {
			wd = append(wd, ms(a.at.Sub(ch.at)))
		} else {
			provided = append(provided, ms(a.at.Sub(ch.at)))
		}
	}
	for seq, at := range firstAt {
		first = append(first, ms(at.Sub(bySeq[seq].at)))
	}
	if want := peers * changes; len(provided) != want || len(wd) != want {
		b.Fatalf("watchers read %d provides and %d withdrawals, want %d each", len(provided), len(wd), want)
	}

	// The fan-out floor on the same connections, the same messages.
	child.send("floor %s %d %s", floorProto, peers, floorGroup)
	child.wait("floorready", time.Minute)
	waitBench(b, "every floor stream's handler runs", func() bool { return floor.count() == peers })
	floorAt := map[uint64]time.Time{}
	var floorSpread []float64
	for _, seq := range seqs {
		floorAt[seq] = floor.round(msgs[seq])
		child.wait("all "+floorGroup, time.Minute)
		waitBench(b, "the floor's every write", func() bool { return floor.written() >= peers })
		floorSpread = append(floorSpread, ms(floor.spread()))
	}
	b.StopTimer()
	var floorLat []float64
	for _, a := range child.report(floorGroup) {
		if at, ok := floorAt[a.seq]; ok {
			floorLat = append(floorLat, ms(a.at.Sub(at)))
		}
	}
	if want := peers * 2 * changes; len(floorLat) != want {
		b.Fatalf("floor readers read %d messages, want %d", len(floorLat), want)
	}
	child.send("quit")

	all := append(slices.Clone(provided), wd...)
	b.ReportMetric(float64(peers), "watchers")
	b.ReportMetric(float64(connected-before)/peers/1024, "KiB/peer")
	b.ReportMetric(float64(watching-connected)/peers/1024, "KiB/watch")
	b.ReportMetric(float64(gWatching-gConnected)/peers, "goroutines/watch")
	b.ReportMetric(pct(one, 50), "one-p50-ms")
	b.ReportMetric(pct(one, 95), "one-p95-ms")
	b.ReportMetric(rttP50/1e6, "rtt-p50-ms")
	b.ReportMetric(rttP95/1e6, "rtt-p95-ms")
	b.ReportMetric(pct(one, 50)/(rttP50/1e6), "one/rtt")
	b.ReportMetric(pct(oneFloor, 50), "one-floor-p50-ms")
	b.ReportMetric(pct(oneFloor, 95), "one-floor-p95-ms")
	b.ReportMetric(pct(oneFloor, 50)/(rttP50/1e6), "one-floor/rtt")
	b.ReportMetric(pct(one, 50)/pct(oneFloor, 50), "one/one-floor")
	b.ReportMetric(pct(provided, 50), "provide-p50-ms")
	b.ReportMetric(pct(provided, 95), "provide-p95-ms")
	b.ReportMetric(pct(wd, 50), "withdraw-p50-ms")
	b.ReportMetric(pct(wd, 95), "withdraw-p95-ms")
	b.ReportMetric(pct(first, 50), "first-p50-ms")
	b.ReportMetric(pct(fanouts, 50), "fanout-p50-ms")
	b.ReportMetric(pct(floorLat, 50), "floor-p50-ms")
	b.ReportMetric(pct(floorLat, 95), "floor-p95-ms")
	b.ReportMetric(pct(floorSpread, 50), "floor-fanout-p50-ms")
	b.ReportMetric(pct(all, 50)/pct(floorLat, 50), "watch/floor-p50")
	b.ReportMetric(pct(all, 95)/pct(floorLat, 95), "watch/floor-p95")
	b.ReportMetric((pct(all, 50))/(rttP50/1e6), "all/rtt")
	b.ReportMetric(pct(polled, 50), "poll-p50-ms")
	b.ReportMetric(pct(polled, 95), "poll-p95-ms")
	b.ReportMetric(float64(missed), "poll-missed")
	b.ReportMetric(pct(polled, 50)/pct(provided, 50), "poll/watch")
	b.ReportMetric(loadAvg(), "load")
	b.ReportMetric(repeatFind(ctx, b, wnode, prov), "find-p50-ms")
}

// benchRegistryHost is the host p2p.NewHost builds for a test (loopback
// TCP, Noise, yamux) with room for conns connections (p2p.Config.MaxConns,
// as a registry's --max-conns).
func benchRegistryHost(b *testing.B, conns int) host.Host {
	cfg := p2ptest.Config()
	cfg.ConnLow, cfg.ConnHigh, cfg.MaxConns = 2*conns, 3*conns, 3*conns
	return p2ptest.NewHostFrom(b, cfg)
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

// arrival is a change a watcher read: the seq of the record or tombstone.
type arrival struct {
	seq uint64
	at  time.Time
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
