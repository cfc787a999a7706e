#!/usr/bin/env bash
# The main job on a fresh machine: back a 256 MiB volume image up into a
# POSIX directory (Cinder's backup_posix_path layout), change 1% of it, make
# an incremental, restore the chain and check it bit for bit.
#
#   bash scripts/demo.sh [WORKDIR]     (default: a new directory under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/chunkback-demo.XXXXXX)}
mkdir -p "$work"
bin="$work/chunkback"

echo "== building the CLI (examples/chunkback)"
go build -o "$bin" ./examples/chunkback

echo "== making a 256 MiB volume image: random, text and zero regions"
{
    head -c 96M /dev/urandom
    { yes "chunkback demo: a line of text that compresses well, like logs and configs" || true; } | head -c 96M
    head -c 64M /dev/zero
} > "$work/volume.img"

store="$work/backups"
echo "== full backup into $store"
"$bin" backup --target "$store" --volume-id demo-volume --name first "$work/volume.img"

echo "== changing 1% of the blocks, then an incremental backup"
size=$(stat -c %s "$work/volume.img")
for _ in $(seq 82); do   # 1% of the 8192 blocks of 32 KiB: 4 KiB writes at random places
    off=$(( (RANDOM * 32768 + RANDOM) % (size / 4096) ))
    dd if=/dev/urandom of="$work/volume.img" bs=4096 seek="$off" count=1 conv=notrunc status=none
done
"$bin" backup --target "$store" --volume-id demo-volume --incremental --name second "$work/volume.img"

echo "== the backups"
"$bin" list --target "$store"
last=$("$bin" list --target "$store" --volume-id demo-volume --json | sed -n 's/.*"backup_id": "\([^"]*\)".*/\1/p' | tail -n 1)

echo "== restoring the chain and verifying it"
"$bin" restore --target "$store" --backup-id "$last" "$work/restored.img"
"$bin" verify --target "$store" --backup-id "$last"
if cmp -s "$work/volume.img" "$work/restored.img"; then
    echo "OK: the restored image is identical to the source ($work/restored.img)"
else
    echo "FAIL: the restored image differs from the source" >&2
    exit 1
fi
