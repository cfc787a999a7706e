//go:build ceph

package rbd_test

import (
	"context"
	"fmt"
	"log"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/ceph/rbd"
	"github.com/chunkback/chunkback/posix"
)

// Back an RBD image up into a directory, incrementally when it has a
// backup already, and restore it into another image.
func Example() {
	ctx := context.Background()
	conn, err := rbd.Connect(ctx, rbd.Config{Conf: "/etc/ceph/ceph.conf", User: "cinder-backup"})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	t, err := posix.New("/var/backups/volumes", posix.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	e, err := backup.New(t, backup.Config{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := rbd.Backup(ctx, e, conn, rbd.BackupOptions{
		Image:        rbd.ImageRef{Pool: "volumes", Image: "volume-1234"},
		Backup:       backup.BackupOptions{Incremental: true, FallbackToFull: true},
		MaxSnapshots: 2,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("backup %s of snapshot %s: read %d bytes of the image\n", res.Info.ID, res.Snapshot, res.ImageBytesRead)
	_, err = rbd.Restore(ctx, e, conn, res.Info.ID, rbd.RestoreOptions{
		Image:  rbd.ImageRef{Pool: "volumes", Image: "volume-1234-restored"},
		Create: true,
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Cinder's CephBackupDriver: back an image up into an image of a backup
// pool, keeping the newest two backup snapshots on the source.
func ExampleNative() {
	ctx := context.Background()
	conn, err := rbd.Connect(ctx, rbd.Config{User: "cinder-backup"})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	n, err := rbd.NewNative(conn, rbd.NativeConfig{Pool: "backups", MaxSnapshots: 2})
	if err != nil {
		log.Fatal(err)
	}
	res, err := n.Backup(ctx, rbd.NativeBackupOptions{
		Source:      rbd.ImageRef{Pool: "volumes", Image: "volume-1234"},
		Incremental: true, FallbackToFull: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("backup %s is %s\n", res.Backup.ID, res.Backup.Image)
	if _, err := n.Restore(ctx, res.Backup.ID, rbd.DestinationOptions{Image: rbd.ImageRef{Pool: "volumes", Image: "volume-5678"}, Create: true}); err != nil {
		log.Fatal(err)
	}
}
