#!/usr/bin/env bash
# Installs the real storage servers the target tests run against, on a fresh
# Debian 12 machine (root or sudo). Idempotent: what is installed is kept, and
# Go-built servers are cached in $(go env GOPATH)/bin.
#
#   bash scripts/servers/install.sh            # every server
#   bash scripts/servers/install.sh minio ceph # only these
#
# Servers: ceph (mon, mgr, OSD, radosgw), minio, swift, fakegcs, azurite,
# ganesha, gonfs, gluster.
set -euo pipefail
cd "$(dirname "$0")/../.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
FAKEGCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0

all=(ceph minio swift fakegcs azurite ganesha gonfs gluster)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all[@]}")

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
GOBIN=$(go env GOPATH)/bin
TOOLS=${CHUNKBACK_TOOLS_DIR:-$HOME/.cache/chunkback/tools}

debs=()
for s in "${want[@]}"; do
    case $s in
    ceph) debs+=(ceph-mon ceph-mgr ceph-osd ceph-common radosgw librados-dev librbd-dev) ;;
    swift) debs+=(swift swift-proxy swift-account swift-container swift-object memcached python3-swiftclient) ;;
    azurite | minio) debs+=(openssl) ;;
    ganesha) debs+=(nfs-ganesha nfs-ganesha-vfs rpcbind iproute2) ;;
    gluster) debs+=(glusterfs-server libglusterfs-dev iproute2 pkg-config) ;;
    fakegcs | gonfs) ;;
    *) echo "install.sh: unknown server $s (known: ${all[*]})" >&2; exit 2 ;;
    esac
done

apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "apt-get install ${missing[*]}"
    # Another apt may hold the lock on a fresh machine: wait for it.
    local i
    for i in $(seq 1 60); do
        if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 update -qq &&
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq \
                --no-install-recommends "${missing[@]}" >/dev/null; then
            return 0
        fi
        echo "apt-get failed, retrying ($i)" >&2
        sleep 5
    done
    return 1
}

go_install() { # name module@version
    local bin=$1 pkg=$2 stamp
    stamp="$GOBIN/.$bin.version"
    if [ -x "$GOBIN/$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then
        return 0
    fi
    echo "go install $pkg"
    go install "$pkg"
    echo "$pkg" >"$stamp"
}

pids=()
for s in "${want[@]}"; do
    case $s in
    # MinIO takes ~7 min to build on 2 cores: build it while apt works.
    minio) go_install minio "github.com/minio/minio@$MINIO_VERSION" & pids+=($!) ;;
    fakegcs) go_install fake-gcs-server "github.com/fsouza/fake-gcs-server@$FAKEGCS_VERSION" & pids+=($!) ;;
    azurite)
        if [ "$(cat "$TOOLS/azurite/.version" 2>/dev/null)" != "$AZURITE_VERSION" ]; then
            echo "npm install azurite@$AZURITE_VERSION"
            mkdir -p "$TOOLS/azurite"
            (npm install --prefix "$TOOLS/azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null &&
                echo "$AZURITE_VERSION" >"$TOOLS/azurite/.version") & pids+=($!)
        fi
        ;;
    esac
done

[ ${#debs[@]} -eq 0 ] || apt_install "${debs[@]}"

rc=0
for p in "${pids[@]}"; do
    wait "$p" || rc=1
done
exit $rc
