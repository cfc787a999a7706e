#!/usr/bin/env bash
# A single-node Ceph Pacific cluster on 127.0.0.1 with cephx: one mon, one mgr,
# two bluestore OSDs on sparse files, and radosgw (beast) serving S3 and Swift.
#
#   bash scripts/servers/ceph.sh start   # start (or restart stopped daemons); ~15-25 s from scratch
#   bash scripts/servers/ceph.sh stop    # stop every daemon and remove the cluster
#
# Everything lives under $STATE_DIR/ceph: ceph.conf (CEPH_CONF=that file is all
# a client needs), keyring/<name>.keyring, per-daemon data, log/ and run/
# (<name>.pid, admin sockets). When it answers, start writes $STATE_DIR/ceph.env.
#
# osd.0 holds every pool but one. osd.1 holds only the pool backups-fault
# (its own CRUSH root and rule), so a fault test can stop it (kill the pid in
# run/osd.1.pid) without stalling the other tests on the cluster; start
# restarts any stopped daemon of an existing cluster and waits until it is
# healthy again.
#
# Pools: backups (RADOS target), rbd and backups-rbd (RBD, application rbd),
# backups-fault (on osd.1 only). Users: client.admin, client.readonly (read
# only on pool backups, for permission tests), radosgw user chunkback with
# fixed S3 keys and Swift subuser chunkback:swift.
set -euo pipefail
SERVER=ceph
. "$(dirname "$0")/lib.sh"

D=$STATE_DIR/ceph
CONF=$D/ceph.conf
LOGFILE=$D/log/setup.log
OSDS=(0 1)
PY=/usr/bin/python3

# Fixed test credentials (this cluster lives on loopback only, for tests).
RGW_UID=chunkback
RGW_ACCESS_KEY=CHUNKBACKRGWTESTKEY1
RGW_SECRET_KEY=chunkbackRgwTestSecretKey0123456789abcdef
RGW_SWIFT_USER=chunkback:swift
RGW_SWIFT_KEY=chunkbackSwiftTestKey0123456789

# ceph_py runs Python with the rados module, connected as client.admin:
# ceph_py 'code using r (a connected rados.Rados) and cmd(dict, inbuf=b"", ok=())'.
ceph_py() {
    CONF=$CONF "$PY" -c '
import json, os, sys, time, rados
r = rados.Rados(conffile=os.environ["CONF"], name="client.admin")
r.connect(timeout=30)
def cmd(c, inbuf=b"", ok=()):
    ret, out, outs = r.mon_command(json.dumps(c), inbuf, timeout=30)
    if ret != 0 and -ret not in ok:
        sys.exit("ceph.sh: mon command %s failed: %d %s" % (c["prefix"], ret, outs))
    return out
'"$1"'
r.shutdown()
'
}

daemon_alive() { alive "$D/run/$1.pid"; }

all_alive() {
    local n
    for n in mon.a mgr.x "${OSDS[@]/#/osd.}" client.rgw.gw; do
        daemon_alive "$n" || return 1
    done
}

# run_daemon NAME CMD... starts a daemon in the foreground, detached.
run_daemon() {
    local name=$1
    shift
    daemon_alive "$name" && return 0
    spawn "$D/run/$name.pid" "$D/log/$name.out" "$@" -c "$CONF" -f || die "cannot start $name"
}

start_mon() { run_daemon mon.a ceph-mon -i a; }
start_mgr() { run_daemon mgr.x ceph-mgr -i x; }
start_osd() { run_daemon "osd.$1" ceph-osd -i "$1"; }
start_rgw() { run_daemon client.rgw.gw radosgw -n client.rgw.gw; }

conf_get() { sed -n "s/^# $1=//p" "$CONF"; }

