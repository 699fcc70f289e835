#!/usr/bin/env bash
# Installs what StrataFS needs to run on Debian (as root) and builds it.
# Usage: bash scripts/install.sh     then: node bin/strata.js up ./strata-data /mnt/strata
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need=()
for pkg in fuse3 make g++ python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "StrataFS needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none)); install it, then run this again" >&2
  exit 1
fi
modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "/dev/fuse is missing: load the fuse kernel module (modprobe fuse) and run this again" >&2; exit 1; }

npm ci --no-audit --no-fund
npm run build
echo "StrataFS is built. Mount an embedded volume with: node bin/strata.js up ./strata-data /mnt/strata"
