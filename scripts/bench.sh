#!/usr/bin/env bash
# Benchmarks, with figures (not timed tests). Prints Markdown tables, the
# ones in the README, after the raw `go test -bench` output.
#
#   scripts/bench.sh                 # everything (about 15 minutes on 2 cores)
#   scripts/bench.sh network         # only the 25 / 100 / 200-node networks
#   scripts/bench.sh latency         # only the mocknet networks with link latency
#   scripts/bench.sh registry bridge # only those
#   scripts/bench.sh watch           # watch (about 1 min)
#   scripts/bench.sh watch-latency   # watch at RTT 20 and 100 ms on mocknet (about 40 s)
#   scripts/bench.sh relay           # only the relay (a few seconds)
#   scripts/bench.sh bridge-watch    # only the bridge's watch (about 40 s)
#   NETGET_BENCH_LOOKUPS=300 scripts/bench.sh network   # bigger sample (default 100)
#   NETGET_BENCH_RECORDS=1000000 scripts/bench.sh scale  # a million records (default 100,000)
#
# network:  in-process networks of 25, 100 and 200 nodes on TCP loopback:
#           find (fast path, DHT path alone, raw kad-dht FindProvidersAsync)
#           and provide (netget vs raw kad-dht Provide), the floor (one stream
#           round trip + one envelope verify), memory and goroutines per node.
# latency:  go-libp2p's mocknet with link latency: 200 and 1,000 nodes at RTT
#           20 ms and 100 ms (dht/latency_bench_test.go): find and provide in
#           RTTs, dials and requests per find, a record held locally.
#           Then, per cell, the hops to the first result (sequential round
#           trips: the walk depth of the query that found it), as a
#           histogram for the DHT path and raw kad-dht with the mean wall
#           time of each, the wall time beyond the hops (waiting on the CPU,
#           a hedge or a late peer, not on the network), and one line per
#           lookup over 1.5 RTT saying where it waited. Equal hops and a
#           different wall time is the two cores queueing, not the protocol.
#           A new connection's first kad-dht query waits for identify (one
#           RTT) on both paths; the DHT path's list to a peer its walk
#           dials does not (it leaves with the dial). The
#           p95 of 100 lookups moves ~10% run to run (raw's own: 2.82-3.14
#           RTT over seven runs at N=1,000 / 20 ms): compare ratios of
#           several runs, not one.
#           The whole default grid takes 6-11 min (3.1-3.8 GB peak); one
#           cell at a time: NETGET_BENCH_SIZES=1000 NETGET_BENCH_RTTS=100ms
#           NETGET_BENCH_LOOKUPS=40 (defaults 200,1000 / 20ms,100ms / 40).
#           NETGET_BENCH_SIZES=2000 NETGET_BENCH_RTTS=100ms took 16 min and
#           8.8 GB peak RSS (mocknet links every pair of hosts).
# registry: signed records accepted per second by one registry, and memory
#           per 10,000 records (dht/registry_bench_test.go).
# scale:    a registry on a synced Pebble datastore of NETGET_BENCH_RECORDS
#           records of as many providers (dht/scale_bench_test.go): start-up
#           wall and CPU time against a raw Pebble scan of the same files in
#           the same run (the floor), time and CPU until every signature is
#           checked, heap per record, synced writes per second from
#           NETGET_BENCH_WRITERS (64) at once (NETGET_BENCH_WRITES, 10,000)
#           against two floors: like for like, as many other fresh records
#           verified and put with a sync (the same kad record bytes, the
#           same keys' layout) into the registry's own loaded datastore, in
#           10 turns alternating with the registry's (synced/raw-same); and
#           the same records into a fresh, empty Pebble datastore, the floor
#           reported before (synced/raw: leaves out the loaded datastore's
#           compactions). Each row prints CPU, heap allocated, WAL and table
#           bytes a write and GC cycles; then the memtable is flushed and
#           compactions awaited, and "settled" rates charge that to both.
#           NETGET_BENCH_WRITEPROFILE=dir profiles the turns (CPU labelled
#           phase=registry|floor, block, mutex); NETGET_BENCH_MEMTABLE_MIB=4
#           opens the datastores with Pebble's own memtable (the size before
#           the 32 MiB default). Also the registry's path on an in-memory
#           store,
#           lists per second of one hot service of 1,000 providers (32 best, kept and afresh), paged lists (pages of 100,
#           afresh, and walks of all 1,000 in pages of 1,024 cut at 180 KiB)
#           against the same slices picked from a Go map. The generated
#           datastore is kept in bench-results/scale-<N> for 20 h (records
#           live 24 h) and copied for each run; NETGET_BENCH_CACHE=off
#           regenerates it. First, BenchmarkStartupPeek (dht/store): the
#           start-up decode of one stored record against the full decode it
#           replaced. Not in the default set (minutes, and GiBs at a
#           million).
# bridge:   1,000 concurrent WebSocket clients through one bridge, one find
#           in flight each, a fake finder answering one record at once
#           (bridge/bench_test.go). Six rows, same run: the lean client
#           (bridge/leanws_test.go, RFC 6455 over a net.Conn) against a bare
#           coder/websocket echo server (the floor) and against the bridge;
#           the same with coder/websocket's client; the lean clients in a
#           child process against the echo and the bridge (server CPU and
#           system calls per find measured alone). finds/s, p50/p99, CPU
#           per find (both ends), CPU-bound finds/s (2 cores / CPU per
#           find: what the machine allows were the cores the bench's alone)
#           and bridge/floor. 20,000 finds a row, about a minute.
# sync:     registries in concert (dht/sync_bench_test.go): an empty
#           registry catching up with one holding 10,000 and 100,000 records
#           (time, CPU, bytes read vs the records' bytes), and propagation of
#           a pushed record to 3 and 10 registries, against the push's own
#           round trip measured in the same run.
# watch:    one registry (health checks on) in this process, 1,000 watchers,
#           one peer each, in a child process (the test binary run again), so
#           the heap measured is the registry's: KiB per watch (and per idle
#           connected peer); one watcher: put accepted -> verified event vs
#           the same pair's bare stream round trip and a bare write+verify
#           floor; 1,000 watchers: accepted -> verified event and the
#           registry's fan-out (first to last write) vs a bare fan-out floor
#           on the same 1,000 connections (every reader verifies Ed25519, as
#           a watcher must), vs polling every second; a repeat Find on a
#           watching node (dht/watch_bench_test.go, about 1 min). Times across
#           the processes are wall-clock (one kernel clock).
# watch-latency: one registry (health checks on), a provider and 1,000
#           watchers (NETGET_BENCH_WATCHERS), each its own peer, on go-libp2p's
#           mocknet with link latency RTT/2 one way, RTT 20 ms and 100 ms
#           (NETGET_BENCH_RTTS), all in one process (dht/watch_latency_bench_test.go).
#           10 provides + 10 withdrawals (NETGET_BENCH_WATCH_CHANGES): from the
#           registry accepting a change to each watcher having it verified, in
#           RTTs, against the same pair's bare stream round trip (an echo on the
#           same link, measured in the same run: reads ~1 RTT); one watcher
#           alone; a bare fan-out floor (the same bytes written to 1,000 bare
#           streams, each reader verifying); the same changes with each
#           watcher's Ed25519 check timed alone ("own CPUs": as on a real
#           network, where each watcher verifies on its own machine; here the
#           1,000 checks share the registry's two cores). Mocknet has no
#           encryption or yamux: the watch bench above measures those on loopback.
# relay:    a registry-protocol round trip and a libp2p ping to a node behind
#           a circuit relay v2, against the same node dialled directly
#           (dht/nat_bench_test.go).
# channel:  a Go opener -> libp2p channel -> provider -> WebSocket echo target,
#           against the same client talking to the target directly: round
#           trip p50/p99, round trips/s with 1, 100 and 1,000 channels, memory
#           per open channel (dht/channel/bench_test.go).
#           Then a page's channel through the bridge: WS client -> bridge ->
#           libp2p -> provider -> WS echo target, against direct
#           (BenchmarkChannelBridge), with its floor measured in the same
#           run on the same hosts: the three hops with no netget code (WS
#           echo + bare libp2p stream echo bridge host -> provider host +
#           WS echo), as the sum of their p50s and as the p50 of per-turn
#           sums (composed); the round trips take turns, 100 at a time. The
#           channels=1 figure is one message in flight, so 2 / round trip:
#           latency, not throughput. The bridge's own hop with an in-process
#           provider (BenchmarkChannelHop); binary frames against base64 in JSON
#           (BenchmarkBinaryVsBase64).
# bridge-watch: 1,000 pages watching one service through one bridge: change
#           pushed → result read, against every page polling with a find
#           (bridge/bench_watch_test.go).
#
# Raw output is kept under bench-results/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "bench.sh: Go is not installed or not on PATH (https://go.dev/doc/install)" >&2
	exit 1
