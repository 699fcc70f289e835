#!/usr/bin/env bash
# The S3 comparison: StrataFS (strata up --storage s3://...), rclone mount (--vfs-cache-mode
# writes), s3fs and aws s3 cp on
# the benchmark radosgw behind the emulated WAN of bench/s3/netns.sh. Each figure is "until
# durable in the store" for writes (polled with head/list through the S3 API) and cold for reads
# (fresh mount, empty client cache).
#
#   eval "$(bench/s3/netns.sh up)"
#   bench/s3/peers.sh [aws|rclone|s3fs|strata ...]     (default all four, in that order)
#   (strata runs from STRATA_DIST_DIR, default dist/)
#
# Small-file create runs twice per tool, the same way for every tool: "serial" (one writer:
# one cp process on a mount, aws s3 cp with max_concurrent_requests = 1) and "16 writers"
# (16 cp processes each copying its share of the files on a mount, aws s3 cp with
# max_concurrent_requests = 16). Each file counts once durable in the store.
#
# Environment: SMALL_FILES (default 2000), RANDREAD_SECONDS (default 30), WORK (default /tmp/strata-s3-bench),
# WRITERS (default 16), BIG_ONLY=1 (mounted peers: only the 1 GiB write, cold read and random read).
# Prints CSV lines "peer,test,value,unit" and appends them to $WORK/results.csv.
set -euo pipefail

: "${STRATA_S3_BENCH_URL:?run eval \"\$(bench/s3/netns.sh up)\" first}"
ENDPOINT=$(sed -E 's/.*endpoint=([^&]*).*/\1/' <<<"$STRATA_S3_BENCH_URL")
BUCKET=$(sed -E 's#^s3://([^/?]*).*#\1#' <<<"$STRATA_S3_BENCH_URL")
WORK=${WORK:-/tmp/strata-s3-bench}
SMALL_FILES=${SMALL_FILES:-2000}
RANDREAD_SECONDS=${RANDREAD_SECONDS:-30}
WRITERS=${WRITERS:-16}
AWS=/usr/bin/aws # the Debian awscli package, not whatever else is on PATH
unset AWS_CA_BUNDLE AWS_PROFILE
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=''
MNT=$WORK/mnt
mkdir -p "$WORK" "$MNT"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s }'; }
result() {
  echo "$1,$2,$3,$4" | tee -a "$WORK/results.csv"
}
s3api() { "$AWS" --endpoint-url "$ENDPOINT" s3api "$@"; }
PROBE="node ${STRATA_DIST_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/dist}/bench/s3/probe.js"
key_count() { $PROBE count "$1"; }
object_size() { $PROBE size "$1"; }
wait_size() { while [ "$(object_size "$1")" != "$2" ]; do sleep 0.2; done; }
wait_count() { while [ "$(key_count "$1")" != "$2" ]; do sleep 0.5; done; }

prepare_data() {
  if [ ! -f "$WORK/src-1g" ]; then
    head -c 1073741824 /dev/urandom >"$WORK/src-1g"
  fi
  if [ "$(find "$WORK/small" -type f 2>/dev/null | wc -l)" != "$SMALL_FILES" ]; then
    rm -rf "$WORK/small"
    mkdir -p "$WORK/small"
    for i in $(seq -w 1 "$SMALL_FILES"); do head -c 4096 /dev/urandom >"$WORK/small/f$i"; done
  fi
}

unmount() {
  if grep -q " $MNT " /proc/mounts; then umount "$MNT" || umount -l "$MNT"; fi
  sleep 0.5
}
trap 'unmount; [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null || true' EXIT

randread() {
  local file=$1
  rm -f "$WORK"/randread_iops.*.log
  fio --name=randread --filename="$file" --rw=randread --bs=4k --size=1G --numjobs=4 --ioengine=psync \
    --time_based --runtime="$RANDREAD_SECONDS" --group_reporting --output-format=terse --terse-version=3 \
    --write_iops_log="$WORK/randread" --log_avg_msec=1000 |
    awk -F';' '{ print $8 }' # total read IOPS
}

