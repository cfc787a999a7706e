#!/usr/bin/env bash
# OpenStack Swift (Debian's 2.30) for the swift target tests: memcached, then
# a proxy (tempauth, SLO, bulk), an account, a container and an object server,
# all on loopback ports, one replica, storage in a directory.
#
#   bash scripts/servers/swift.sh start|stop
#
# Everything lives under $STATE_DIR/swift/ and /etc/swift is left alone: the
# servers are started through a small launcher (run.py) that points Swift at
# the private swift.conf before it loads it. The rings are built by one Python
# process. Each fresh start wipes the previous data and picks new ports.
#
# tempauth accounts: test:tester/testing (admin of AUTH_test) and test:reader/
# reading (a user of AUTH_test without access to its containers, for the
# permission tests). Storage policies: gold (index 0, default) and silver
# (index 1), so tests can see Config.StoragePolicy applied.
#
# Writes $STATE_DIR/swift.env last:
#   AUTH_URL, USER, KEY                 tempauth v1 endpoint and test credentials
#   READER_USER, READER_KEY             the user without container access
#   STORAGE_URL                         AUTH_test's storage URL
#   POLICIES                            the storage policies (default first)
#   URL_SWIFT, CLI_OS_*                 the CLI's --target URL and environment
set -euo pipefail
SERVER=swift
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3 # the first python3 on PATH may lack the swift module
DIR=$STATE_DIR/swift
ETC=$DIR/etc
DATA=$DIR/data
DAEMONS=(memcached account container object proxy)
USER_NAME=test:tester
USER_KEY=testing
CONTAINER=chunkback-swift

running() {
    local d
    for d in "${DAEMONS[@]}"; do
        alive "$DIR/$d.pid" || return 1
    done
}

stop() {
    drop_env swift
    local d
    for d in proxy object container account memcached; do
        stop_pid "$DIR/$d.pid"
    done
}

# write_config PROXY ACCOUNT CONTAINER OBJECT MEMCACHED writes swift.conf, the
# four server configurations and the launcher.
write_config() {
    local pp=$1 ap=$2 cp=$3 op=$4 mp=$5 user
    user=$(id -un)
    mkdir -p "$ETC" "$DATA/d1"
    cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = chunkback-test
swift_hash_path_prefix = chunkback-test

[storage-policy:0]
name = gold
default = yes

[storage-policy:1]
name = silver

[swift-constraints]
EOF
    # Generous timeouts: the machine is shared and loaded, and an object
    # server that gives up on a container update leaves the object out of
    # listings until an updater runs (none runs here).
    local common="bind_ip = 127.0.0.1
swift_dir = $ETC
devices = $DATA
mount_check = false
user = $user
workers = 0
log_level = WARNING
log_address = $DIR/no-syslog
conn_timeout = 5
node_timeout = 60"
    cat >"$ETC/account-server.conf" <<EOF
[DEFAULT]
bind_port = $ap
$common

[pipeline:main]
pipeline = account-server

[app:account-server]
use = egg:swift#account
EOF
    cat >"$ETC/container-server.conf" <<EOF
[DEFAULT]
bind_port = $cp
$common

[pipeline:main]
pipeline = container-server

[app:container-server]
use = egg:swift#container
EOF
    cat >"$ETC/object-server.conf" <<EOF
[DEFAULT]
bind_port = $op
$common
container_update_timeout = 60

[pipeline:main]
pipeline = object-server

[app:object-server]
use = egg:swift#object
EOF
    cat >"$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_port = $pp
$common

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
conn_timeout = 5
node_timeout = 60
recoverable_node_timeout = 60

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $USER_KEY .admin
user_test_reader = reading

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mp

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
    # The launcher points Swift at $ETC/swift.conf (the servers read
    # /etc/swift/swift.conf otherwise), then runs the server as its
    # /usr/bin/swift-*-server script would.
    cat >"$DIR/run.py" <<'EOF'
import sys
from swift.common import utils
utils.set_swift_dir(sys.argv[1])
from swift.common import constraints, storage_policy
constraints.reload_constraints()
storage_policy.reload_storage_policies()
from swift.common.wsgi import run_wsgi
server = sys.argv[2]
sys.argv = [sys.argv[0]] + sys.argv[3:]
conf_file, options = utils.parse_options()
sys.exit(run_wsgi(conf_file, server, **options))
EOF
}

