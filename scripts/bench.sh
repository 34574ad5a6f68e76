#!/usr/bin/env bash
# Benchmarks, with figures (not timed tests). Prints Markdown tables, the
# ones in the README, after the raw `go test -bench` output.
#
#   scripts/bench.sh                 # everything (about 6 minutes on 2 cores)
#   scripts/bench.sh network         # only the 25 / 100 / 200-node networks
#   scripts/bench.sh registry bridge # only those
#   scripts/bench.sh relay           # only the relay (a few seconds)
#   NETGET_BENCH_LOOKUPS=300 scripts/bench.sh network   # bigger sample (default 100)
#
# network:  in-process networks of 25, 100 and 200 nodes on TCP loopback:
#           find (fast path, DHT path alone, raw kad-dht FindProvidersAsync)
#           and provide (netget vs raw kad-dht Provide), the floor (one stream
#           round trip + one envelope verify), memory and goroutines per node.
# registry: signed records accepted per second by one registry, and memory
#           per 10,000 records (dht/registry_bench_test.go).
# bridge:   1,000 concurrent WebSocket clients through one bridge
#           (bridge/bench_test.go).
# relay:    a registry-protocol round trip and a libp2p ping to a node behind
#           a circuit relay v2, against the same node dialled directly
#           (dht/nat_bench_test.go).
#
# Raw output is kept under bench-results/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "bench.sh: Go is not installed or not on PATH (https://go.dev/doc/install)" >&2
	exit 1
fi
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(network registry bridge relay)

mkdir -p bench-results
out="bench-results/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "bench.sh: writing $out (open-file limit $(ulimit -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2

for w in "${what[@]}"; do
	case "$w" in
	network) go test -run '^$' -bench 'BenchmarkNetwork' -benchtime 1x -timeout 60m ./dht/ ;;
	registry) go test -run '^$' -bench 'BenchmarkRegistryWrite' -benchtime 1x -timeout 10m ./dht/ ;;
	bridge) go test -run '^$' -bench 'BenchmarkBridge' -benchtime 20000x -timeout 10m ./bridge/ ;;
	relay) go test -run '^$' -bench 'BenchmarkRelay' -benchtime 3x -timeout 10m ./dht/ ;;
	*) echo "bench.sh: unknown benchmark $w (want network, registry, bridge or relay)" >&2; exit 2 ;;
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
/^BenchmarkRegistryWrite\// {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!reg++) { print "\n| registry store | records accepted per second | MiB per 10,000 records |"; print "| --- | --- | --- |" }
	mem = ("MiB/10k-records" in m) ? sprintf("%.1f", m["MiB/10k-records"]) : "(on disk)"
	printf "| %s | %.0f | %s |\n", name($1), m["records/s"], mem
}
/^BenchmarkRelay/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!rl++) { print "\n| through a circuit relay v2, loopback | direct p50 | relayed p50 | relayed / direct |"; print "| --- | --- | --- | --- |" }
	printf "| registry-protocol round trip (List) | %.3f ms | %.3f ms | %.2f× |\n", m["direct-list-p50-ms"], m["relayed-list-p50-ms"], m["list-relayed/direct"]
	printf "| libp2p ping | %.3f ms | %.3f ms | %.2f× |\n", m["direct-ping-p50-ms"], m["relayed-ping-p50-ms"], m["ping-relayed/direct"]
}
/^BenchmarkBridge/ {
	delete m; for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!br++) {
		print "\n| bridge, concurrent WebSocket clients | finds per second | p50 | p99 | bare WebSocket echo (floor), same run | bridge / echo | CPU per find, bridge / echo | KiB per connection |"
		print "| --- | --- | --- | --- | --- | --- | --- | --- |"
	}
	printf "| %d clients | %.0f | %.1f ms | %.1f ms | %.0f finds/s, p99 %.1f ms | %.2f× | %.1f / %.1f µs | %.1f |\n", m["clients"], m["finds/s"],
		m["p50-ms"], m["p99-ms"], m["echo-finds/s"], m["echo-p99-ms"], m["bridge/echo"], m["cpu-us/find"], m["echo-cpu-us/find"], m["KiB/conn"]
}' "$out"
echo "(misses: lookups with no result within 10 s; full log: $out)"
