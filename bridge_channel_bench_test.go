package netget_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sync/errgroup"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht/channel"
)

// BenchmarkChannelBridge: the whole path a page's channel takes, on
// loopback in one process: a WebSocket client → the bridge of a client
// node → libp2p → a provider node → a fresh WebSocket to an echo target,
// against the same client talking to the echo target directly. Reports
// round trip p50/p99 for both and the ratio (64-byte text messages, one
// at a time), and the floor measured in the same run on the same hosts:
// the three hops with no netget code (a WebSocket echo round trip, a bare
// libp2p stream echo round trip between the bridge's host and the
// provider's, another WebSocket round trip), the path over the floor, and
// one libp2p hop over one WebSocket hop. Then aggregate messages/s with
// 1, 100 and 1,000 channels open at once (100 per page session, spread
// over 20 providers, each channel a ping-pong loop with one message
// outstanding, so one channel's figure is 2 / its round trip) and the
// ratio to as many direct WebSockets, the two taking turns in four rounds
// (before: all direct, then all through); and heap+stack per open channel,
// the bridge node's and the provider node's sides together (both live in
// this process; the target's connections are counted too).
//
//	go test -run '^$' -bench BenchmarkChannelBridge -benchtime 2000x -timeout 10m .
func BenchmarkChannelBridge(b *testing.B) {
	echoURL := echoTarget(b)
	reg := registryB(b)
	target, err := channel.ParseTarget(echoURL, false)
	if err != nil {
		b.Fatal(err)
	}
	// A provider takes at most channel.Config.MaxChannelsPerPeer (256)
	// channels from one opener peer, and a bridge is one peer: 1,000
	// channels go to 20 providers, 50 each.
	var (
		provs     []string
		provNodes []*netget.Node
	)
	for range 20 {
		prov := startB(b, netget.Service(), reg)
		if err := prov.Handle("Echo", target.Handler(channel.Filter{}, nil)); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := prov.Provide(ctx, netget.Spec{Name: "Echo"})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		provs = append(provs, prov.ID().String())
		provNodes = append(provNodes, prov)
	}
	bcfg := netget.Client()
	bcfg.BridgeAddr = "127.0.0.1:0"
	bcfg.Bridge = bridge.DefaultConfig("", "")
	bcfg.Bridge.PingInterval = 0
	bcfg.Bridge.FramesPerSecond, bcfg.Bridge.FrameBurst = 1e6, 1e6
	bcfg.Bridge.MaxChannels, bcfg.Bridge.MaxChannelsTotal = 100, 4000
	bcfg.Bridge.ChannelBytesPerSecond = 1 << 30
	node := startB(b, bcfg, reg)
	wsURL := strings.Replace(node.BridgeURL(), "http", "ws", 1) + bridge.PathWS
	msg := strings.Repeat("0123456789abcdef", 4) // 64 bytes

	b.Run("rtt", func(b *testing.B) {
		ws := dialWS(b, echoURL, "")
		s := dialWS(b, wsURL, bridge.Subprotocol)
		openChannels(b, s, provs, 0, 1) // c0, to provNodes[0]
		st := echoStream(b, node, provNodes[0])
		// The three kinds of round trip take turns, 100 at a time, so
		// that the load of the machine weighs on each alike.
		var direct, hop, path []time.Duration
		for done := 0; done < b.N; done += 100 {
			k := min(100, b.N-done)
			direct = append(direct, rtts(b, ws, "", msg, k)...)
			hop = append(hop, streamRTTs(b, st, len(msg)+2, k)...)
			path = append(path, rtts(b, s, "c0", msg, k)...)
		}
		// The floor is the three hops with no netget code: a WebSocket
		// round trip (page ↔ bridge), a bare libp2p stream round trip on
		// the bridge's connection to the provider, a WebSocket round trip
		// (provider ↔ target). Two figures: the sum of their p50s, and
		// the p50 of the sums of samples taken in the same turn (a
		// WebSocket sample, a stream sample, another WebSocket sample),
		// which is what three hops in a row cost when each may wait for
		// the CPU: on a loaded machine the median of a sum is above the
		// sum of the medians.
		composed := make([]time.Duration, len(path))
		for i := range composed {
			composed[i] = direct[i] + hop[i] + direct[(i+len(direct)/2)%len(direct)]
		}
		for _, d := range [][]time.Duration{direct, hop, path, composed} {
			slices.Sort(d)
		}
		p50 := func(d []time.Duration) float64 { return msF(d[len(d)/2]) }
		p99 := func(d []time.Duration) float64 { return msF(d[len(d)*99/100]) }
		floor := 2*p50(direct) + p50(hop)
		b.ReportMetric(p50(direct), "direct-p50-ms")
		b.ReportMetric(p99(direct), "direct-p99-ms")
		b.ReportMetric(p50(path), "bridge-p50-ms")
		b.ReportMetric(p99(path), "bridge-p99-ms")
		b.ReportMetric(p50(path)/p50(direct), "p50-ratio")
		b.ReportMetric(p50(hop), "libp2p-p50-ms")
		b.ReportMetric(p99(hop), "libp2p-p99-ms")
		b.ReportMetric(p50(hop)/p50(direct), "libp2p/ws")
		b.ReportMetric(floor, "floor-p50-ms")
		b.ReportMetric(floor/p50(direct), "floor/direct")
		b.ReportMetric(p50(path)/floor, "path/floor")
		b.ReportMetric(p50(composed), "composed-p50-ms")
		b.ReportMetric(p50(composed)/p50(direct), "composed/direct")
		b.ReportMetric(p50(path)/p50(composed), "path/composed")
		b.ReportMetric(loadAverage(), "load")
	})
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			// Direct and through take turns, four rounds each, so that
			// the load of the machine weighs on both alike.
			const rounds = 4
			perRound := max(b.N/n/rounds, 3)
			var directLoops, bridgeLoops []pingLoop
			for range n {
				directLoops = append(directLoops, pingLoop{conn: dialWS(b, echoURL, "")})
			}
			for i := 0; i < n; i += 100 {
				s := dialWS(b, wsURL, bridge.Subprotocol)
				for _, id := range openChannels(b, s, provs, i, min(100, n-i)) {
					bridgeLoops = append(bridgeLoops, pingLoop{conn: s, id: id})
				}
			}
			var directTime, bridgeTime time.Duration
			for range rounds {
				directTime += runLoops(b, directLoops, perRound, msg)
				bridgeTime += runLoops(b, bridgeLoops, perRound, msg)
			}
			msgs := float64(2 * n * perRound * rounds) // two per round trip
			direct, viaBridge := msgs/directTime.Seconds(), msgs/bridgeTime.Seconds()
			b.ReportMetric(direct, "direct-msgs/s")
			b.ReportMetric(viaBridge, "bridge-msgs/s")
			b.ReportMetric(viaBridge/direct, "bridge/direct")
		})
	}
	b.Run("memory", func(b *testing.B) {
		const n = 500
		before := heapAndStacks()
		for i := 0; i < n; i += 100 {
			openChannels(b, dialWS(b, wsURL, bridge.Subprotocol), provs, i, 100)
		}
		b.ReportMetric(float64(heapAndStacks()-before)/n/1024, "KiB/channel")
	})
}

