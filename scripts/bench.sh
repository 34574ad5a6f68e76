#!/usr/bin/env bash
# Benchmarks, with figures (not timed tests). Prints Markdown tables, the
# ones in the README, after the raw `go test -bench` output.
#
#   scripts/bench.sh                 # everything (about 15 minutes on 2 cores)
#   scripts/bench.sh network         # only the 25 / 100 / 200-node networks
#   scripts/bench.sh latency         # only the mocknet networks with link latency
#   scripts/bench.sh registry bridge # only those
#   scripts/bench.sh watch           # watch (about 30 s)
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
#           The whole default grid takes 6-11 min (3.1-3.8 GB peak); one
#           cell at a time: NETGET_BENCH_SIZES=1000 NETGET_BENCH_RTTS=100ms
#           NETGET_BENCH_LOOKUPS=40 (defaults 200,1000 / 20ms,100ms / 40).
#           NETGET_BENCH_SIZES=2000 NETGET_BENCH_RTTS=100ms took 16 min and
#           8.8 GB peak RSS (mocknet links every pair of hosts).
# registry: signed records accepted per second by one registry, and memory
#           per 10,000 records (dht/registry_bench_test.go).
# scale:    a registry on a synced Pebble datastore of NETGET_BENCH_RECORDS
#           records of as many providers (dht/scale_bench_test.go): start-up
#           time, time until every signature is checked, heap per record,
#           synced writes per second from NETGET_BENCH_WRITERS (64) at once
#           against the same on an in-memory store, and lists per second of
#           one hot service of 1,000 providers against a Go-map baseline.
#           Not in the default set (minutes, and GiBs at a million).
# bridge:   1,000 concurrent WebSocket clients through one bridge
#           (bridge/bench_test.go).
# sync:     registries in concert (dht/sync_bench_test.go): an empty
#           registry catching up with one holding 10,000 and 100,000 records
#           (time, CPU, bytes read vs the records' bytes), and propagation of
#           a pushed record to 3 and 10 registries, against the push's own
#           round trip measured in the same run.
# watch:    1,000 watchers on one registry: change-to-watcher latency for
#           provide and withdraw vs a finder polling every second, memory per
#           watcher, a repeat Find on a watching node (dht/watch_bench_test.go).
# relay:    a registry-protocol round trip and a libp2p ping to a node behind
#           a circuit relay v2, against the same node dialled directly
#           (dht/nat_bench_test.go).
# channel:  a Go opener -> libp2p channel -> provider -> WebSocket echo target,
#           against the same client talking to the target directly: round
#           trip p50/p99, round trips/s with 1, 100 and 1,000 channels, memory
#           per open channel (dht/channel/bench_test.go).
#           Then a page's channel through the bridge: WS client -> bridge ->
#           libp2p -> provider -> WS echo target, against direct
#           (BenchmarkChannelBridge); the bridge's own hop with an in-process
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
[ ${#what[@]} -eq 0 ] && what=(network latency registry bridge relay channel sync watch bridge-watch)

mkdir -p bench-results
out="bench-results/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "bench.sh: writing $out (open-file limit $(ulimit -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2

for w in "${what[@]}"; do
	case "$w" in
	network) go test -run '^$' -bench 'BenchmarkNetwork' -benchtime 1x -timeout 60m ./dht/ ;;
	latency) go test -run '^$' -bench 'BenchmarkLatency' -benchtime 1x -timeout 60m ./dht/ ;;
	registry) go test -run '^$' -bench 'BenchmarkRegistryWrite' -benchtime 1x -timeout 10m ./dht/ ;;
	bridge) go test -run '^$' -bench 'BenchmarkBridge$' -benchtime 20000x -timeout 10m ./bridge/ ;;
	scale) go test -run '^$' -bench 'BenchmarkRegistryScale' -benchtime 1x -timeout 60m ./dht/ ;;
	sync) go test -run '^$' -bench 'BenchmarkSync' -benchtime 1x -timeout 30m ./dht/ ;;
	watch) go test -run '^$' -bench 'BenchmarkWatch$' -benchtime 1x -timeout 10m ./dht/ ;;
	relay) go test -run '^$' -bench 'BenchmarkRelay' -benchtime 3x -timeout 10m ./dht/ ;;
	channel)
		go test -run '^$' -bench 'BenchmarkChannel' -benchtime 1x -timeout 10m ./dht/channel/
		go test -run '^$' -bench 'BenchmarkChannelBridge' -benchtime 2000x -timeout 10m .
		go test -run '^$' -bench 'BenchmarkChannelHop|BenchmarkBinaryVsBase64' -benchtime 2000x -timeout 10m ./bridge/ ;;
	bridge-watch) go test -run '^$' -bench 'BenchmarkBridgeWatch$' -benchtime 50x -timeout 10m ./bridge/ ;;
	*) echo "bench.sh: unknown benchmark $w (want network, latency, registry, bridge, relay, channel, sync, watch, scale or bridge-watch)" >&2; exit 2 ;;
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
	print "\n| watchers on one registry | provide → watcher p50 / p95 | withdraw → watcher p50 / p95 | first watcher p50 | polling every 1 s p50 / p95 | poll / watch | stream round trip | KiB per watcher (both ends) | KiB per idle stream (baseline) | repeat Find on a watching node p50 | load average |"
	print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	printf "| %d | %.1f / %.1f ms | %.1f / %.1f ms | %.1f ms | %.0f / %.0f ms | %.1f× | %.3f ms | %.1f | %.1f | %.3f ms | %.1f |\n",
		m["watchers"], m["provide-p50-ms"], m["provide-p95-ms"], m["withdraw-p50-ms"], m["withdraw-p95-ms"], m["first-p50-ms"],
		m["poll-p50-ms"], m["poll-p95-ms"], m["poll/watch"], m["rtt-ms"], m["KiB/watcher"], m["KiB/idle-stream"], m["find-p50-ms"], m["load"]
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
		print "\n| records | start-up (serving) | all verified | heap per record | synced writes/s | in-memory writes/s | synced / memory | hot-service lists/s | lists/s, computed afresh | baseline lists/s | lists / baseline |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %d | %.1f s | %.1f s | %.0f B | %.0f | %.0f | %.2f× | %.0f | %.0f | %.0f | %.2f× |\n",
		m["records"], m["startup-s"], m["verified-s"], m["heap-B/record"], m["synced-writes/s"], m["memory-writes/s"],
		m["synced-writes/s"] / m["memory-writes/s"], m["lists/s"], m["cold-lists/s"], m["baseline-lists/s"], m["lists/baseline"]
}
/^BenchmarkBridge-/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!br++) {
		print "\n| bridge, concurrent WebSocket clients | finds per second | p50 | p99 | bare WebSocket echo (floor), same run | bridge / echo | CPU per find, bridge / echo | KiB per connection |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %d clients | %.0f | %.1f ms | %.1f ms | %.0f finds/s, p99 %.1f ms | %.2f× | %.1f / %.1f µs | %.1f |\n", m["clients"], m["finds/s"],
		m["p50-ms"], m["p99-ms"], m["echo-finds/s"], m["echo-p99-ms"], m["bridge/echo"], m["cpu-us/find"], m["echo-cpu-us/find"], m["KiB/conn"]
}
/^BenchmarkChannel(Bridge|Hop)\/rtt/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!rtt++) { print "\n| channel round trip (64 B) | direct p50 / p99 | through p50 / p99 | p50 ratio |"; print "| --- | --- | --- | --- |" }
	printf "| %s | %.3f / %.3f ms | %.3f / %.3f ms | %.2f× |\n", ($1 ~ /Hop/ ? "bridge hop alone" : "whole path"),
		m["direct-p50-ms"], m["direct-p99-ms"], m["bridge-p50-ms"], m["bridge-p99-ms"], m["p50-ratio"]
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
