#!/bin/bash
# pgbench (TPC-B-like, every commit an fdatasync of the WAL) with the PostgreSQL data directory
# on a `strata up` mount and on the local disk, taking turns in one invocation; prints
# transactions/s of each, their ratio, and the mount process's CPU per transaction.
#
# Usage (as root, from the repo, after a build): bench/workloads-db/pgbench.sh [ROUNDS] [SECONDS] [CLIENTS]
#   STRATA_DIST_DIR=DIR   the build to run (default dist/)
#   LOCAL_DIR=DIR         where the baseline's data directory goes (default: under /tmp)
#   OLD_DIST_DIR=DIR      also run another build (say the commit before a change) on a mount of
#                         its own, a third side taking turns with the other two
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
OLD_MNT=$ROOT/mnt-old
mkdir -p "$MNT" "$OLD_MNT" "$LOCAL" "$ROOT/sock"
chown postgres "$ROOT/sock" "$LOCAL"
UP_PID=""
OLD_PID=""

pg() { runuser -u postgres -- "$@"; }
cleanup() {
  for d in "$LOCAL/pgdata" "$MNT/pgdata" "$OLD_MNT/pgdata"; do
    [ -f "$d/postmaster.pid" ] && pg "$BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  for p in $UP_PID $OLD_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for m in "$MNT" "$OLD_MNT"; do grep -q " $m " /proc/mounts && umount -l "$m" || true; done
  rm -rf "$ROOT"
}
trap cleanup EXIT

cd "$REPO"
# mount DATA MNT LOG [DIST]: a strata up of the build in DIST (default: the one STRATA_DIST_DIR names).
mount_up() {
  if [ -n "${4:-}" ]; then STRATA_DIST_DIR=$4 node bin/strata.js up "$1" "$2" >"$3" 2>&1 &
  else node bin/strata.js up "$1" "$2" >"$3" 2>&1 &
  fi
  MOUNT_PID=$!
  for _ in $(seq 1 300); do grep -q "mounted at" "$3" && break; sleep 0.1; done
  grep -q "mounted at" "$3" || { cat "$3"; exit 1; }
  mkdir "$2/pgdata" && chown postgres "$2/pgdata" && chmod 700 "$2/pgdata"
}
mount_up "$ROOT/data" "$MNT" "$ROOT/up.log"
UP_PID=$MOUNT_PID
declare -A PORT=([local]=5441 [strata]=5442 [old]=5443) DIR=([local]=$LOCAL/pgdata [strata]=$MNT/pgdata [old]=$OLD_MNT/pgdata)
declare -A MOUNT_PID_OF=([strata]=$UP_PID)
SIDES="local strata"
if [ -n "${OLD_DIST_DIR:-}" ]; then
  mount_up "$ROOT/data-old" "$OLD_MNT" "$ROOT/up-old.log" "$OLD_DIST_DIR"
  OLD_PID=$MOUNT_PID
  MOUNT_PID_OF[old]=$OLD_PID
  SIDES="local strata old"
fi

for t in $SIDES; do
  pg "$BIN/initdb" -D "${DIR[$t]}" -A trust -U postgres --no-locale -E UTF8 >/dev/null
  pg "$BIN/pg_ctl" -D "${DIR[$t]}" -l "$ROOT/sock/$t.log" -w \
    -o "-p ${PORT[$t]} -k $ROOT/sock -c listen_addresses= -c shared_buffers=64MB" start >/dev/null
  pg "$BIN/pgbench" -h "$ROOT/sock" -p "${PORT[$t]}" -i -s "$SCALE" -q postgres >/dev/null 2>&1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
echo "pgbench -c $CLIENTS -T $SECONDS_PER_RUN, scale $SCALE, $ROUNDS rounds; $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
header=(round local_tps)
for t in $SIDES; do
  if [ "$t" != local ]; then header+=("${t}_tps" "${t}_ratio" "${t}_mount_cpu_us_per_tx"); fi
done
echo "${header[*]}"
for r in $(seq 1 "$ROUNDS"); do
  declare -A TPS=() CPU_US=()
  # Rotate which goes first, so a drift in machine load does not favour one side.
  read -ra sides <<<"$SIDES"
  n=${#sides[@]}
  order=""
  for i in $(seq 0 $((n - 1))); do order+="${sides[$(( (i + r - 1) % n ))]} "; done
  for t in $order; do
    if [ "$t" != local ]; then before=$(cpu_ticks "${MOUNT_PID_OF[$t]}"); fi
    out=$(pg "$BIN/pgbench" -h "$ROOT/sock" -p "${PORT[$t]}" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -n postgres 2>&1)
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    TPS[$t]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
    if [ "$t" != local ]; then CPU_US[$t]=$(( ($(cpu_ticks "${MOUNT_PID_OF[$t]}") - before) * TICK_US / tx )); fi
  done
  row=("$r" "${TPS[local]}")
  for t in $SIDES; do
    if [ "$t" = local ]; then continue; fi
    row+=("${TPS[$t]}" "$(awk -v a="${TPS[$t]}" -v b="${TPS[local]}" 'BEGIN{printf "%.3f", a/b}')" "${CPU_US[$t]}")
  done
  echo "${row[*]}"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
