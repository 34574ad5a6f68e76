package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/record"
)

// benchClients is how many WebSocket clients BenchmarkBridge keeps open.
const benchClients = 1000

// BenchmarkBridge: 1,000 WebSocket clients on loopback, each running
// finds back to back for a known service (one provider, answered at once
// by a fake finder), so the figures are the bridge's own cost. b.N finds
// are shared among the clients; the run is bounded by a 2-minute deadline.
// Reports finds/s, p50/p99 latency (find sent → done read), heap+stack
// per connection (both ends: client and server live in this process), and
// the CPU time per find. First, in the same run, the same clients drive a
// bare WebSocket server that answers each find with the same two frames,
// canned: echo-finds/s is the floor of loopback WebSockets on this
// machine at this moment, bridge/echo the share of it the bridge keeps.
//
//	go test -run '^$' -bench BenchmarkBridge -benchtime 20000x ./bridge/
func BenchmarkBridge(b *testing.B) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		b.Logf("open-file limit %d; %d clients use about %d descriptors", lim.Cur, benchClients, 2*benchClients)
	}
	f := newFakeFinder(b)
	f.add(b, "DatabaseService", 1)
	cfg := testConfig()
	cfg.PingInterval = bridge.DefaultPingInterval // as deployed: one pinger per session
	cfg.MaxConns = benchClients + 10
	// Every client is on 127.0.0.1: lift the per-address caps.
	cfg.MaxSessionsPerAddr, cfg.MaxOpenConns, cfg.MaxOpenConnsPerAddr = cfg.MaxConns, 2*cfg.MaxConns, 2*cfg.MaxConns
	cfg.MaxFinds = benchClients
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6
	s := startServer(b, f, cfg)

	// The floor, in the same run: a bare WebSocket server answering each
	// find frame with the same two frames, canned (no parsing, no checks,
	// no finder). bridge/echo is what the bridge's own work costs.
	echoConns := openClients(b, startEcho(b), benchClients)
	echoRate, echoLat, echoCPU := runClients(b, echoConns)
	for _, c := range echoConns {
		c.CloseNow()
	}

	before := memInUse()
	goroutines := runtime.NumGoroutine()
	conns := openClients(b, s.wsURL(), benchClients)
	perConn := float64(memInUse()-before) / benchClients
	goPerConn := float64(runtime.NumGoroutine()-goroutines) / benchClients

	rate, all, cpu := runClients(b, conns)
	b.ReportMetric(rate, "finds/s")
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(echoRate, "echo-finds/s")
	b.ReportMetric(ms(echoLat[len(echoLat)*99/100]), "echo-p99-ms")
	b.ReportMetric(rate/echoRate, "bridge/echo")
	b.ReportMetric(float64(cpu)/1e3, "cpu-us/find")
	b.ReportMetric(float64(echoCPU)/1e3, "echo-cpu-us/find")
	// What the CPU per find allows on this machine's cores, were they ours.
	b.ReportMetric(float64(runtime.NumCPU())*1e9/float64(cpu), "cpu-bound-finds/s")
	b.ReportMetric(perConn/1024, "KiB/conn")
	b.ReportMetric(goPerConn, "goroutines/conn")
	b.ReportMetric(float64(benchClients), "clients")
}

// runClients runs b.N finds shared among conns, bounded by a 2-minute
// deadline, and returns finds per second, the sorted latencies and the
// process's CPU time (user + system, both ends and the GC) per find: on a
// machine shared with other work the wall-clock rate follows the load,
// the CPU per find much less.
func runClients(b *testing.B, conns []*websocket.Conn) (float64, []time.Duration, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lat := make([][]time.Duration, len(conns))
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	for i, c := range conns {
		g.Go(func() error {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				d, err := benchFind(gctx, c, fmt.Sprint(n))
				if err != nil {
					return err
				}
				lat[i] = append(lat[i], d)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	all := slices.Concat(lat...)
	slices.Sort(all)
	return float64(b.N) / elapsed.Seconds(), all, cpu / time.Duration(b.N)
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startEcho serves a bare WebSocket endpoint on loopback that answers the
// first frame (hello) with a welcome and every later one with a result and
// a done frame encoded once up front: the benchmark's floor. It returns
// the ws:// URL; the server and its connections close when b ends.
func startEcho(b *testing.B) string {
	b.Helper()
	f := newFakeFinder(b)
	rec := f.add(b, "DatabaseService", 1)[0]
	welcome, err1 := bridge.Marshal(&bridge.WelcomeFrame{Version: bridge.Version, Peer: "12D3KooWTestBridgePeer",
		Network: "development"})
	result, err2 := bridge.Marshal(&bridge.ResultFrame{ID: "10000", Record: record.ViewOf(rec), Source: "registry"})
	done, err3 := bridge.Marshal(&bridge.DoneFrame{ID: "10000", Count: 1})
	if err := errors.Join(err1, err2, err3); err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{bridge.Subprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for n := 0; ; n++ {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
			if n == 0 {
				err = c.Write(ctx, websocket.MessageText, welcome)
			} else if err = c.Write(ctx, websocket.MessageText, result); err == nil {
				err = c.Write(ctx, websocket.MessageText, done)
			}
			if err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// openClients dials n clients, 50 at a time, each past its welcome.
func openClients(b *testing.B, url string, n int) []*websocket.Conn {
	conns := make([]*websocket.Conn, n)
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(50)
	for i := range conns {
		g.Go(func() error {
			c, _, err := tryDial(nil, dialOpts{endpoint: url})
			if err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			mu.Lock()
			conns[i] = c
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			hello, _ := bridge.Marshal(&bridge.HelloFrame{Version: bridge.Version})
			if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
				return err
			}
			_, _, err = c.Read(ctx)
			return err
		})
	}
	err := g.Wait()
	b.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return conns
}

// benchFind runs one find and returns its latency: find written → done read.
func benchFind(ctx context.Context, c *websocket.Conn, id string) (time.Duration, error) {
	frame := []byte(`{"type":"find","id":"` + id + `","service":"DatabaseService"}`)
	start := time.Now()
	if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
		return 0, err
	}
	for _, want := range []string{`{"type":"result",`, `{"type":"done",`} {
		_, b, err := c.Read(ctx)
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(string(b), want) {
			return 0, unexpected(id, b)
		}
	}
	return time.Since(start), nil
}

// unexpected says what came instead of a find's result or done frame.
// (benchFind checks frame types by their prefix, which Marshal writes
// first: decoding every record in the clients would make the benchmark
// measure encoding/json on the client side as much as the bridge.)
func unexpected(id string, b []byte) error {
	f, err := bridge.ParseServerFrame(b)
	if err != nil {
		return fmt.Errorf("find %s: %w", id, err)
	}
	if e, ok := f.(*bridge.ErrorFrame); ok {
		return fmt.Errorf("find %s: %s: %s", id, e.Code, e.Message)
	}
	return fmt.Errorf("find %s: unexpected frame %s", id, b)
}

// memInUse is heap plus stacks in use, after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
