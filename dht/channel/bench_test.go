package channel_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

// benchMsg is the message the benchmark echoes.
var benchMsg = []byte(`{"type":"chat","text":"hello from the benchmark, 64 bytes long!!"}`)

// echoTarget serves a WebSocket echo on 127.0.0.1 and returns its URL.
func echoTarget(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			typ, m, err := ws.Read(r.Context())
			if err != nil || ws.Write(r.Context(), typ, m) != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "ws://" + l.Addr().String() + "/echo"
}

// roundTripper is one client end: the target straight, or a channel.
type roundTripper interface {
	rt(ctx context.Context) error
	close()
}

type wsClient struct{ ws *websocket.Conn }

func (c wsClient) rt(ctx context.Context) error {
	if err := c.ws.Write(ctx, websocket.MessageText, benchMsg); err != nil {
		return err
	}
	_, _, err := c.ws.Read(ctx)
	return err
}
func (c wsClient) close() { c.ws.CloseNow() }

type chanClient struct{ c *channel.Conn }

func (c chanClient) rt(ctx context.Context) error {
	if err := c.c.Send(ctx, channel.Message{Type: channel.Text, Data: benchMsg}); err != nil {
		return err
	}
	_, err := c.c.Receive(ctx)
	return err
}
func (c chanClient) close() { c.c.Close(channel.CloseNormal, "") }

// BenchmarkChannel compares a Go opener → libp2p channel → provider →
// WebSocket echo target with the same client talking to the echo target
// directly, on loopback: round trip p50/p99, aggregate round trips per
// second with 1, 100 and 1,000 channels open, and memory per open channel.
// Run with -benchtime 1x (scripts/bench.sh channel).
func BenchmarkChannel(b *testing.B) {
	url := echoTarget(b)
	// One opener holds every channel, as a bridge does: the node's
	// limits (netget.New sets PeerStreams from them likewise), and an open
	// rate that lets it open 1,000 at once (the default, 50 a second with
	// bursts of 100, is for strangers).
	cfg := channel.Config{MaxChannels: 4096, MaxChannelsPerPeer: 2048, OpenRate: 1e6, OpenBurst: 4096}
	hcfg := p2ptest.Config()
	hcfg.PeerStreams = map[string]int{string(channel.Protocol("bench")): 2048, channel.ServiceName: 2048}
	prov := p2ptest.NewHostFrom(b, hcfg)
	// go-libp2p lets one peer open ~600 streams at once (its per-peer
	// limit, all protocols): 1,000 channels come from four openers, as
	// from four bridges.
	clis := make([]host.Host, 4)
	for i := range clis {
		clis[i] = p2ptest.NewHostFrom(b, hcfg)
		p2ptest.Connect(b, clis[i], prov)
	}
	var next atomic.Int64
	srv, err := channel.NewServer(prov, "bench", cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	tg, err := channel.ParseTarget(url, false)
	if err != nil {
		b.Fatal(err)
	}
	srv.Handle("Echo", tg.Handler(channel.Filter{}, nil))
	ctx := context.Background()
	direct := func() roundTripper {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		return wsClient{ws}
	}
	viaChannel := func() roundTripper {
		cli := clis[next.Add(1)%int64(len(clis))]
		c, err := channel.Open(ctx, cli, "bench", prov.ID(), channel.Claims{Service: "Echo"}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		return chanClient{c}
	}

	for i := 0; i < b.N; i++ {
		d50, d99 := latency(b, direct(), 2000)
		c50, c99 := latency(b, viaChannel(), 2000)
		b.ReportMetric(d50, "direct-p50-us")
		b.ReportMetric(d99, "direct-p99-us")
		b.ReportMetric(c50, "channel-p50-us")
		b.ReportMetric(c99, "channel-p99-us")
		b.ReportMetric(c50/d50, "p50-ratio")
		for _, n := range []int{1, 100, 1000} {
			d := throughput(b, direct, n)
			c := throughput(b, viaChannel, n)
			b.ReportMetric(d, fmt.Sprintf("direct-%d-msgs/s", n))
			b.ReportMetric(c, fmt.Sprintf("channel-%d-msgs/s", n))
			b.ReportMetric(c/d, fmt.Sprintf("ratio-%d", n))
		}
		b.ReportMetric(perChannel(b, direct, 500), "direct-KiB/conn")
		b.ReportMetric(perChannel(b, viaChannel, 500), "channel-KiB/channel")
	}
}

// latency times n sequential round trips on c, in microseconds.
func latency(b *testing.B, c roundTripper, n int) (p50, p99 float64) {
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		if err := c.rt(ctx); err != nil {
			b.Fatal(err)
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	us := func(q float64) float64 { return float64(d[int(q*float64(n-1))].Nanoseconds()) / 1e3 }
	return us(.50), us(.99)
}

// throughput runs n clients doing round trips for 1.5 s and returns the
// round trips per second of all of them.
func throughput(b *testing.B, open func() roundTripper, n int) float64 {
	cs := make([]roundTripper, n)
	for i := range cs {
		cs[i] = open()
	}
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range cs {
		wg.Go(func() {
			for c.rt(ctx) == nil {
				total.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// perChannel opens n idle clients and returns the heap and stacks they
// take each, in KiB, counting both ends and the target's side of each.
func perChannel(b *testing.B, open func() roundTripper, n int) float64 {
	before := memInUse()
	cs := make([]roundTripper, n)
	for i := range cs {
		cs[i] = open()
	}
	// One round trip each, so that every target connection is up.
	for _, c := range cs {
		if err := c.rt(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	after := memInUse()
	for _, c := range cs {
		c.close()
	}
	return float64(int64(after)-int64(before)) / float64(n) / 1024
}

func memInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
