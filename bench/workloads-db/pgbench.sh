#!/bin/bash
# pgbench (TPC-B-like, every commit an fdatasync of the WAL) with the PostgreSQL data directory
# on a `strata up` mount and on the local disk, taking turns in one invocation; prints
# transactions/s of each, their ratio, and the mount process's CPU per transaction.
#
# Usage (as root, from the repo, after a build): bench/workloads-db/pgbench.sh [ROUNDS] [SECONDS] [CLIENTS]
#   STRATA_DIST_DIR=DIR   the build to run (default dist/)
#   LOCAL_DIR=DIR         where the baseline's data directory goes (default: under /tmp)
# Run it under `flock /tmp/strata-bench.lock` on a shared machine.
set -euo pipefail
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-15}
CLIENTS=${3:-4}
SCALE=${SCALE:-4}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
ROOT=$(mktemp -d /tmp/strata-dbworkloads-bench-XXXXXX)
chmod 755 "$ROOT"
LOCAL=${LOCAL_DIR:-$ROOT/local}
MNT=$ROOT/mnt
mkdir -p "$MNT" "$LOCAL" "$ROOT/sock"
chown postgres "$ROOT/sock" "$LOCAL"
UP_PID=""

pg() { runuser -u postgres -- "$@"; }
cleanup() {
  for d in "$LOCAL/pgdata" "$MNT/pgdata"; do
    [ -f "$d/postmaster.pid" ] && pg "$BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  if [ -n "$UP_PID" ]; then kill "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; fi
  grep -q " $MNT " /proc/mounts && umount -l "$MNT" || true
  rm -rf "$ROOT"
}
trap cleanup EXIT

cd "$REPO"
node bin/strata.js up "$ROOT/data" "$MNT" >"$ROOT/up.log" 2>&1 &
UP_PID=$!
for _ in $(seq 1 300); do grep -q "mounted at" "$ROOT/up.log" && break; sleep 0.1; done
grep -q "mounted at" "$ROOT/up.log" || { cat "$ROOT/up.log"; exit 1; }
mkdir "$MNT/pgdata" && chown postgres "$MNT/pgdata" && chmod 700 "$MNT/pgdata"

declare -A PORT=([local]=5441 [strata]=5442) DIR=([local]=$LOCAL/pgdata [strata]=$MNT/pgdata)
for t in local strata; do
  pg "$BIN/initdb" -D "${DIR[$t]}" -A trust -U postgres --no-locale -E UTF8 >/dev/null
  pg "$BIN/pg_ctl" -D "${DIR[$t]}" -l "$ROOT/sock/$t.log" -w \
    -o "-p ${PORT[$t]} -k $ROOT/sock -c listen_addresses= -c shared_buffers=64MB" start >/dev/null
  pg "$BIN/pgbench" -h "$ROOT/sock" -p "${PORT[$t]}" -i -s "$SCALE" -q postgres >/dev/null 2>&1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$UP_PID/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
echo "pgbench -c $CLIENTS -T $SECONDS_PER_RUN, scale $SCALE, $ROUNDS rounds; $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %12s %8s %22s\n' round local_tps strata_tps ratio mount_cpu_us_per_tx
for r in $(seq 1 "$ROUNDS"); do
  declare -A TPS=()
  # Alternate which goes first, so a drift in machine load does not favour one side.
  order="local strata"; [ $((r % 2)) -eq 0 ] && order="strata local"
  for t in $order; do
    before=$(cpu_ticks)
    out=$(pg "$BIN/pgbench" -h "$ROOT/sock" -p "${PORT[$t]}" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -n postgres 2>&1)
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    TPS[$t]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
    [ "$t" = strata ] && CPU_US=$(( ($(cpu_ticks) - before) * TICK_US / tx ))
  done
  printf '%-6s %12s %12s %8s %22s\n' "$r" "${TPS[local]}" "${TPS[strata]}" \
    "$(awk -v a="${TPS[strata]}" -v b="${TPS[local]}" 'BEGIN{printf "%.3f", a/b}')" "$CPU_US"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
