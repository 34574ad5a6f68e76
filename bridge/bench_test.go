package bridge_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/netget/netget-peer/bridge"
)

// benchClients is how many WebSocket clients BenchmarkBridge keeps open.
const benchClients = 1000

// BenchmarkBridge: 1,000 WebSocket clients on loopback, each running
// finds back to back for a known service (one provider, answered at once
// by a fake finder), so the figures are the bridge's own cost. b.N finds
// are shared among the clients; the run is bounded by a 2-minute deadline.
// Reports finds/s, p50/p99 latency (find sent → done read) and heap+stack
// per connection (both ends: client and server live in this process).
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

	before := memInUse()
	goroutines := runtime.NumGoroutine()
	conns := openClients(b, s, benchClients)
	perConn := float64(memInUse()-before) / benchClients
	goPerConn := float64(runtime.NumGoroutine()-goroutines) / benchClients

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lat := make([][]time.Duration, len(conns))
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
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
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "finds/s")
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(perConn/1024, "KiB/conn")
	b.ReportMetric(goPerConn, "goroutines/conn")
	b.ReportMetric(float64(benchClients), "clients")
}

// openClients dials n clients, 50 at a time, each past its welcome.
func openClients(b *testing.B, s *server, n int) []*websocket.Conn {
	conns := make([]*websocket.Conn, n)
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(50)
	for i := range conns {
		g.Go(func() error {
			c, _, err := tryDial(s, dialOpts{})
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
	for range 2 { // result, done
		_, b, err := c.Read(ctx)
		if err != nil {
			return 0, err
		}
		f, err := bridge.ParseServerFrame(b)
		if err != nil {
			return 0, err
		}
		if e, ok := f.(*bridge.ErrorFrame); ok {
			return 0, fmt.Errorf("find %s: %s: %s", id, e.Code, e.Message)
		}
	}
	return time.Since(start), nil
}

// memInUse is heap plus stacks in use, after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
