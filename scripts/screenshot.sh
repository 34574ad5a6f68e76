#!/usr/bin/env bash
# Refreshes the README's screenshot of the devnet page: runs the devnet test
# (headless Chromium against `netget-peer devnet`), which writes the PNG it
# takes to $NETGET_SCREENSHOT as well as to its artifact dir.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/chromium.sh
NETGET_SCREENSHOT="$PWD/cmd/netget-peer/devnet/screenshot.png" \
	go test -count=1 -run '^TestDevnet$' -v ./cmd/netget-peer/ | grep -E 'screenshot|^(ok|FAIL|---)'
