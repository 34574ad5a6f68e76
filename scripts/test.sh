#!/usr/bin/env bash
# The whole test suite: formatting, vet, and every test with the race
# detector. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed or not on PATH (https://go.dev/doc/install)" >&2
	exit 1
fi

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== chromium (the browser tests drive Debian's headless chromium)"
scripts/chromium.sh

echo "== typescript (TestTypeScript type-checks a user of the handshaker's declarations)"
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi
scripts/typescript.sh >/dev/null

echo "== ip and nft (the NAT test builds network namespaces)"
scripts/netns.sh

echo "== go test -race"
# -count=1: always run for real; the timeout is far above the suite's few minutes.
go test -race -count=1 -timeout 20m ./... "$@"

echo "== fuzz seeds (each fuzz target's corpus runs above; a short live fuzz of the record decoder)"
# A count, not a duration: with a duration Go 1.26's fuzz coordinator can
# fail spuriously with "context deadline exceeded" as the time runs out
# (go.dev/issue/75804, fixed in Go 1.27).
go test -run '^$' -fuzz '^FuzzOpen$' -fuzztime 150000x ./record/
