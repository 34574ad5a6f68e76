package bridge_test

import (
	"testing"

	"github.com/netget/netget-peer/bridge"
)

// BenchmarkBridgeServer is BenchmarkBridge's child rows alone, one
// sub-benchmark each, so that a CPU profile of one holds the server's
// work and nothing else (the load generator is a child process): echo is
// the floor (the canned two-frame answer), bridge the bridge with the
// same fake finder and config as BenchmarkBridge. It reports the server's
// CPU per find (server-cpu-us/find) and its read/write calls; compare the
// two profiles to see where the bridge's extra microseconds go:
//
//	go test -run '^$' -bench 'BenchmarkBridgeServer/bridge' -benchtime 100000x -cpuprofile bridge.prof ./bridge/
//	go test -run '^$' -bench 'BenchmarkBridgeServer/echo' -benchtime 100000x -cpuprofile echo.prof ./bridge/
func BenchmarkBridgeServer(b *testing.B) {
	b.Run("echo", func(b *testing.B) {
		reportServer(b, runChildRow(b, "child", startEcho(b, "child")))
	})
	b.Run("bridge", func(b *testing.B) {
		srv := labelled("bridge", "child", func() *server { return startServer(b, benchFinder(b), benchConfig()) })
		reportServer(b, movedIn(srv, func() row { return runChildRow(b, "child", srv.wsURL()) }))
	})
}

// reportServer reports a child row's figures.
func reportServer(b *testing.B, r row) {
	b.ReportMetric(r.rate, "finds/s")
	b.ReportMetric(us(r.server), "server-cpu-us/find")
	b.ReportMetric(us(r.cpu), "cpu-us/find")
	b.ReportMetric(r.reads, "reads/find")
	b.ReportMetric(r.writes, "writes/find")
	b.ReportMetric(r.moved, "moved/find")
}

// benchFinder is BenchmarkBridge's finder: one provider of
// DatabaseService, answered at once. It applies the find's timeout
// (context.WithTimeout, as dht.Node.Find does) but keeps no record of the
// finds for tests to read: those two slices grew by one entry a find
// under a lock, about 1 µs of the server's CPU a find that was the
// bench's, not the bridge's (BenchmarkBridgeServer's profile; dropped in
// the fourth pass on issue 19).
func benchFinder(b *testing.B) *fakeFinder {
	f := newFakeFinder(b)
	f.add(b, "DatabaseService", 1)
	f.quiet = true
	return f
}

// benchConfig is BenchmarkBridge's bridge config: limits lifted for
// benchClients clients on one address, pings as deployed.
func benchConfig() bridge.Config {
	cfg := testConfig()
	cfg.PingInterval = bridge.DefaultPingInterval // as deployed: one pinger per session
	cfg.MaxConns = benchClients + 10
	// Every client is on 127.0.0.1: lift the per-address caps.
	cfg.MaxSessionsPerAddr, cfg.MaxOpenConns, cfg.MaxOpenConnsPerAddr = cfg.MaxConns, 2*cfg.MaxConns, 2*cfg.MaxConns
	cfg.MaxFinds = benchClients
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6
	return cfg
}
