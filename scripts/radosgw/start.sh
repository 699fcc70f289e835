#!/usr/bin/env bash
# Starts a single-node Ceph cluster (one mon, one mgr, one osd, radosgw) on 127.0.0.1 for tests
# and benchmarks, installing the Debian packages first when they are missing. Idempotent: run it
# again and it starts only what is not running; a second run on a live cluster just prints the
# exports. stdout carries only the `export` lines, so callers can `eval "$(scripts/radosgw/start.sh)"`;
# progress goes to stderr.
#
# Environment (all optional):
#   STRATA_CEPH_DIR        data, logs, sockets and pid files   (default /var/tmp/strata-ceph)
#   STRATA_S3_PORT         radosgw port on 127.0.0.1            (default 7480)
#   STRATA_CEPH_MON_PORT   monitor port on 127.0.0.1 (v1)       (default 6789)
#   STRATA_CEPH_OSD_SIZE   size of the sparse BlueStore file    (default 20G)
#   STRATA_S3_BIND         address radosgw binds                (default 127.0.0.1; bench/s3 uses a namespace address)
set -euo pipefail

DIR=${STRATA_CEPH_DIR:-/var/tmp/strata-ceph}
PORT=${STRATA_S3_PORT:-7480}
MON_PORT=${STRATA_CEPH_MON_PORT:-6789}
OSD_SIZE=${STRATA_CEPH_OSD_SIZE:-20G}
BIND=${STRATA_S3_BIND:-127.0.0.1}
# Fixed test credentials: this cluster is a local test fixture, never a place for real data.
ACCESS_KEY=STRATATESTACCESSKEY0
SECRET_KEY=strataTestSecretKey0000000000000000000000
BUCKET=strata-test
REGION=us-east-1

log() { echo "radosgw/start: $*" >&2; }
die() {
  echo "radosgw/start: $*" >&2
  exit 1
}
# The exports go to the caller's stdout, also from a rebuild (see rebuild).
exec 3>&1
# A cluster left in a state its daemons refuse (e.g. "wrong fsid" after an interrupted setup) is
# a test fixture, not data: stop its daemons, remove it and build a new one, once.
rebuild() {
  if [ -n "${STRATA_CEPH_REBUILT:-}" ]; then die "$1 (also after rebuilding the test cluster in $DIR)"; fi
  log "$1; rebuilding the test cluster in $DIR"
  for pidfile in "$DIR"/run/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 2
  rm -rf "$DIR"
  STRATA_CEPH_REBUILT=1 exec "$0" >&3
}

if [ "$(id -u)" != 0 ]; then die "must run as root (it installs packages and starts daemons)"; fi

# Only the exports may reach stdout (callers eval it), and the daemons and tools print warnings
# there too: everything up to the exports runs with stdout sent to stderr.
{

# Local plain-http endpoint: CA overrides from the environment only confuse clients here.
unset AWS_CA_BUNDLE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR

need_install=""
for bin in ceph-mon ceph-mgr ceph-osd radosgw ceph radosgw-admin monmaptool ceph-authtool uuidgen curl; do
  command -v "$bin" >/dev/null 2>&1 || need_install=1
done
if [ -n "$need_install" ]; then
  log "installing ceph-mon ceph-mgr ceph-osd radosgw ceph-common (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -q ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime curl >&2
fi

CONF=$DIR/ceph.conf
export CEPH_CONF=$CONF
mkdir -p "$DIR"/{run,log,mon,mgr/ceph-x,osd,rgw}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ ! -f "$CONF" ]; then
  fsid=$(uuidgen)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_initial_members = a
mon_host = 127.0.0.1:$MON_PORT
ms_bind_msgr2 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $DIR/keyring
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
log_file = $DIR/log/\$name.log
mon_cluster_log_file = $DIR/log/cluster.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000

[mon]
mon_data = $DIR/mon/ceph-\$id

[mgr]
mgr_data = $DIR/mgr/ceph-\$id
# Only what a test cluster needs: fewer modules start faster and use less memory.
mgr_initial_modules = restful

[osd]
osd_data = $DIR/osd/ceph-\$id
osd_objectstore = bluestore
# Not named "block": BlueStore makes osd_data/block a symlink to this file.
bluestore_block_path = $DIR/osd/osd-\$id.img
bluestore_block_create = true
bluestore_block_size = $(numfmt --from=iec "$OSD_SIZE")
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
osd_memory_target = 1073741824
osd_max_object_size = 134217728

[client.rgw.a]
rgw_data = $DIR/rgw
rgw_frontends = beast endpoint=$BIND:$PORT
rgw_dns_name = localhost
log_file = $DIR/log/radosgw.log
EOF
  log "wrote $CONF (fsid $fsid)"
fi
fsid=$(awk '/^fsid/ {print $3}' "$CONF")

# --- monitor ---
if [ ! -f "$DIR/mon/ceph-a/done" ]; then
  rm -rf "$DIR/mon/ceph-a"
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >&2
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' --cap mds 'allow *' >&2
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$DIR/monmap" >&2
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >&2
  touch "$DIR/mon/ceph-a/done"
