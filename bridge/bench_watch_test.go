package bridge_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/netget/netget-peer/bridge"
)

// BenchmarkBridgeWatch: 1,000 WebSocket clients on loopback each watch
// one service through the bridge (a fake Watcher, so the figures are the
// bridge's own cost). Each of b.N rounds pushes one change to every watch
// and times change pushed → result frame read, per page. The baseline, in
// the same run on the same connections, is a poll: every page sends a find
// at once and times find sent → done read (up to 10 rounds); a polling
// page pays that each poll, on top of waiting half its interval on
// average for the change to be there to find. Also reports heap+stack per open watch (both ends: client and
// server live in this process) and goroutines per watch. Bounded by a
// 2-minute deadline.
//
//	go test -run '^$' -bench BenchmarkBridgeWatch -benchtime 50x ./bridge/
func BenchmarkBridgeWatch(b *testing.B) {
	w := newFakeWatcher(b)
	rec := w.add(b, "LiveService", 1)[0]
	w.records["liveservice"] = nil // the snapshot is empty: rounds bring the record
	w.add(b, "DatabaseService", 1) // for the baseline finds
	cfg := testConfig()
	cfg.PingInterval = bridge.DefaultPingInterval
	cfg.MaxConns = benchClients + 10
	cfg.MaxSessionsPerAddr, cfg.MaxOpenConns, cfg.MaxOpenConnsPerAddr = cfg.MaxConns, 2*cfg.MaxConns, 2*cfg.MaxConns
	cfg.MaxWatches, cfg.MaxFinds = benchClients, benchClients
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6
	s := startServer(b, w, cfg)
	conns := openClients(b, s.wsURL(), benchClients)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Baseline: every page finds at once, as polling pages do each poll.
	finds := make([][]time.Duration, len(conns))
	for round := range min(b.N, 10) {
		var g errgroup.Group
		for i, c := range conns {
			g.Go(func() error {
				d, err := benchFind(ctx, c.c, fmt.Sprint("f", round))
				finds[i] = append(finds[i], d)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}

	before, goroutines := memInUse(), runtime.NumGoroutine()
	frame := []byte(`{"type":"watch","id":"w","service":"LiveService"}`)
	for _, c := range conns {
		if err := c.c.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, "every watch runs", func() bool { return s.Stats().WatchesRunning == benchClients })
	perWatch := float64(memInUse()-before) / benchClients
	goPerWatch := float64(runtime.NumGoroutine()-goroutines) / benchClients

	got := make(chan time.Time, benchClients)
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Go(func() { readResults(ctx, c.c, got) })
	}
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		w.push(b, "LiveService", upsert(rec))
		for range benchClients {
			select {
			case at := <-got:
				lat = append(lat, at.Sub(start))
			case <-ctx.Done():
				b.Fatal("a round did not reach every page within the deadline")
			}
		}
	}
	b.StopTimer()
	cancel()
	readers.Wait()
	slices.Sort(lat)
	all := slices.Concat(finds...)
	slices.Sort(all)
	p50, p95, find50, find95 := lat[len(lat)/2], lat[len(lat)*95/100], all[len(all)/2], all[len(all)*95/100]
	b.ReportMetric(ms(p50), "change-p50-ms")
	b.ReportMetric(ms(p95), "change-p95-ms")
	b.ReportMetric(ms(find50), "poll-p50-ms")
	b.ReportMetric(ms(find95), "poll-p95-ms")
	b.ReportMetric(float64(p50)/float64(find50), "change/poll-p50")
	b.ReportMetric(perWatch/1024, "KiB/watch")
	b.ReportMetric(goPerWatch, "goroutines/watch")
	b.ReportMetric(float64(benchClients), "watchers")
}

// readResults reads frames on c until ctx ends, sending the time each
// result frame arrived.
func readResults(ctx context.Context, c *websocket.Conn, got chan<- time.Time) {
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if f, err := bridge.ParseServerFrame(b); err == nil {
			if _, ok := f.(*bridge.ResultFrame); ok {
				select {
				case got <- time.Now():
				case <-ctx.Done():
					return
				}
			}
		}
	}
}
