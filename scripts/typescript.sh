#!/usr/bin/env bash
# Installs the TypeScript compiler that TestTypeScript (bridge/) uses to
# type-check a small TypeScript user of the handshaker's declarations
# (bridge/netget-handshaker.d.ts) against the package `npm pack` makes.
# Installs once, from the npm registry, into a cache outside the repo
# ($NETGET_TS_DIR, default ~/.cache/netget-peer/typescript); prints the path
# of tsc. Needs node and npm (Debian: apt-get install -y nodejs npm).
#
#   scripts/typescript.sh            # installs if missing, prints .../bin/tsc
set -euo pipefail

version=5.6.3
dir="${NETGET_TS_DIR:-$HOME/.cache/netget-peer/typescript}"
tsc="$dir/node_modules/.bin/tsc"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "typescript.sh: node and npm are missing; install them (Debian: sudo apt-get install -y nodejs npm)" >&2
	exit 1
fi
if [ -x "$tsc" ] && [ "$("$tsc" --version)" = "Version $version" ]; then
	echo "$tsc"
	exit 0
fi
echo "typescript.sh: installing typescript@$version into $dir" >&2
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --silent "typescript@$version" >&2
"$tsc" --version >&2
echo "$tsc"
