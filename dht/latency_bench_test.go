package dht_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// BenchmarkLatency measures finds and provides where round trips, not the
// CPU, set the pace: go-libp2p's mocknet, every link with the same one-way
// latency (half the RTT), networks of 200 and 1,000 nodes (2 registries,
// every node connected to both; $NETGET_BENCH_SIZES, e.g. "200,1000,2000")
// at RTT 20 ms and 100 ms ($NETGET_BENCH_RTTS, e.g. "20ms,100ms"). Each
// network is built once, at zero latency, and its links then slowed.
//
// For each lookup (a fresh service, a random provider, two distinct random
// finders, as in BenchmarkNetwork; $NETGET_BENCH_LOOKUPS, default 40) it
// measures, in RTTs (milliseconds over the RTT): the first verified result
// of Find with the fast path, of Find on the DHT path alone, and the first
// provider of raw kad-dht FindProvidersAsync (the same finder for the last
// two, which goes first alternating); the provider finding its own
// service (a record held locally: 0 RTT); netget's Publish against raw
// kad-dht Provide; and the floor, one stream round trip to a registry.
// Per find it counts the requests the finder sent (kad-dht queries of its
// walk plus netget's record requests) and the connections it dialled.
// Dials cost nothing on mocknet (no handshake round trips), though a new
// connection's first kad-dht query waits for identify's exchange (one
// RTT), raw's and the DHT path's walk's alike; the DHT path's list to a
// peer its walk dials does not wait for it (registry.Client.ListDialling
// proposes its protocol with the request), so it is answered
// a round trip before the walk's query to it, on mocknet as on a real
// network, where each dial also costs one to three more RTTs (raw
// kad-dht, which dials most, is favoured here). The DHT path and raw
// kad-dht share a finder, so
// the one that walks second finds the first one's new connections and
// routing-table entries; the order alternates for that.
//
// Each DHT-path and raw find is traced (latency_trace_test.go): the hops
// to its first result (the walk depth of the query that found it, plus
// one for the nearest peers' asks when the walk waited for them) as a
// histogram per path, the wall time beyond the hops (CPU, a hedge, a late
// peer), and a line per lookup over 1.5 RTT saying where it waited. Equal
// hops and unequal wall times are the cores queueing, not the protocol.
func BenchmarkLatency(b *testing.B) {
	lookups := envInt(b, "NETGET_BENCH_LOOKUPS", 40)
	sizes := envList(b, "NETGET_BENCH_SIZES", "200,1000", strconv.Atoi)
	rtts := envList(b, "NETGET_BENCH_RTTS", "20ms,100ms", time.ParseDuration)
	b.Logf("mocknet, %d lookups per size and RTT; sizes %v; RTTs %v", lookups, sizes, rtts)
	for _, size := range sizes {
		b.Run(fmt.Sprintf("N=%d", size), func(b *testing.B) {
			start := time.Now()
			net := newMockNetwork(b, size)
			b.Logf("N=%d built in %.1fs", size, time.Since(start).Seconds())
			for _, rtt := range rtts {
				b.Run(fmt.Sprintf("RTT=%s", rtt), func(b *testing.B) {
					net.setRTT(b, rtt)
					benchLatency(b, net, size, rtt, lookups)
				})
			}
		})
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("$%s=%q: want a positive integer", name, v)
	}
	return n
}

func envList[T any](b *testing.B, name, def string, parse func(string) (T, error)) []T {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []T
	for _, s := range strings.Split(v, ",") {
		x, err := parse(strings.TrimSpace(s))
		if err != nil {
			b.Fatalf("$%s=%q: %v", name, v, err)
		}
		out = append(out, x)
	}
	return out
}

// mockNetwork is a netget network on mocknet, with per-node counters of
// the finder's dials and requests.
type mockNetwork struct {
	mn         mocknet.Mocknet
	registries []*dht.Node
	nodes      []*dht.Node
	counts     map[*dht.Node]*findCounts
}

// findCounts counts what one node sends and dials.
type findCounts struct {
	dials   atomic.Int64                // outbound connections
	queries atomic.Int64                // kad-dht queries of netget's walks
	asks    atomic.Int64                // netget record requests (registry protocol, value gets)
	trace   atomic.Pointer[lookupTrace] // the find being traced, if any
}

func (c *findCounts) snapshot() [3]int64 {
	return [3]int64{c.dials.Load(), c.queries.Load(), c.asks.Load()}
}

