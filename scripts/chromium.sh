#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium, which the browser test
# (TestBrowser* in cmd/netget-peer) drives with chromedp. Does nothing when
# /usr/bin/chromium is already there. Needs root (apt-get); CI runs it
# before scripts/test.sh.
#
#   scripts/chromium.sh            # as root
#   sudo scripts/chromium.sh       # otherwise
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	echo "chromium.sh: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium) already installed" >&2
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "chromium.sh: /usr/bin/chromium is missing and installing it needs root; run:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y chromium" >&2
	echo "(or run this script as root: sudo $0)" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "chromium.sh: apt-get not found; install Debian's chromium package so that /usr/bin/chromium exists" >&2
	exit 1
fi

echo "chromium.sh: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