fi
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(network latency registry bridge relay channel sync watch watch-latency bridge-watch)

mkdir -p bench-results
out="bench-results/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "bench.sh: writing $out (open-file limit $(ulimit -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2

for w in "${what[@]}"; do
	case "$w" in
	network) go test -run '^$' -bench 'BenchmarkNetwork' -benchtime 1x -timeout 60m ./dht/ ;;
	latency) go test -run '^$' -bench 'BenchmarkLatency' -benchtime 1x -timeout 60m ./dht/ ;;
	registry) go test -run '^$' -bench 'BenchmarkRegistryWrite' -benchtime 1x -timeout 10m ./dht/ ;;
	bridge)
		go test -run '^$' -bench 'BenchmarkBridge$' -benchtime 100000x -timeout 10m ./bridge/
		go test -run '^$' -bench 'BenchmarkBridgeServer' -benchtime 100000x -timeout 10m ./bridge/ ;;
	scale)
		go test -run '^$' -bench 'BenchmarkStartupPeek' -benchtime 200000x -timeout 10m ./dht/store/
		go test -run '^$' -bench 'BenchmarkRegistryScale' -benchtime 1x -timeout 60m ./dht/ ;;
	sync) go test -run '^$' -bench 'BenchmarkSync' -benchtime 1x -timeout 30m ./dht/ ;;
	watch) go test -run '^$' -bench 'BenchmarkWatch$' -benchtime 1x -timeout 10m ./dht/ ;;
	watch-latency) go test -run '^$' -bench 'BenchmarkWatchLatency$' -benchtime 1x -timeout 10m ./dht/ ;;
	relay) go test -run '^$' -bench 'BenchmarkRelay' -benchtime 3x -timeout 10m ./dht/ ;;
	channel)
		go test -run '^$' -bench 'BenchmarkChannel' -benchtime 1x -timeout 10m ./dht/channel/
		go test -run '^$' -bench 'BenchmarkChannelBridge' -benchtime 2000x -timeout 10m .
		go test -run '^$' -bench 'BenchmarkChannelHop|BenchmarkBinaryVsBase64' -benchtime 2000x -timeout 10m ./bridge/ ;;
	bridge-watch) go test -run '^$' -bench 'BenchmarkBridgeWatch$' -benchtime 50x -timeout 10m ./bridge/ ;;
	*) echo "bench.sh: unknown benchmark $w (want network, latency, registry, bridge, relay, channel, sync, watch, watch-latency, scale or bridge-watch)" >&2; exit 2 ;;
	esac
