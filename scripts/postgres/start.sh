#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for StrataFS tests and benchmarks (as root).
# Installs Debian's postgresql package if missing, runs initdb as the postgres user into
# $STRATA_PG_DIR (default /var/tmp/strata-pg), listens on 127.0.0.1:$STRATA_PG_PORT
# (default 55432) and a Unix socket in the data dir, trust auth (local test use only),
# creates the database $STRATA_PG_DB (default strata_test), and prints the export line:
#   eval "$(scripts/postgres/start.sh)"
# Idempotent: an already running cluster is reused. Stop it with scripts/postgres/stop.sh.
set -euo pipefail

dir="${STRATA_PG_DIR:-/var/tmp/strata-pg}"
port="${STRATA_PG_PORT:-55432}"
db="${STRATA_PG_DB:-strata_test}"
log() { echo "start.sh: $*" >&2; }

find_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

bindir="$(find_bindir || true)"
if [ -z "$bindir" ]; then
  log "installing postgresql from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir="$(find_bindir)"
fi
# The Debian package also starts its own cluster on 5432; we do not use or touch it.

as_pg() { runuser -u postgres -- "$@"; }

mkdir -p "$dir"
chown postgres:postgres "$dir"
chmod 700 "$dir"
if [ ! -f "$dir/PG_VERSION" ]; then
  log "initdb into $dir"
  as_pg "$bindir/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
  # Throwaway test cluster: durability settings favour speed only where it cannot change
  # results (fsync stays on so commit latency is realistic for benchmarks).
  cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 256MB
max_locks_per_transaction = 256
max_pred_locks_per_transaction = 256
# Renames between two directories lock them in either order; find such deadlocks fast
# (the engine retries the victim) instead of after the default 1 s.
deadlock_timeout = 50ms
logging_collector = off
CONF
fi

if as_pg "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  log "cluster already running in $dir"
else
  log "starting cluster on 127.0.0.1:$port"
  as_pg "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >&2
fi

if ! as_pg "$bindir/psql" -h "$dir" -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" postgres | grep -q 1; then
  as_pg "$bindir/createdb" -h "$dir" -p "$port" -U postgres "$db"
fi

echo "export STRATA_PG_TEST_URL=postgres://postgres@127.0.0.1:$port/$db"
