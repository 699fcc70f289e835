#!/usr/bin/env bash
# Stops the cluster started by scripts/radosgw/start.sh: radosgw, osd, mgr, mon, in that order,
# and waits until each process is gone. Data stays, so start.sh restarts quickly (~7 s).
#
#   stop.sh              stop everything
#   stop.sh --rgw-only   stop only radosgw (outage tests: start.sh brings it back)
#   stop.sh --purge      stop everything and delete the data dir
#
# STRATA_CEPH_DIR as for start.sh (default /var/tmp/strata-ceph).
set -euo pipefail

DIR=${STRATA_CEPH_DIR:-/var/tmp/strata-ceph}
mode=${1:-all}
case "$mode" in
  all | --rgw-only | --purge) ;;
  *)
    echo "usage: stop.sh [--rgw-only | --purge]" >&2
    exit 2
    ;;
esac

stop_pidfile() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "radosgw/stop: stopping $(basename "$pidfile" .pid) (pid $pid)" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "radosgw/stop: $(basename "$pidfile" .pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

stop_pidfile "$DIR/run/client.rgw.a.pid"
[ "$mode" = --rgw-only ] && exit 0
for pidfile in "$DIR"/run/osd.*.pid; do stop_pidfile "$pidfile"; done
stop_pidfile "$DIR/run/mgr.x.pid"
stop_pidfile "$DIR/run/mon.a.pid"
if [ "$mode" = --purge ]; then
  rm -rf "$DIR"
  echo "radosgw/stop: removed $DIR" >&2
fi