# build_rings ACCOUNT CONTAINER OBJECT builds the rings, one device each, one
# replica, in one Python process (nine swift-ring-builder calls take ~10 s).
build_rings() {
    "$PY" - "$ETC" "$@" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(["account", "container", "object"], map(int, sys.argv[2:5])))
for name, port in [("account", ports["account"]), ("container", ports["container"]),
                   ("object", ports["object"]), ("object-1", ports["object"])]:
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 100, "meta": ""})
    b.rebalance()
    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
EOF
}

# check PROXY_PORT authenticates and writes and deletes an object: the whole
# path through proxy, account, container and object servers works.
check() {
    local base=http://127.0.0.1:$1 hdrs token url
    hdrs=$(curl -fsS -D - -o /dev/null -H "X-Auth-User: $USER_NAME" -H "X-Auth-Key: $USER_KEY" "$base/auth/v1.0") || return 1
    token=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
    url=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p')
    [ -n "$token" ] && [ -n "$url" ] || return 1
    curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/chunkback-probe" &&
        curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary probe "$url/chunkback-probe/probe" &&
        curl -fsS -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$url/chunkback-probe/probe" &&
        curl -fsS -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$url/chunkback-probe"
}

start() {
    if env_ready swift && running; then
        return 0
    fi
    stop
    "$PY" -c 'import swift' 2>/dev/null || die "no swift module for $PY: run bash scripts/servers/install.sh swift"
    rm -rf "$DIR"
    mkdir -p "$DIR"
    local ports pp ap cp op mp
    ports=$("$PY" -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
    read -r pp ap cp op mp <<<"$ports"
    write_config "$pp" "$ap" "$cp" "$op" "$mp"
    build_rings "$ap" "$cp" "$op" || die "building the rings failed"

    local mc_user=root
    id memcache >/dev/null 2>&1 && mc_user=memcache
    LOGFILE=$DIR/memcached.log
    spawn "$DIR/memcached.pid" "$LOGFILE" /usr/bin/memcached -l 127.0.0.1 -p "$mp" -U 0 -m 64 -u "$mc_user" ||
        die "memcached did not start"
    wait_tcp 127.0.0.1 "$mp" 10 || die "memcached does not answer on port $mp"

    local d
    for d in account container object proxy; do
        spawn "$DIR/$d.pid" "$DIR/$d.log" "$PY" "$DIR/run.py" "$ETC" "$d-server" "$ETC/$d-server.conf" -v ||
            LOGFILE=$DIR/$d.log die "$d server did not start"
    done
    local port
    for d in account:$ap container:$cp object:$op proxy:$pp; do
        port=${d#*:}
        d=${d%%:*}
        wait_tcp 127.0.0.1 "$port" 60 || LOGFILE=$DIR/$d.log die "$d server does not answer on port $port"
    done
    local i ok=
    for i in $(seq 1 100); do
        if check "$pp" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.2
    done
    [ -n "$ok" ] || LOGFILE=$DIR/proxy.log die "Swift on port $pp does not store objects"

    local auth=http://127.0.0.1:$pp/auth/v1.0
    write_env swift \
        "AUTH_URL=$auth" \
        "USER=$USER_NAME" \
        "KEY=$USER_KEY" \
        "READER_USER=test:reader" \
        "READER_KEY=reading" \
        "STORAGE_URL=http://127.0.0.1:$pp/v1/AUTH_test" \
        "POLICIES=gold,silver" \
        "URL_SWIFT=swift://$CONTAINER/ci" \
        "CLI_OS_AUTH_URL=$auth" \
        "CLI_OS_USERNAME=$USER_NAME" \
        "CLI_OS_PASSWORD=$USER_KEY" \
        "CLI_OS_AUTH_VERSION=1"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
