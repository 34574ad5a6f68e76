#!/usr/bin/env bash
# Installs what the NAT test (TestNAT* in cmd/netget-peer) needs to build
# network namespaces: iproute2 (`ip netns`, veth pairs) and nftables
# (`nft`, the masquerading router). Does nothing when both are there.
# Needs root (apt-get, and the test itself creates namespaces); CI runs it
# before scripts/test.sh, as scripts/test.sh does.
#
#   scripts/netns.sh            # as root
#   sudo scripts/netns.sh       # otherwise
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ ${#missing[@]} -eq 0 ]; then
	echo "netns.sh: ip and nft already installed" >&2
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "netns.sh: ${missing[*]} missing and installing needs root; run:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	echo "(or run this script as root: sudo $0)" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "netns.sh: apt-get not found; install ${missing[*]} so that ip and nft are on PATH" >&2
	exit 1
fi

echo "netns.sh: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
nft --version