write_conf() {
    local fsid=$1 mon_v2=$2 mon_v1=$3 rgw_port=$4
    cat >"$CONF" <<EOF
# Written by scripts/servers/ceph.sh.
# MON_V2=$mon_v2
# MON_V1=$mon_v1
# RGW_PORT=$rgw_port
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
keyring = $D/keyring/\$name.keyring
mon_cluster_log_file = $D/log/cluster.log
run_dir = $D/run
crash_dir = $D/crash
mon_data = $D/mon/\$id
mgr_data = $D/mgr/\$id
osd_data = $D/osd/\$id
rgw_data = $D/rgw
# One node, healthy and quick (see /work/shared/services.md).
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_allow_pool_delete = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_max_pg_per_osd = 1000
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 1
mon_osd_down_out_interval = 0
mon_warn_on_osd_down_out_interval_zero = false
mgr_initial_modules = iostat
paxos_propose_interval = 0.1
mgr_tick_period = 1
mgr_stats_period = 1

# Logs and admin sockets for the daemons only (clients share the name client.admin).
[mon]
log_file = $D/log/\$name.log
admin_socket = $D/run/\$name.asok
mon_cluster_log_to_file = true

[mgr]
log_file = $D/log/\$name.log
admin_socket = $D/run/\$name.asok

[osd]
log_file = $D/log/\$name.log
admin_socket = $D/run/\$name.asok
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
osd_memory_target = 1073741824
osd_crush_update_on_start = true

[osd.0]
bluestore_block_size = 21474836480

[osd.1]
# osd.1 serves only the pool backups-fault: ceph.sh puts it under its own root.
bluestore_block_size = 2147483648
osd_crush_update_on_start = false

[client.rgw.gw]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_thread_pool_size = 64
rgw_enable_usage_log = false
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
log_file = $D/log/rgw.log
admin_socket = $D/run/\$name.asok
EOF
}