fi
if ! pid_alive "$DIR/run/mon.a.pid"; then
  log "starting ceph-mon"
  ceph-mon -i a 3>&-
fi
for _ in $(seq 1 60); do
  ceph --connect-timeout 2 mon stat >/dev/null 2>&1 && break
  sleep 0.5
done
# Seen once on a machine at load ~10: the monitor did not answer within that wait. A monitor
# that died is started again, and one that stays silent makes the cluster be rebuilt, as the
# osd's start does, before the script gives up.
if ! ceph --connect-timeout 5 mon stat >/dev/null 2>&1; then
  if ! pid_alive "$DIR/run/mon.a.pid"; then
    log "ceph-mon is not running; starting it again"
    ceph-mon -i a 3>&- || true
  fi
  for _ in $(seq 1 60); do
    ceph --connect-timeout 2 mon stat >/dev/null 2>&1 && break
    sleep 0.5
  done
  ceph --connect-timeout 5 mon stat >/dev/null 2>&1 || rebuild "the monitor did not answer (see $DIR/log/mon.a.log)"
fi

# --- manager ---
if ! pid_alive "$DIR/run/mgr.x.pid"; then
  log "starting ceph-mgr"
  ceph-mgr -i x 3>&-
fi

# --- osd ---
if [ ! -f "$DIR/osd/id" ]; then
  # The uuid is kept so a rerun after a failed mkfs reuses the same osd id ("osd new" is idempotent).
  [ -f "$DIR/osd/uuid" ] || uuidgen >"$DIR/osd/uuid"
  uuid=$(cat "$DIR/osd/uuid")
  id=$(ceph osd new "$uuid")
  rm -rf "$DIR/osd/ceph-$id" "$DIR/osd/osd-$id.img"
  mkdir -p "$DIR/osd/ceph-$id"
  log "creating osd.$id on a sparse BlueStore file of $OSD_SIZE"
  ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >&2 2>"$DIR/log/osd-mkfs.log" ||
    die "ceph-osd --mkfs failed; see $DIR/log/osd-mkfs.log"
  echo "$id" >"$DIR/osd/id"
fi
osd_id=$(cat "$DIR/osd/id")
if ! pid_alive "$DIR/run/osd.$osd_id.pid"; then
  # An osd started right after its monitor sometimes fails its first command with "wrong fsid"
  # (fsid 0: it had no monitor map yet) and exits; seen here, on a cluster that starts fine the
  # next time. So a few tries, a few seconds apart, before the cluster is taken for broken.
  started=""
  for attempt in 1 2 3; do
    log "starting ceph-osd.$osd_id (try $attempt of 3)"
    if ceph-osd -i "$osd_id" 3>&-; then
      started=1
      break
    fi
    sleep 3
  done
  [ -n "$started" ] || rebuild "ceph-osd.$osd_id would not start"
fi
# grep reads all of the output: with pipefail, grep -q exiting early could fail the pipeline
# through SIGPIPE in ceph, and a healthy osd looked down.
for _ in $(seq 1 120); do
  ceph osd dump 2>/dev/null | grep "^osd.$osd_id up" >/dev/null && break
  sleep 0.5
done
ceph osd dump 2>/dev/null | grep "^osd.$osd_id up" >/dev/null || rebuild "osd.$osd_id did not come up (see $DIR/log/osd.$osd_id.log)"

# --- radosgw ---
if ! pid_alive "$DIR/run/client.rgw.a.pid"; then
  log "starting radosgw on $BIND:$PORT"
  radosgw -n client.rgw.a 3>&-
fi
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://$BIND:$PORT/" && break
  sleep 0.5
done
curl -s -o /dev/null "http://$BIND:$PORT/" || die "radosgw did not answer on $BIND:$PORT; see $DIR/log/radosgw.log"

# --- test user and bucket ---
if ! radosgw-admin user info --uid strata-test >/dev/null 2>&1; then
  radosgw-admin user create --uid strata-test --display-name "StrataFS tests" \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >/dev/null
fi
# curl signs with SigV4 itself; radosgw checks the signature, so this also proves the credentials.
# curl 7.88 omits x-amz-content-sha256, which S3 requires; given here, curl signs it too.
status=$(curl -s -o "$DIR/log/bucket-create.out" -w '%{http_code}' -X PUT \
  -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" "http://$BIND:$PORT/$BUCKET")
case "$status" in
  200 | 409) ;;
  *) die "creating bucket $BUCKET failed with HTTP $status: $(cat "$DIR/log/bucket-create.out")" ;;
esac

log "ready: s3://$BUCKET on http://$BIND:$PORT"
} >&2
echo "export STRATA_S3_TEST_URL='s3://$BUCKET?endpoint=http://$BIND:$PORT&region=$REGION&path_style=1'"
echo "export AWS_ACCESS_KEY_ID='$ACCESS_KEY'"
echo "export AWS_SECRET_ACCESS_KEY='$SECRET_KEY'"
echo "unset AWS_CA_BUNDLE AWS_SESSION_TOKEN AWS_PROFILE"