// newMockNetwork builds size nodes, 2 of them registries, on a mocknet with
// no latency: every node uses both registries and is connected to them and
// to the peers of its routing table.
func newMockNetwork(b *testing.B, size int) *mockNetwork {
	mn := mocknet.New()
	b.Cleanup(func() { mn.Close() }) // runs last: the nodes close first
	net := &mockNetwork{mn: mn, counts: map[*dht.Node]*findCounts{}}
	cfg := func(c *dht.Config) {
		c.Network = "bench"
		// Tables are filled once, below; kad-dht's periodic refresh would
		// start a walk per node at once and land in the timings.
		c.KadOptions = append(c.KadOptions, kaddht.DisableAutoRefresh())
	}
	for i := range size {
		sk, _, err := crypto.GenerateEd25519Key(crand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		h, err := mn.AddPeer(sk, ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&255, i>>8&255, i&255)))
		if err != nil {
			b.Fatal(err)
		}
		c := dht.DefaultConfig("bench")
		cfg(&c)
		n, err := dht.New(h, c)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close(); h.Close() })
		counts := &findCounts{}
		net.counts[n] = counts
		h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
			if c.Stat().Direction == network.DirOutbound {
				counts.dials.Add(1)
			}
		}})
		dht.ObserveWalk(n, func(ev routing.QueryEvent) {
			if ev.Type == routing.SendingQuery {
				counts.queries.Add(1)
			}
			if t := counts.trace.Load(); t != nil {
				t.event(ev)
			}
		})
		dht.ObserveAsks(n, func(dht.Source) { counts.asks.Add(1) })
		dht.ObserveAnswers(n, func(p peer.ID, src dht.Source, records int) {
			if t := counts.trace.Load(); t != nil {
				t.answer(p, src, records)
			}
		})
		if i < 2 {
			net.registries = append(net.registries, n)
		} else {
			net.nodes = append(net.nodes, n)
		}
	}
	// Links between every pair (dialling needs one); none to self.
	hosts := mn.Hosts()
	for i := range hosts {
		for j := i + 1; j < len(hosts); j++ {
			if _, err := mn.LinkPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
				b.Fatal(err)
			}
		}
	}
	all := append(append([]*dht.Node{}, net.registries...), net.nodes...)
	for _, n := range net.nodes {
		for _, r := range net.registries {
			n.AddRegistry(r.Host().ID())
		}
	}
	// Each node's routing table as a refreshed one would be: every other
	// node offered in a random order, so each bucket holds k random peers
	// of its distance and the nearest ones all fit; then it connects to
	// them, as the walks that fill a table do. (kad-dht's own refresh,
	// a walk per bucket per node, takes minutes at 1,000 nodes on two
	// cores; what it converges to is this.)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for _, n := range all {
		rt := n.Kad().RoutingTable()
		for _, i := range rng.Perm(len(all)) {
			if o := all[i]; o != n {
				rt.TryAddPeer(o.Host().ID(), true, true)
			}
		}
	}
	for _, n := range all {
		for _, p := range n.Kad().RoutingTable().ListPeers() {
			if n.Host().Network().Connectedness(p) != network.Connected {
				if _, err := mn.ConnectPeers(n.Host().ID(), p); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for _, n := range net.nodes {
		for _, r := range net.registries {
			if n.Host().Network().Connectedness(r.Host().ID()) != network.Connected {
				if _, err := mn.ConnectPeers(n.Host().ID(), r.Host().ID()); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// Teardown at full speed: closing a node waits on exchanges in flight.
	b.Cleanup(func() { net.setRTT(b, 0) }) // runs first
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range all {
		if err := n.Ready(ctx); err != nil {
			b.Fatalf("node %s never joined: %v", n.Host().ID(), err)
		}
	}
	return net
}

// setRTT gives every link a one-way latency of rtt/2, open connections
// included.
func (net *mockNetwork) setRTT(b *testing.B, rtt time.Duration) { setMockRTT(b, net.mn, rtt) }

// setMockRTT gives every link of mn a one-way latency of rtt/2, open
// connections included.
func setMockRTT(b *testing.B, mn mocknet.Mocknet, rtt time.Duration) {
	n := 0
	for _, byPeer := range mn.Links() {
		for _, links := range byPeer {
			for l := range links {
				l.SetOptions(mocknet.LinkOptions{Latency: rtt / 2})
				n++
			}
		}
	}
	if n == 0 {
		b.Fatal("mocknet has no links")
	}
}

// findCost is what one find sent and dialled.
type findCost struct{ dials, requests []float64 }

func (fc *findCost) add(dials, requests int64) {
	fc.dials = append(fc.dials, float64(dials))
	fc.requests = append(fc.requests, float64(requests))
}

func benchLatency(b *testing.B, net *mockNetwork, size int, rtt time.Duration, lookups int) {
	rng := rand.New(rand.NewPCG(uint64(size), uint64(rtt)))
	nodes := net.nodes
	serveEcho(net.registries)
	var fast, dhtOnly, raw, local, prov, rawProv, floor sample
	var fastCost, dhtCost, rawCost findCost
	sources, dhtSources := map[dht.Source]int{}, map[dht.Source]int{}
	var dhtDepth, rawDepth depthStats
	var slow []string
	var dhtLine, rawLine string
	var dhtTrace *lookupTrace
	var rawPeer peer.ID
	rttMS := ms(rtt)
	prefix := fmt.Sprintf("Lat%d-%s-", size, rtt)
	for i := range lookups {
		name := fmt.Sprintf("%s%03d", prefix, i)
		c, err := record.ServiceCID("bench", name)
		if err != nil {
			b.Fatal(err)
		}
		p := rng.IntN(len(nodes))
		provider := nodes[p]
		benchProvide(b, provider, name, c, i%2 == 0, &prov, &rawProv)
		finders := pickDistinct(rng, len(nodes), 2, p)
		fastFinder, dhtFinder := nodes[finders[0]], nodes[finders[1]]
		runs := []func(){
			func() {
				before := net.counts[dhtFinder].snapshot()
				tr := newLookupTrace()
				dhtTrace = tr
				net.counts[dhtFinder].trace.Store(tr)
				d, src, err := firstNetget(dhtFinder, name, true)
				net.counts[dhtFinder].trace.Store(nil)
				dhtOnly.add(d, err == nil)
				dhtSources[src]++
				dials, reqs := net.counts[dhtFinder].since(before)
				dhtCost.add(dials, reqs)
				hops, walk := tr.netgetHops(src, time.Duration(d*float64(time.Millisecond)), rtt)
				dhtDepth.add(hops, d/rttMS)
				dhtLine = fmt.Sprintf("DHT path %.2f RTT, %s, %d hops, walk started at %.2f RTT, %d requests", d/rttMS, src, hops, ms(walk)/rttMS, reqs)
			},
			func() {
				before := net.counts[dhtFinder].snapshot()
				tr := newLookupTrace()
				d, queries, ok := firstRawCounted(dhtFinder, c, tr)
				raw.add(d, ok)
				dials, _ := net.counts[dhtFinder].since(before)
				rawCost.add(dials, queries)
				var hops int
				rawPeer, hops = tr.rawResponder(time.Duration(d*float64(time.Millisecond)), rtt)
				rawDepth.add(hops, d/rttMS)
				rawLine = fmt.Sprintf("raw %.2f RTT, %d hops, %d requests", d/rttMS, hops, queries)
			},
		}
		// Each finder has made the request a join makes to its registries
		// (kad-dht records their round trip), at this RTT.
		joinRequests(b, fastFinder, net.registries)
		joinRequests(b, dhtFinder, net.registries)
		before := net.counts[fastFinder].snapshot()
		d, src, err := firstNetget(fastFinder, name, false)
		fast.add(d, err == nil)
		sources[src]++
		fastCost.add(net.counts[fastFinder].since(before))
		if i%2 == 1 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		runs[0]()
		runs[1]()
		if n := len(dhtOnly.ms); n > 0 && (dhtDepth.wall[len(dhtDepth.wall)-1] > 1.5 || rawDepth.wall[len(rawDepth.wall)-1] > 1.5) {
			slow = append(slow, fmt.Sprintf("%d: %s | %s | %s", i, dhtLine, rawLine, dhtTrace.detail(rtt, rawPeer)))
		}
		d, src, err = firstNetget(provider, name, false)
		local.add(d, err == nil && src == dht.SourceLocal)
		r, _ := floorSample(b, fastFinder, net.registries[i%len(net.registries)])
		floor.add(r, true)
	}
	inRTT := func(xs []float64, p int) float64 { return pct(xs, p) / rttMS }
	report(b, map[string]float64{
		"rtt-ms":          rttMS,
		"floor-rtt":       inRTT(floor.ms, 50),
		"floor-p95-rtt":   inRTT(floor.ms, 95),
		"fast-p50-rtt":    inRTT(fast.ms, 50),
		"fast-p95-rtt":    inRTT(fast.ms, 95),
		"dht-p50-rtt":     inRTT(dhtOnly.ms, 50),
		"dht-p95-rtt":     inRTT(dhtOnly.ms, 95),
		"raw-p50-rtt":     inRTT(raw.ms, 50),
		"raw-p95-rtt":     inRTT(raw.ms, 95),
		"dht/raw-p50":     pct(dhtOnly.ms, 50) / pct(raw.ms, 50),
		"dht/raw-p95":     pct(dhtOnly.ms, 95) / pct(raw.ms, 95),
		"local-p95-ms":    pct(local.ms, 95),
		"local-p95-rtt":   inRTT(local.ms, 95),
		"provide-p50-rtt": inRTT(prov.ms, 50),
		"provide-p95-rtt": inRTT(prov.ms, 95),
		"rawprov-p50-rtt": inRTT(rawProv.ms, 50),
		"rawprov-p95-rtt": inRTT(rawProv.ms, 95),
		"fast-dials":      mean(fastCost.dials),
		"fast-msgs":       mean(fastCost.requests),
		"dht-dials":       mean(dhtCost.dials),
		"dht-msgs":        mean(dhtCost.requests),
		"raw-dials":       mean(rawCost.dials),
		"raw-msgs":        mean(rawCost.requests),
		"fast-misses":     float64(fast.misses),
		"dht-misses":      float64(dhtOnly.misses),
		"raw-misses":      float64(raw.misses),
		"local-misses":    float64(local.misses),
	})
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("N=%d RTT=%s | load %s| floor p50/p95 %.2f/%.2f RTT | find p50/p95 in RTTs: fast %.2f/%.2f, dht-only %.2f/%.2f, raw %.2f/%.2f | local p95 %.3f ms | provide %.2f/%.2f vs raw %.2f/%.2f RTT | per find dials/requests: fast %.1f/%.1f, dht %.1f/%.1f, raw %.1f/%.1f | misses fast %d dht %d raw %d local %d | first-result sources: fast %v, dht-only %v",
		size, rtt, strings.Join(strings.Fields(string(load))[:3], " ")+" ", inRTT(floor.ms, 50), inRTT(floor.ms, 95), inRTT(fast.ms, 50), inRTT(fast.ms, 95), inRTT(dhtOnly.ms, 50), inRTT(dhtOnly.ms, 95),
		inRTT(raw.ms, 50), inRTT(raw.ms, 95), pct(local.ms, 95), inRTT(prov.ms, 50), inRTT(prov.ms, 95),
		inRTT(rawProv.ms, 50), inRTT(rawProv.ms, 95), mean(fastCost.dials), mean(fastCost.requests),
		mean(dhtCost.dials), mean(dhtCost.requests), mean(rawCost.dials), mean(rawCost.requests),
		fast.misses, dhtOnly.misses, raw.misses, local.misses, sources, dhtSources)
	logDepths(b, &dhtDepth, &rawDepth, slow)
}

// joinRequests sends each registry the request a joining node sends its
// bootstrap peers (kad-dht FIND_NODE for its own ID), as a node that joined
// this network would have; kad-dht records the round trip.
func joinRequests(b *testing.B, n *dht.Node, regs []*dht.Node) {
	pm, err := kadpb.NewProtocolMessenger(n.Kad().MessageSender())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range regs {
		if _, err := pm.GetClosestPeers(ctx, r.Host().ID(), n.Host().ID()); err != nil {
			b.Fatalf("join request to a registry: %v", err)
		}
	}
}

// since returns the dials and requests (walk queries plus record requests)
// counted since before.
func (c *findCounts) since(before [3]int64) (dials, requests int64) {
	now := c.snapshot()
	return now[0] - before[0], now[1] - before[1] + now[2] - before[2]
}

// firstRawCounted times raw kad-dht FindProvidersAsync to its first
// provider and counts the queries its walk sent.
func firstRawCounted(n *dht.Node, c cid.Cid, tr *lookupTrace) (float64, int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ectx, events := routing.RegisterForQueryEvents(ctx)
	var queries int64
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		for ev := range events {
			if ev.Type == routing.SendingQuery {
				queries++
			}
			tr.event(*ev)
		}
	}()
	t0 := time.Now()
	tr.t0 = t0
	ch := n.Kad().FindProvidersAsync(ectx, c, 1)
	_, ok := <-ch
	d := time.Since(t0)
	cancel()
	for range ch {
	}
	<-counted
	return ms(d), queries, ok
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
