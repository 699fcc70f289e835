#!/usr/bin/env bash
# An emulated WAN in front of a benchmark-only radosgw: a network namespace "strata-s3bench"
# holding its own single-node Ceph cluster (scripts/radosgw/start.sh with STRATA_CEPH_DIR set),
# joined to the host by a veth pair (host 10.77.0.1, namespace 10.77.0.2), rate-limited by tbf
# on both ends, with a delay proxy inside the namespace adding DELAY_MS each way (this kernel
# has no netem). Clients on the host use http://10.77.0.2:7480; no traffic leaves the machine.
#
#   bench/s3/netns.sh up      create, start, print the exports (STRATA_S3_BENCH_URL, AWS_*)
#   bench/s3/netns.sh down    stop everything and remove the namespace and the bench cluster
#
# Environment: DELAY_MS (default 10), RATE (default 1gbit), STRATA_DIST_DIR (compiled bench, default dist).
set -euo pipefail

NS=strata-s3bench
HOST_IF=s3b-host
NS_IF=s3b-ns
HOST_IP=10.77.0.1
NS_IP=10.77.0.2
DELAY_MS=${DELAY_MS:-10}
RATE=${RATE:-1gbit}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIST=${STRATA_DIST_DIR:-$ROOT/dist}
CEPH_DIR=/var/tmp/strata-ceph-bench
PROXY_PID=$CEPH_DIR/run/delay-proxy.pid

log() { echo "netns: $*" >&2; }

down() {
  if [ -f "$PROXY_PID" ] && kill -0 "$(cat "$PROXY_PID")" 2>/dev/null; then
    kill "$(cat "$PROXY_PID")"
    rm -f "$PROXY_PID"
  fi
  [ -d "$CEPH_DIR" ] && STRATA_CEPH_DIR=$CEPH_DIR "$ROOT/scripts/radosgw/stop.sh" --purge
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$HOST_IF" 2>/dev/null || true
  log "removed namespace $NS and $CEPH_DIR"
}

up() {
  if ! ip netns list | grep -qw "$NS"; then
    ip netns add "$NS"
    ip link add "$HOST_IF" type veth peer name "$NS_IF"
    ip link set "$NS_IF" netns "$NS"
    ip addr add "$HOST_IP/24" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    ip netns exec "$NS" ip addr add "$NS_IP/24" dev "$NS_IF"
    ip netns exec "$NS" ip link set "$NS_IF" up
    ip netns exec "$NS" ip link set lo up
    # tbf: the link rate in each direction; burst sized for 1 Gbit at a 1 ms tick.
    tc qdisc replace dev "$HOST_IF" root tbf rate "$RATE" burst 256kb latency 100ms
    ip netns exec "$NS" tc qdisc replace dev "$NS_IF" root tbf rate "$RATE" burst 256kb latency 100ms
    log "namespace $NS: $HOST_IP <-> $NS_IP, $RATE each way"
  fi
  # The whole bench cluster lives in the namespace: its mon/osd use the namespace's own loopback,
  # and radosgw listens on the namespace's 127.0.0.1:7481 behind the delay proxy on $NS_IP:7480.
  ip netns exec "$NS" env STRATA_CEPH_DIR="$CEPH_DIR" STRATA_S3_PORT=7481 STRATA_S3_BIND=127.0.0.1 \
    STRATA_CEPH_OSD_SIZE=40G "$ROOT/scripts/radosgw/start.sh" >"$CEPH_DIR.env" 2>"$CEPH_DIR.log" ||
    { cat "$CEPH_DIR.log" >&2; exit 1; }
  if ! { [ -f "$PROXY_PID" ] && kill -0 "$(cat "$PROXY_PID")" 2>/dev/null; }; then
    ip netns exec "$NS" nohup node "$DIST/bench/s3/delay-proxy.js" "$NS_IP:7480" 127.0.0.1:7481 "$DELAY_MS" \
      >>"$CEPH_DIR/log/delay-proxy.log" 2>&1 &
    echo $! >"$PROXY_PID"
    for _ in $(seq 1 50); do
      curl -s -o /dev/null "http://$NS_IP:7480/" && break
      sleep 0.1
    done
  fi
  curl -s -o /dev/null "http://$NS_IP:7480/" || { log "delay proxy not answering"; exit 1; }
  log "radosgw behind +${DELAY_MS} ms each way at http://$NS_IP:7480"
  sed -e "s#127.0.0.1:7481#$NS_IP:7480#" -e 's#STRATA_S3_TEST_URL#STRATA_S3_BENCH_URL#' "$CEPH_DIR.env"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: netns.sh up|down" >&2
    exit 2
    ;;
esac
