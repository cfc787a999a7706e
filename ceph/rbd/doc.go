// Package rbd backs Ceph RBD images up and restores them, with librbd (the
// cgo binding github.com/ceph/go-ceph, built with the tags ceph and pacific).
//
// It offers the two things Ceph users need:
//
//   - An RBD image as a source and destination of the chunked engine
//     (package backup). Backup snapshots the image (snapshot
//     backup.<backup ID>.snap.<time>, as Cinder's Ceph driver names them),
//     and for an incremental asks librbd which extents changed since the
//     parent backup's snapshot (rbd_diff_iterate2), so that the engine reads
//     only those: an incremental of a 1 TiB image with 1 GiB changed reads
//     about 1 GiB. Restore writes into a new or existing image, discarding
//     (not writing zeros into) the ranges the backup holds no data for, and
//     discards an existing image's bytes past the backup's end, as Cinder's
//     restore_discard_excess_bytes does.
//
//   - A Ceph-native mode (Native), as Cinder's CephBackupDriver: the backup
//     of an RBD image is an RBD image in a backup pool, named
//     volume-<volume ID>.backup.<ID of the full backup>, holding one
//     snapshot per backup. A full backup copies the image's allocated
//     extents; an incremental copies only the extents changed between the
//     parent's snapshot and a new one (export-diff / import-diff), then
//     snapshots the backup image. Restoring reads a backup image snapshot.
//
// Connect opens one cluster connection (Config: ceph.conf, cephx user,
// keyring, timeouts) that every operation shares.
//
// Without the ceph build tag this package holds only this documentation, so
// that `go build ./...` works on machines without librados and librbd.
package rbd