# The median second of the last randread, all jobs together. The total swings with how many of
# the page cache's bursts (fio's invalidate at each loop end empties it) fit in the run; most
# seconds are spent on the misses between them, which this follows.
randread_median_second() {
  cat "$WORK"/randread_iops.*.log | awk -F, '{ s[int(($1 + 500) / 1000)] += $2 } END { for (k in s) print s[k] }' |
    sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

# The aws CLI's own concurrency setting, so its serial and parallel creates match the mounts'.
aws_concurrency() {
  printf '[default]\ns3 =\n  max_concurrent_requests = %s\n' "$1" >"$WORK/aws-config-$1"
  echo "$WORK/aws-config-$1"
}

# Copies the small files into $1 with $WRITERS cp processes, each taking its share.
parallel_copy() {
  find "$WORK/small" -type f -print0 |
    xargs -0 -P "$WRITERS" -n $(((SMALL_FILES + WRITERS - 1) / WRITERS)) cp -t "$1"
}

run_aws() {
  local p=aws t
  s3api delete-object --bucket "$BUCKET" --key aws/big >/dev/null 2>&1 || true
  t=$(now); "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$WORK/src-1g" "s3://$BUCKET/aws/big"
  result $p "1GiB write" "$(rate 1073.741824 "$(since "$t")")" MB/s
  rm -f "$WORK/dl-big"
  t=$(now); "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "s3://$BUCKET/aws/big" "$WORK/dl-big"
  result $p "1GiB cold read" "$(rate 1073.741824 "$(since "$t")")" MB/s
  cmp -s "$WORK/dl-big" "$WORK/src-1g" || echo "aws: downloaded file differs" >&2
  rm -f "$WORK/dl-big"
  t=$(now); AWS_CONFIG_FILE=$(aws_concurrency 1) "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors --recursive "$WORK/small" "s3://$BUCKET/aws/small"
  result $p "4KiB create (serial)" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  t=$(now); AWS_CONFIG_FILE=$(aws_concurrency "$WRITERS") "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors --recursive "$WORK/small" "s3://$BUCKET/aws/small-par"
  result $p "4KiB create ($WRITERS writers)" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  rm -rf "$WORK/dl-small"
  t=$(now); "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors --recursive "s3://$BUCKET/aws/small" "$WORK/dl-small"
  result $p "4KiB read" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  rm -rf "$WORK/dl-small"
  "$AWS" --endpoint-url "$ENDPOINT" s3 rm --only-show-errors --recursive "s3://$BUCKET/aws/small-par/"
  "$AWS" --endpoint-url "$ENDPOINT" s3 rm --only-show-errors "s3://$BUCKET/aws/big"
  t=$(now); "$AWS" --endpoint-url "$ENDPOINT" s3 rm --only-show-errors --recursive "s3://$BUCKET/aws/"
  result $p "4KiB delete" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
}

# "Durable in the store": the S3 peers map files to objects, so poll the objects; StrataFS
# stores blocks plus metadata and is durable once fsync (or syncfs) returns.
durable_big() {
  if [ "$1" = strata ]; then sync "$MNT/big"; else wait_size "$2/big" 1073741824; fi
}
durable_small() { # peer prefix count [dir]
  local dir=${4:-small}
  if [ "$1" = strata ]; then
    if [ "$3" = 0 ]; then sync -f "$MNT"; else sync "$MNT/$dir"/*; fi
  else
    # Files only (all named f*): s3fs also stores a directory marker object "small/", which
    # made the count 201 of 200 and the wait endless.
    wait_count "$2/$dir/f" "$3"
  fi
}

# A mounted peer: $1 name, $2 prefix in the bucket, then the mount command (run in the background).
mounted_peer() {
  local p=$1 prefix=$2 t
  shift 2
  local mount_cmd=("$@")
  remount() {
    unmount
    [ -n "${daemon_pid:-}" ] && { kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
    rm -rf "$WORK/cache-$p"
    "${mount_cmd[@]}" &
    daemon_pid=$!
    for _ in $(seq 1 100); do grep -q " $MNT " /proc/mounts && break; sleep 0.1; done
    grep -q " $MNT " /proc/mounts || { echo "$p did not mount" >&2; exit 1; }
  }
  # Start from an empty prefix: leftovers of an interrupted run would count as already durable.
  "$AWS" --endpoint-url "$ENDPOINT" s3 rm --only-show-errors --recursive "s3://$BUCKET/$prefix/" || true
  s3api put-object --bucket "$BUCKET" --key "$prefix/" >/dev/null # s3fs needs the directory object
  remount
  t=$(now); cp "$WORK/src-1g" "$MNT/big"; durable_big "$p" "$prefix"
  result "$p" "1GiB write" "$(rate 1073.741824 "$(since "$t")")" MB/s
  remount
  t=$(now); dd if="$MNT/big" of=/dev/null bs=1M status=none
  result "$p" "1GiB cold read" "$(rate 1073.741824 "$(since "$t")")" MB/s
  remount
  result "$p" "4KiB random read (4 jobs, ${RANDREAD_SECONDS}s)" "$(randread "$MNT/big")" IOPS
  result "$p" "4KiB random read, median second" "$(randread_median_second)" IOPS
  if [ "${BIG_ONLY:-0}" = 1 ]; then
    cleanup_peer "$p" "$prefix"
    return
  fi
  remount
  mkdir -p "$MNT/small"
  t=$(now); cp "$WORK"/small/* "$MNT/small/"; durable_small "$p" "$prefix" "$SMALL_FILES"
  result "$p" "4KiB create (serial)" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  mkdir -p "$MNT/small-par"
  t=$(now); parallel_copy "$MNT/small-par"; durable_small "$p" "$prefix" "$SMALL_FILES" small-par
  result "$p" "4KiB create ($WRITERS writers)" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  rm -rf "$MNT/small-par"
  remount
  t=$(now); stat "$MNT"/small/* >/dev/null
  result "$p" "stat (cold daemon)" "$(rate "$SMALL_FILES" "$(since "$t")")" ops/s
  t=$(now); cat "$MNT"/small/* >/dev/null
  result "$p" "4KiB read" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  t=$(now); rm -rf "$MNT/small"; durable_small "$p" "$prefix" 0
  result "$p" "4KiB delete" "$(rate "$SMALL_FILES" "$(since "$t")")" files/s
  cleanup_peer "$p" "$prefix"
}

cleanup_peer() { # peer prefix
  rm -f "$MNT/big"
  unmount
  kill "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=
  "$AWS" --endpoint-url "$ENDPOINT" s3 rm --only-show-errors --recursive "s3://$BUCKET/$2/" || true
}

run_rclone() {
  export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph RCLONE_CONFIG_BENCH_ENV_AUTH=false
  export RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
  export RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
  mounted_peer rclone rclone rclone mount "bench:$BUCKET/rclone" "$MNT" --vfs-cache-mode writes \
    --cache-dir "$WORK/cache-rclone" --log-level ERROR
}

run_s3fs() {
  echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$WORK/s3fs-passwd"
  chmod 600 "$WORK/s3fs-passwd"
  mounted_peer s3fs s3fs s3fs "$BUCKET:/s3fs" "$MNT" -f -o url="$ENDPOINT" -o use_path_request_style \
    -o passwd_file="$WORK/s3fs-passwd" -o endpoint=us-east-1
}

run_strata() {
  local root
  root=$(cd "$(dirname "$0")/../.." && pwd)
  rm -rf "$WORK/strata-data"
  local url
  url=$(sed -E "s#^(s3://[^/?]*)#\1/strata#" <<<"$STRATA_S3_BENCH_URL")
  # A new volume per run; the same data dir across remounts so reads find the files.
  # STRATA_REPO_ROOT: the mount finds its native helpers from any working directory.
  mounted_peer strata strata env STRATA_REPO_ROOT="$root" node "$root/bin/strata.js" up "$WORK/strata-data" "$MNT" --storage "$url" \
    --cache-dir "$WORK/cache-strata"
}

prepare_data
for peer in "${@:-aws rclone s3fs strata}"; do
  for p in $peer; do "run_$p"; done
done
