#!/usr/bin/env bash
# Stops the servers start.sh started (all of them, or those named).
set -uo pipefail
cd "$(dirname "$0")"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(gluster gonfs ganesha azurite fakegcs swift minio ceph)
rc=0
for s in "${servers[@]}"; do
    [ -f "./$s.sh" ] || continue
    bash "./$s.sh" stop || rc=1
done
exit $rc