done | tee "$out"

# Tables from the benchmark lines: "BenchmarkX/sub-2  1  <ns> ns/op  <v> <unit> ...".
awk '
function name(s) { sub(/^Benchmark[A-Za-z]+\//, "", s); sub(/-[0-9]+$/, "", s); return s }
/^BenchmarkNetwork\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!net++) {
		print "\n| nodes | find, fast path p50 / p95 | find, DHT path p50 / p95 | raw kad-dht find p50 / p95 | floor | fast / floor | DHT / raw | provide p50 / p95 | raw Provide p50 / p95 | provide / raw | misses fast / DHT / raw | MiB per node | goroutines per node |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %s | %.2f / %.2f ms | %.2f / %.2f ms | %.2f / %.2f ms | %.3f ms | %.2f× | %.2f× | %.2f / %.2f ms | %.2f / %.2f ms | %.2f× | %d / %d / %d | %.2f | %.0f |\n",
		name($1), m["fast-p50-ms"], m["fast-p95-ms"], m["dht-p50-ms"], m["dht-p95-ms"], m["raw-p50-ms"], m["raw-p95-ms"],
		m["floor-ms"], m["fast/floor"], m["dht/raw"], m["provide-p50-ms"], m["provide-p95-ms"],
		m["rawprov-p50-ms"], m["rawprov-p95-ms"], m["provide/raw"], m["fast-misses"], m["dht-misses"], m["raw-misses"],
		m["MiB/node"], m["goroutines/node"]
}
/^BenchmarkLatency\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!lat++) {
		print "\n| nodes, RTT | floor p50 / p95 | find, fast path p50 / p95 | find, DHT path p50 / p95 | raw kad-dht find p50 / p95 | DHT / raw p50, p95 | held locally p95 | provide p50 / p95 | raw Provide p50 / p95 | dials / requests per find: fast, DHT, raw | misses fast / DHT / raw / local |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %s | %.2f / %.2f RTT | %.2f / %.2f RTT | %.2f / %.2f RTT | %.2f / %.2f RTT | %.2f×, %.2f× | %.3f ms (%.3f RTT) | %.2f / %.2f RTT | %.2f / %.2f RTT | %.1f / %.1f, %.1f / %.1f, %.1f / %.1f | %d / %d / %d / %d |\n",
		name($1), m["floor-rtt"], m["floor-p95-rtt"], m["fast-p50-rtt"], m["fast-p95-rtt"], m["dht-p50-rtt"], m["dht-p95-rtt"], m["raw-p50-rtt"], m["raw-p95-rtt"],
		m["dht/raw-p50"], m["dht/raw-p95"], m["local-p95-ms"], m["local-p95-rtt"], m["provide-p50-rtt"], m["provide-p95-rtt"],
		m["rawprov-p50-rtt"], m["rawprov-p95-rtt"], m["fast-dials"], m["fast-msgs"], m["dht-dials"], m["dht-msgs"],
		m["raw-dials"], m["raw-msgs"], m["fast-misses"], m["dht-misses"], m["raw-misses"], m["local-misses"]
}
/^BenchmarkRegistryWrite\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!reg++) { print "\n| registry store | records accepted per second | MiB per 10,000 records |"; print "| --- | --- | --- |" }
	mem = ("MiB/10k-records" in m) ? sprintf("%.1f", m["MiB/10k-records"]) : "(on disk)"
	printf "| %s | %.0f | %s |\n", name($1), m["records/s"], mem
}
/^BenchmarkSyncCatchUp\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!cu++) { print "\n| empty registry catching up | time | CPU (both registries) | records | read | read / records |"; print "| --- | --- | --- | --- | --- | --- |" }
	printf "| %s | %.2f s | %.2f s | %.1f MiB | %.1f MiB | %.2f× |\n", name($1), m["catchup-s"], m["cpu-s"], m["records-MiB"], m["read-MiB"], m["read/records"]
}
/^BenchmarkSyncPropagation\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!pr++) { print "\n| pushed record reaches every registry | p50 | p95 | push round trip p50 | p50 / round trip |"; print "| --- | --- | --- | --- | --- |" }
	printf "| %s | %.2f ms | %.2f ms | %.2f ms | %.2f× |\n", name($1), m["prop-p50-ms"], m["prop-p95-ms"], m["rtt-p50-ms"], m["prop/rtt"]
}
/^BenchmarkWatch-/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	print "\n| registry heap, 1,000 peers in a child process | per connected idle peer | per watch (target ≤ 16 KiB) | goroutines per watch | load average |"
	print "| --- | --- | --- | --- | --- |"
	printf "| %d watches | %.1f KiB | %.1f KiB | %.0f | %.1f |\n", m["watchers"], m["KiB/peer"], m["KiB/watch"], m["goroutines/watch"], m["load"]
	print "\n| one watcher, 200 changes | accepted → watcher verified p50 / p95 | bare stream round trip p50 / p95 | watch / round trip p50 (target ≤ 2×) | floor: bare write, read, verify p50 / p95 | floor / round trip | watch / floor |"
	print "| --- | --- | --- | --- | --- | --- | --- |"
	printf "| 1 | %.3f / %.3f ms | %.3f / %.3f ms | %.2f× | %.3f / %.3f ms | %.2f× | %.2f× |\n", m["one-p50-ms"], m["one-p95-ms"],
		m["rtt-p50-ms"], m["rtt-p95-ms"], m["one/rtt"], m["one-floor-p50-ms"], m["one-floor-p95-ms"], m["one-floor/rtt"], m["one/one-floor"]
	print "\n| watchers, 10 provides + 10 withdrawals | provide → watcher p50 / p95 | withdraw → watcher p50 / p95 | first watcher p50 | registry fan-out, first → last write p50 | floor: bare fan-out + verify p50 / p95 | floor fan-out p50 | watch / floor p50, p95 | polling every 1 s p50 / p95 | poll / watch | repeat Find on a watching node p50 |"
	print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	printf "| %d | %.1f / %.1f ms | %.1f / %.1f ms | %.1f ms | %.1f ms | %.1f / %.1f ms | %.1f ms | %.2f×, %.2f× | %.0f / %.0f ms | %.1f× | %.3f ms |\n",
		m["watchers"], m["provide-p50-ms"], m["provide-p95-ms"], m["withdraw-p50-ms"], m["withdraw-p95-ms"], m["first-p50-ms"],
		m["fanout-p50-ms"], m["floor-p50-ms"], m["floor-p95-ms"], m["floor-fanout-p50-ms"], m["watch/floor-p50"], m["watch/floor-p95"],
		m["poll-p50-ms"], m["poll-p95-ms"], m["poll/watch"], m["find-p50-ms"]
}
/^BenchmarkWatchLatency\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!wl++) {
		print "\n| watch on mocknet, RTT | bare stream round trip p50 | one watcher p50 / p95 | watchers p50 / p95 (first p50) | watch / round trip p50, p95 (target ≤ 2×) | floor: bare fan-out + verify p50 / p95 | watch / floor p50, p95 | verified on own CPUs / round trip p50, p95 (registry last write p50 / p95) | read, before verify p50 / p95 | registry last write after accept p50 / p95 | KiB per watcher (host + conn, watch; both ends) | load |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %d watchers, %s | %.2f RTT | %.2f / %.2f RTT | %.2f / %.2f RTT (%.2f) | %.2f×, %.2f× | %.2f / %.2f RTT | %.2f×, %.2f× | %.2f×, %.2f× (%.1f / %.1f ms) | %.2f / %.2f RTT | %.1f / %.1f ms | %.0f (%.0f + %.0f) | %.1f |\n",
		m["watchers"], name($1), m["echo-p50-rtt"], m["one-p50-rtt"], m["one-p95-rtt"], m["watch-p50-rtt"], m["watch-p95-rtt"], m["first-p50-rtt"],
		m["watch-p50/rtt"], m["watch-p95/rtt"], m["floor-p50-rtt"], m["floor-p95-rtt"], m["watch/floor-p50"], m["watch/floor-p95"],
		m["own-p50/rtt"], m["own-p95/rtt"], m["own-lastwrite-p50-ms"], m["own-lastwrite-p95-ms"], m["read-p50-rtt"], m["read-p95-rtt"], m["lastwrite-p50-ms"], m["lastwrite-p95-ms"],
		m["KiB/watcher"], m["KiB/peer"], m["KiB/watch"], m["load"]
}
/^BenchmarkRelay/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!rl++) { print "\n| through a circuit relay v2, loopback | direct p50 | relayed p50 | relayed / direct |"; print "| --- | --- | --- | --- |" }
	printf "| registry-protocol round trip (List) | %.3f ms | %.3f ms | %.2f× |\n", m["direct-list-p50-ms"], m["relayed-list-p50-ms"], m["list-relayed/direct"]
	printf "| libp2p ping | %.3f ms | %.3f ms | %.2f× |\n", m["direct-ping-p50-ms"], m["relayed-ping-p50-ms"], m["ping-relayed/direct"]
}
/^BenchmarkRegistryScale/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!sc++) {
		print "\n| records | start-up (serving), wall / CPU | raw Pebble scan (floor) | start-up / scan | all verified, wall / CPU | heap per record | synced writes/s | floor: verify + synced Pebble put | synced / floor | in-memory writes/s |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %d | %.1f / %.1f s | %.2f s | %.1f× | %.1f / %.1f s | %.0f B | %.0f | %.0f | %.2f× | %.0f |\n",
		m["records"], m["startup-s"], m["startup-cpu-s"], m["scan-s"], m["startup/scan"], m["verified-s"], m["verified-cpu-s"],
		m["heap-B/record"], m["synced-writes/s"], m["raw-writes/s"], m["synced/raw"], m["memory-writes/s"]
	print "\n| hot service of 1,000 | store | Go-map baseline, same run | store / baseline |"
	print "| --- | --- | --- | --- |"
	printf "| lists of the best 32, kept / afresh | %.0f / %.0f per s | %.0f per s | %.2f× |\n", m["lists/s"], m["cold-lists/s"], m["baseline-lists/s"], m["lists/baseline"]
	printf "| pages of 100, kept / afresh | %.0f / %.0f per s | %.0f per s | %.2f× |\n", m["pages100/s"], m["cold-pages100/s"], m["baseline-pages100/s"], m["pages100/baseline"]
	printf "| walks of all 1,000 (%d pages each) | %.0f per s | %.0f per s | %.2f× |\n", m["pages/walk"], m["walks/s"], m["baseline-walks/s"], m["walks/baseline"]
}
/^BenchmarkStartupPeek/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	print "\n| start-up decode of one stored record | peek (now) | full decode (before), same run | peek / full |"
	print "| --- | --- | --- | --- |"
	printf "| ns per record | %.0f | %.0f | %.2f× |\n", m["ns/record"], m["full-decode-ns/record"], m["peek/full"]
}
/^BenchmarkBridge-/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!br++) {
		print "\n| bridge, concurrent WebSocket clients | finds per second (lean client) | p50 | p99 | floor: lean client → bare echo, same run | bridge / floor | CPU per find, bridge / floor | server alone, bridge / echo (clients in a child) | coder/websocket client: bridge / floor finds/s | KiB per connection |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %d clients | %.0f | %.1f ms | %.1f ms | %.0f finds/s | %.2f× | %.1f / %.1f µs | %.1f / %.1f µs | %.0f / %.0f | %.1f |\n", m["clients"], m["finds/s"],
		m["p50-ms"], m["p99-ms"], m["floor-finds/s"], m["bridge/floor"], m["cpu-us/find"], m["floor-cpu-us/find"],
		m["server-cpu-us/find"], m["floor-server-cpu-us/find"], m["coder-finds/s"], m["coder-floor-finds/s"], m["KiB/conn"]
}
/^BenchmarkChannel(Bridge|Hop)\/rtt/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!rtt++) {
		print "\n| channel round trip (64 B) | direct p50 / p99 | through p50 / p99 | p50 ratio | libp2p stream hop p50 (vs WS hop) | floor p50: WS + libp2p + WS (/ direct) | through / floor | composed floor p50 (/ direct) | through / composed floor | load |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	if ("floor-p50-ms" in m)
		fl = sprintf("%.3f ms (%.2f×) | %.3f ms (%.2f×) | %.2f× | %.3f ms (%.2f×) | %.2f×", m["libp2p-p50-ms"], m["libp2p/ws"],
			m["floor-p50-ms"], m["floor/direct"], m["path/floor"], m["composed-p50-ms"], m["composed/direct"], m["path/composed"])
	else
		fl = "– | – | – | – | –"
	printf "| %s | %.3f / %.3f ms | %.3f / %.3f ms | %.2f× | %s | %s |\n", ($1 ~ /Hop/ ? "bridge hop alone" : "whole path"),
		m["direct-p50-ms"], m["direct-p99-ms"], m["bridge-p50-ms"], m["bridge-p99-ms"], m["p50-ratio"], fl, ("load" in m) ? sprintf("%.1f", m["load"]) : "–"
}
/^BenchmarkChannel(Bridge|Hop)\/channels=/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!thr++) { print "\n| channel messages/s | channels | direct | through | ratio |"; print "| --- | --- | --- | --- | --- |" }
	n = $1; sub(/.*channels=/, "", n); sub(/-[0-9]+$/, "", n)
	printf "| %s | %s | %.0f | %.0f | %.2f× |\n", ($1 ~ /Hop/ ? "bridge hop alone" : "whole path"), n,
		m["direct-msgs/s"], m["bridge-msgs/s"], m["bridge/direct"]
}
/^BenchmarkChannel(Bridge|Hop)\/memory/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	printf "\n%s: %.1f KiB per open channel\n", ($1 ~ /Hop/ ? "bridge hop alone" : "whole path (bridge, provider and target)"), m["KiB/channel"]
}
/^BenchmarkBinaryVsBase64\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!b64++) { print "\n| binary message | binary frame | base64 in JSON | ratio | bytes binary / base64 |"; print "| --- | --- | --- | --- | --- |" }
	n = $1; sub(/.*\//, "", n); sub(/-[0-9]+$/, "", n)
	printf "| %s | %.0f ns | %.0f ns | %.1f× | %d / %d |\n", n, m["binary-ns"], m["base64-ns"], m["base64/binary"], m["binary-wire-B"], m["base64-wire-B"]
}
/^BenchmarkChannel-[0-9]/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	print "\n| loopback, WebSocket echo target | round trip p50 / p99 | round trips/s, 1 / 100 / 1,000 open | KiB per open channel |"
	print "| --- | --- | --- | --- |"
	printf "| client → target directly | %.0f / %.0f µs | %.0f / %.0f / %.0f | %.1f |\n", m["direct-p50-us"], m["direct-p99-us"],
		m["direct-1-msgs/s"], m["direct-100-msgs/s"], m["direct-1000-msgs/s"], m["direct-KiB/conn"]
	printf "| client → channel → provider → target | %.0f / %.0f µs | %.0f / %.0f / %.0f | %.1f |\n", m["channel-p50-us"], m["channel-p99-us"],
		m["channel-1-msgs/s"], m["channel-100-msgs/s"], m["channel-1000-msgs/s"], m["channel-KiB/channel"]
	printf "| channel / direct | %.2f× p50 | %.2f× / %.2f× / %.2f× | |\n", m["p50-ratio"], m["ratio-1"], m["ratio-100"], m["ratio-1000"]
}
/^BenchmarkBridgeWatch-/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	print "\n| bridge, pages watching one service | change → page p50 / p95 | every page polls: find p50 / p95 | change / poll p50 | KiB per watch | goroutines per watch |"
	print "| --- | --- | --- | --- | --- | --- |"
	printf "| %d pages | %.1f / %.1f ms | %.1f / %.1f ms | %.2f× | %.1f | %.0f |\n", m["watchers"], m["change-p50-ms"], m["change-p95-ms"],
		m["poll-p50-ms"], m["poll-p95-ms"], m["change/poll-p50"], m["KiB/watch"], m["goroutines/watch"]
}' "$out"
echo "(misses: lookups with no result within 10 s; full log: $out)"
