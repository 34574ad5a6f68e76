#!/usr/bin/env bash
# Network benchmark: builds in-process networks of 25, 100 and 200 nodes on
# TCP loopback and compares netget's Find / Publish with raw kad-dht on the
# same keys (see BenchmarkNetwork in dht/bench_test.go). Takes a few minutes.
#
#   scripts/bench.sh                                    # all sizes
#   scripts/bench.sh -bench 'BenchmarkNetwork/N=(25|100)$'   # later -bench wins
#   NETGET_BENCH_LOOKUPS=100 scripts/bench.sh           # bigger sample
#
# Extra arguments go to `go test`. The raw output is kept under
# bench-results/ (gitignored); a summary table follows it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "bench.sh: Go is not installed or not on PATH (https://go.dev/doc/install)" >&2
	exit 1
fi

mkdir -p bench-results
out="bench-results/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "bench.sh: writing $out (open-file limit $(ulimit -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2

# -benchtime 1x: each size is built once and runs its fixed sample of
# lookups; -timeout covers building and tearing down 325 nodes.
go test -run '^$' -bench 'BenchmarkNetwork' -benchtime 1x -timeout 30m ./dht/ "$@" | tee "$out"

# One row per size from the benchmark lines: "BenchmarkNetwork/N=200-2 1 <ns> ns/op <v> <unit> ...".
awk '
/^BenchmarkNetwork\/N=/ {
	size = $1; sub(/^BenchmarkNetwork\//, "", size); sub(/-[0-9]+$/, "", size)
	for (i = 3; i + 1 <= NF; i += 2) m[$(i + 1)] = $i
	if (!header++) {
		printf "\n%-7s | %-23s | %-23s | %-6s | %-23s | %-23s | %-6s | %-8s | %-10s | %-6s | %-7s\n",
			"size", "find p50/p95 ms", "raw find p50/p95 ms", "ratio",
			"provide p50/p95 ms", "raw provide p50/p95 ms", "ratio",
			"MiB/node", "goroutines", "misses", "setup s"
	}
	printf "%-7s | %10.2f / %10.2f | %10.2f / %10.2f | %6.2f | %10.2f / %10.2f | %10.2f / %10.2f | %6.2f | %8.2f | %10.1f | %2d/%-3d | %7.1f\n",
		size, m["find-p50-ms"], m["find-p95-ms"], m["rawfind-p50-ms"], m["rawfind-p95-ms"], m["find-ratio-p50"],
		m["provide-p50-ms"], m["provide-p95-ms"], m["rawprovide-p50-ms"], m["rawprovide-p95-ms"], m["provide-ratio-p50"],
		m["MiB/node"], m["goroutines/node"], m["misses"], m["rawmisses"], m["setup-s"]
	delete m
}' "$out"
echo "(misses: netget/raw lookups with no result in 10 s; full log: $out)"