# keyring_file NAME KEY CAPS... writes $D/keyring/NAME.keyring.
keyring_file() {
    local name=$1 key=$2
    shift 2
    {
        printf '[%s]\n\tkey = %s\n' "$name" "$key"
        while [ $# -gt 0 ]; do
            printf '\tcaps %s = "%s"\n' "$1" "$2"
            shift 2
        done
    } >"$D/keyring/$name.keyring"
}

# bootstrap builds a new cluster from nothing and starts mon and mgr.
bootstrap() {
    stop_daemons # leftovers of a failed start
    rm -rf "$D"
    mkdir -p "$D"/{keyring,log,run,crash,mon,mgr/x,rgw}
    local fsid mon_v2 mon_v1 rgw_port
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mon_v2=$(free_port)
    mon_v1=$(free_port)
    rgw_port=$(free_port)
    write_conf "$fsid" "$mon_v2" "$mon_v1" "$rgw_port"

    local gen="ceph-authtool --gen-print-key"
    keyring_file mon. "$($gen)" mon 'allow *'
    cp "$D/keyring/mon..keyring" "$D/keyring/mon.a.keyring"
    keyring_file client.admin "$($gen)" mon 'allow *' osd 'allow *' mds 'allow *' mgr 'allow *'
    keyring_file mgr.x "$($gen)" mon 'allow profile mgr' osd 'allow *' mds 'allow *'
    keyring_file client.rgw.gw "$($gen)" mon 'allow rw' osd 'allow rwx' mgr 'allow rw'
    keyring_file client.readonly "$($gen)" mon 'allow r' osd 'allow r pool=backups'
    local id
    for id in "${OSDS[@]}"; do
        mkdir -p "$D/osd/$id"
        keyring_file "osd.$id" "$($gen)"
        cat /proc/sys/kernel/random/uuid >"$D/osd/$id/uuid.txt"
    done
    # The mon imports every key (with its caps) of its mkfs keyring.
    cat "$D"/keyring/{mon.,client.admin,mgr.x,client.rgw.gw,client.readonly}.keyring >"$D/mkfs.keyring"

    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" \
        --enable-all-features --set-min-mon-release pacific "$D/monmap" >>"$LOGFILE" 2>&1 || die "monmaptool failed"
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mkfs.keyring" >>"$LOGFILE" 2>&1 ||
        die "ceph-mon --mkfs failed"
    rm -f "$D/mkfs.keyring" "$D/monmap"
    start_mon
    wait_tcp 127.0.0.1 "$mon_v2" 20 || LOGFILE=$D/log/mon.a.log die "the mon does not listen on $mon_v2"
    start_mgr

    # OSD ids with their cephx keys, the fault OSD's own CRUSH root, and the pools.
    local secrets=() uuids=()
    for id in "${OSDS[@]}"; do
        secrets+=("$(sed -n 's/^\tkey = //p' "$D/keyring/osd.$id.keyring")")
        uuids+=("$(cat "$D/osd/$id/uuid.txt")")
    done
    ceph_py '
uuids = "'"${uuids[*]}"'".split()
secrets = "'"${secrets[*]}"'".split()
for i, (u, s) in enumerate(zip(uuids, secrets)):
    cmd({"prefix": "osd new", "uuid": u, "id": i}, json.dumps({"cephx_secret": s}).encode())
cmd({"prefix": "osd crush add-bucket", "name": "fault", "type": "root"}, ok=(17,))
cmd({"prefix": "osd crush add", "id": 1, "weight": 1.0, "args": ["root=fault"]})
cmd({"prefix": "osd crush rule create-simple", "name": "fault", "root": "fault", "type": "osd"}, ok=(17,))
for pool, app, rule in (("backups", "chunkback", None), ("rbd", "rbd", None),
                        ("backups-rbd", "rbd", None), ("backups-fault", "chunkback", "fault")):
    c = {"prefix": "osd pool create", "pool": pool, "pg_num": 8, "pgp_num": 8}
    if rule:
        c["rule"] = rule
    cmd(c, ok=(17,))
    cmd({"prefix": "osd pool application enable", "pool": pool, "app": app, "yes_i_really_mean_it": True})
' >>"$LOGFILE" 2>&1 || die "creating the OSDs and pools failed"

    for id in "${OSDS[@]}"; do
        ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "${uuids[$id]}" >>"$D/log/osd.$id.mkfs.log" 2>&1 &
    done
    for id in "${OSDS[@]}"; do
        wait -n || LOGFILE=$D/log/osd.$id.mkfs.log die "ceph-osd --mkfs failed"
    done
    for id in "${OSDS[@]}"; do
        start_osd "$id"
    done

    # radosgw-admin sets up the default zone before radosgw starts, so the two do not race.
    radosgw-admin -c "$CONF" user create --uid="$RGW_UID" --display-name="chunkback tests" \
        --access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >>"$LOGFILE" 2>&1 ||
        die "radosgw-admin user create failed"
    start_rgw
    radosgw-admin -c "$CONF" subuser create --uid="$RGW_UID" --subuser="$RGW_SWIFT_USER" --access=full \
        --key-type=swift --secret-key="$RGW_SWIFT_KEY" >>"$LOGFILE" 2>&1 ||
        die "radosgw-admin subuser create failed"
    touch "$D/bootstrapped"
}

# wait_healthy waits for HEALTH_OK with every PG active+clean, then for radosgw.
wait_healthy() {
    local secs=$1
    ceph_py '
deadline = time.time() + '"$secs"'
last = ""
while True:
    health = json.loads(cmd({"prefix": "health", "format": "json"}))
    pgs = json.loads(cmd({"prefix": "pg stat", "format": "json"}))
    summary = pgs.get("pg_summary", pgs)
    states = {s["name"]: s["num"] for s in summary.get("num_pg_by_state", [])}
    total = summary.get("num_pgs", 0)
    last = "%s, pgs %s" % (health.get("status"), states)
    clean = sum(n for st, n in states.items() if st.startswith("active+clean"))  # +scrubbing is fine
    if health.get("status") == "HEALTH_OK" and total > 0 and clean == total:
        break
    if time.time() > deadline:
        sys.exit("ceph.sh: cluster not healthy after '"$secs"' s: %s %s" % (last, list(health.get("checks", {}))))
    time.sleep(0.25)
' || die "the cluster did not become healthy"
    local port i
    port=$(conf_get RGW_PORT)
    for i in $(seq 1 $((secs * 4))); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
        sleep 0.25
    done
    LOGFILE=$D/log/rgw.log die "radosgw does not answer on 127.0.0.1:$port"
}

write_ceph_env() {
    local port=$(conf_get RGW_PORT)
    local rgw=http://127.0.0.1:$port
    local admin_keyring=$D/keyring/client.admin.keyring
    write_env ceph \
        "CONF=$CONF" \
        "CLIENT_ID=admin" \
        "KEYRING=$admin_keyring" \
        "POOL=backups" \
        "RBD_POOL=rbd" \
        "RBD_BACKUP_POOL=backups-rbd" \
        "RGW_ENDPOINT=$rgw" \
        "RGW_REGION=us-east-1" \
        "RGW_ACCESS_KEY=$RGW_ACCESS_KEY" \
        "RGW_SECRET_KEY=$RGW_SECRET_KEY" \
        "RGW_SWIFT_AUTH_URL=$rgw/auth/1.0" \
        "RGW_SWIFT_USER=$RGW_SWIFT_USER" \
        "RGW_SWIFT_KEY=$RGW_SWIFT_KEY" \
        "URL_S3=s3://chunkback-rgw/ci?endpoint=$rgw&region=us-east-1&path_style=true" \
        "URL_SWIFT=swift://chunkback-rgw-swift/ci" \
        "URL_RADOS=rados://backups/ci?conf=$CONF&id=admin&keyring=$admin_keyring" \
        "CLI_AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY" \
        "CLI_AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY" \
        "CLI_AWS_REGION=us-east-1" \
        "CLI_OS_AUTH_URL=$rgw/auth/1.0" \
        "CLI_OS_USERNAME=$RGW_SWIFT_USER" \
        "CLI_OS_PASSWORD=$RGW_SWIFT_KEY" \
        "CLI_OS_AUTH_VERSION=1"
}

start() {
    if env_ready ceph && all_alive; then
        return 0
    fi
    if [ -f "$D/bootstrapped" ] && [ -f "$CONF" ]; then
        # An existing cluster with some daemons stopped (a fault test, a
        # reboot): start those again, keeping data and ports.
        log "restarting the stopped daemons of $D"
        start_mon
        wait_tcp 127.0.0.1 "$(conf_get MON_V2)" 20 || LOGFILE=$D/log/mon.a.log die "the mon does not listen"
        start_mgr
        local id
        for id in "${OSDS[@]}"; do
            start_osd "$id"
        done
        start_rgw
        LOGFILE=$D/log/cluster.log wait_healthy 90
    else
        drop_env ceph
        bootstrap
        wait_healthy 90
    fi
    write_ceph_env
}

# stop_daemons stops every daemon at once: TERM, then KILL after 5 s (the
# cluster is thrown away, so a clean shutdown buys nothing).
stop_daemons() {
    local n pid pids=() i
    for n in client.rgw.gw "${OSDS[@]/#/osd.}" mgr.x mon.a; do
        [ -s "$D/run/$n.pid" ] || continue
        pid=$(cat "$D/run/$n.pid")
        kill "$pid" 2>/dev/null && pids+=("$pid")
        rm -f "$D/run/$n.pid"
    done
    for i in $(seq 1 50); do
        local left=()
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && left+=("$pid")
        done
        [ ${#left[@]} -gt 0 ] || return 0
        pids=("${left[@]}")
        sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
}

stop() {
    drop_env ceph
    stop_daemons
    rm -rf "$D"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
