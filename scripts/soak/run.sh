#!/usr/bin/env bash
# A soak run: a mixed, verifying workload against a live volume for a while, sampling every
# strata process's memory, descriptors, threads and timers and the volume's file sizes,
# then a trend over the second half (test/reliability/soak*.ts; docs/RELIABILITY.md "Long runs").
#
#   scripts/soak/run.sh [--minutes 10] [--setup up|serve] [--engine sqlite|postgres]
#                       [--storage URL] [--sample-every SECONDS] [--out DIR]
#
# --setup up: strata up (SQLite, file store) with --listen, and a strata mount of it.
# --setup serve: strata format + meta serve + two strata mounts (--engine postgres needs
# STRATA_PG_TEST_URL: eval "$(scripts/postgres/start.sh)"). Runs under a shared
# /tmp/strata-bench.lock, so no benchmark runs meanwhile; keep each run under ~10 minutes on
# a shared machine. Needs root (mounts), /dev/fuse, git and python3. Exit 1 when a resource
# grew without bound or data read back wrong.
set -euo pipefail
cd "$(dirname "$0")/../.."
dist="${STRATA_DIST_DIR:-$PWD/dist}"
# tsc exits non-zero when any folder has type errors but still emits what it can.
npx tsc -p . --outDir "$dist" >/dev/null || echo "soak: tsc reported type errors; continuing with what was emitted" >&2
[ -e "$dist/node_modules" ] || [ "$dist" = "$PWD/dist" ] || ln -s "$PWD/node_modules" "$dist/node_modules"
export STRATA_DIST_DIR="$dist"
exec flock -s /tmp/strata-bench.lock node "$dist/test/reliability/soak-run.js" "$@"
