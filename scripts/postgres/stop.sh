#!/usr/bin/env bash
# Stops the throwaway cluster started by start.sh. With --purge also deletes its data dir.
set -euo pipefail

dir="${STRATA_PG_DIR:-/var/tmp/strata-pg}"
bindir=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/pg_ctl" ] && bindir="$d"
done
if [ -z "$bindir" ] || [ ! -f "$dir/PG_VERSION" ]; then
  echo "stop.sh: no cluster in $dir" >&2
  exit 0
fi
if runuser -u postgres -- "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  runuser -u postgres -- "$bindir/pg_ctl" -D "$dir" -m fast -w stop >&2
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$dir"
  echo "stop.sh: removed $dir" >&2
fi
