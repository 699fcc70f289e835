#!/usr/bin/env bash
# The reliability suite's long profile, bounded in time, with a summary.
#
#   scripts/reliability/long-run.sh [--hours H] [--seed N] [--no-doc]
#
# Builds into $STRATA_DIST_DIR (default dist/), runs rounds of differential
# testing against fresh `strata up` mounts (root and multi-user) and FUSE frame
# fuzzing until H hours have passed (default 2) or five problems were found,
# then writes the summary between the markers in docs/RELIABILITY.md and keeps
# the replay scripts of any mismatch under /tmp/strata-rel-long-*/.
# Needs root (mounts), gcc, /dev/fuse. Exit status 1 when problems were found.
set -euo pipefail
cd "$(dirname "$0")/../.."

hours=2
seed=""
doc=docs/RELIABILITY.md
while [ $# -gt 0 ]; do
  case "$1" in
    --hours) hours="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --no-doc) doc=""; shift ;;
    *) echo "usage: $0 [--hours H] [--seed N] [--no-doc]" >&2; exit 2 ;;
  esac
done

dist="${STRATA_DIST_DIR:-$PWD/dist}"
# tsc exits non-zero when any folder has type errors but still emits; the run
# below fails loudly if something it needs did not build.
npx tsc -p . --outDir "$dist" >/dev/null || echo "long-run: tsc reported type errors; continuing with what was emitted" >&2
# A build outside the repo still needs the repo's packages.
[ -e "$dist/node_modules" ] || [ "$dist" = "$PWD/dist" ] || ln -s "$PWD/node_modules" "$dist/node_modules"

args=(--hours "$hours")
[ -n "$seed" ] && args+=(--seed "$seed")
[ -n "$doc" ] && args+=(--doc "$doc")
export STRATA_DIST_DIR="$dist"
exec node "$dist/test/reliability/long-run.js" "${args[@]}"
