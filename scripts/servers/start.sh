#!/usr/bin/env bash
# Installs (scripts/servers/install.sh) and starts the real storage servers
# the target tests use, on loopback, and leaves them running. Each writes its
# endpoints to ${CHUNKBACK_SERVERS_DIR:-/tmp/chunkback-servers}/<server>.env.
#
#   bash scripts/servers/start.sh              # every server
#   bash scripts/servers/start.sh minio swift  # only these
#   bash scripts/servers/stop.sh               # stop them
set -euo pipefail
cd "$(dirname "$0")"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(ceph minio swift fakegcs azurite ganesha gonfs gluster)
bash ./install.sh "${servers[@]}"
for s in "${servers[@]}"; do
    started=$(date +%s)
    bash "./$s.sh" start
    echo "$s: running ($(($(date +%s) - started)) s)"
done