// pingLoop is one ping-pong loop: a direct WebSocket, or a channel id on
// a bridge session.
type pingLoop struct {
	conn *websocket.Conn
	id   string
}

// runLoops runs every loop at once, perChan round trips each, and returns
// how long they took. Each connection's frames are read by one goroutine
// and handed to the loop waiting on that channel id.
func runLoops(b *testing.B, loops []pingLoop, perChan int, msg string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waiters := map[*websocket.Conn]map[string]chan struct{}{}
	for _, l := range loops {
		if waiters[l.conn] == nil {
			waiters[l.conn] = map[string]chan struct{}{}
		}
		waiters[l.conn][l.id] = make(chan struct{}, 1)
	}
	var g errgroup.Group
	for c, ws := range waiters {
		g.Go(func() error {
			for range perChan * len(ws) {
				_, raw, err := c.Read(ctx)
				if err != nil {
					return err
				}
				id := ""
				if _, direct := ws[""]; !direct {
					var f struct{ Type, ID string }
					json.Unmarshal(raw, &f)
					if f.Type != bridge.TypeMessage {
						return fmt.Errorf("unexpected frame %s", raw)
					}
					id = f.ID
				}
				ws[id] <- struct{}{}
			}
			return nil
		})
	}
	start := time.Now()
	for _, l := range loops {
		frame := []byte(msg)
		if l.id != "" {
			frame, _ = bridge.Marshal(&bridge.SendFrame{ID: l.id, Data: msg})
		}
		w := waiters[l.conn][l.id]
		g.Go(func() error {
			for range perChan {
				if err := l.conn.Write(ctx, websocket.MessageText, frame); err != nil {
					return err
				}
				select {
				case <-w:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// rtts sends msg and reads its echo n times (on channel id through the
// bridge, or directly when id is ""), returning the round trips in order.
func rtts(b *testing.B, c *websocket.Conn, id, msg string, n int) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	frame := []byte(msg)
	if id != "" {
		frame, _ = bridge.Marshal(&bridge.SendFrame{ID: id, Data: msg})
	}
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

// benchEchoProtocol is the floor's libp2p hop: a bare stream echoing
// what it reads, with no netget code on it.
const benchEchoProtocol = "/netget/bench/echo/1.0.0"

// echoStream opens a bare libp2p stream from a to p, on the connection
// their channels use, that p echoes byte for byte; closed when the
// benchmark ends.
func echoStream(b *testing.B, a, p *netget.Node) network.Stream {
	p.Host().SetStreamHandler(benchEchoProtocol, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := a.Host().NewStream(ctx, p.ID(), benchEchoProtocol)
	if err != nil {
		b.Fatalf("floor: open the echo stream: %v", err)
	}
	b.Cleanup(func() { st.Reset() })
	return st
}

// streamRTTs writes size bytes on st and reads their echo n times,
// returning the round trips.
func streamRTTs(b *testing.B, st network.Stream, size, n int) []time.Duration {
	out := make([]time.Duration, 0, n)
	buf := make([]byte, size)
	for range n {
		start := time.Now()
		if _, err := st.Write(buf); err != nil {
			b.Fatalf("floor: write: %v", err)
		}
		if _, err := io.ReadFull(st, buf); err != nil {
			b.Fatalf("floor: read: %v", err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

// dialWS opens a WebSocket (to a bridge when proto is set, past its
// welcome), closed when the benchmark ends.
func dialWS(b *testing.B, url, proto string) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var opts websocket.DialOptions
	if proto != "" {
		opts.Subprotocols = []string{proto}
	}
	c, _, err := websocket.Dial(ctx, url, &opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseNow() })
	if proto != "" {
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","version":1}`))
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// openChannels opens n channels to Echo on session c, ids c<from>…, to
// the providers in turn, and waits for each opened.
func openChannels(b *testing.B, c *websocket.Conn, provs []string, from, n int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d", from+i)
		peer := provs[(from+i)%len(provs)]
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"open","id":"`+ids[i]+`","service":"Echo","peer":"`+peer+`"}`))
	}
	for range ids {
		_, raw, err := c.Read(ctx)
		if err != nil || !strings.Contains(string(raw), `"opened"`) {
			b.Fatalf("open: %s %v", raw, err)
		}
	}
	return ids
}

// echoTarget serves a WebSocket echo on 127.0.0.1: each message back as is.
func echoTarget(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, m, err := c.Read(r.Context())
			if err != nil || c.Write(r.Context(), typ, m) != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "ws://" + l.Addr().String() + "/echo"
}

func registryB(b *testing.B) *netget.Node {
	cfg := netget.Registry()
	cfg.DataDir = b.TempDir()
	return startB(b, cfg)
}

// startB is start for benchmarks.
func startB(b *testing.B, cfg netget.Config, boot ...*netget.Node) *netget.Node {
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	for _, n := range boot {
		a, err := ma.NewMultiaddr(n.Addrs()[0])
		if err != nil {
			b.Fatal(err)
		}
		cfg.Bootstrap = append(cfg.Bootstrap, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := netget.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

func heapAndStacks() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// loadAverage returns the machine's one-minute load average, 0 where
// /proc/loadavg is missing: the figures are printed with it.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

func msF(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
