package nfs_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/chunkback/chunkback/nfs"
	"github.com/chunkback/chunkback/target"
)

// Example opens an NFSv3 export without a kernel mount and wraps the target
// in the retry decorator its configuration asks for, as the CLI does.
func Example() {
	ctx := context.Background()
	uid, gid := uint32(1000), uint32(1000)
	cfg := nfs.Config{
		Share:              "nfs.example.com:/srv/backup", // Cinder's backup_share
		MountPort:          20048,                         // no portmapper is asked
		Subdirectory:       "cinder",
		CreateSubdirectory: true,
		UID:                &uid, // AUTH_SYS credentials the server checks
		GID:                &gid,
	}
	t, err := nfs.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	store, err := target.NewRetry(t, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}
	data := []byte("chunk")
	if err := store.Put(ctx, "ab/cd/abcd-1234/object-00001", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored")
}

// Example_mountPoint uses a share the kernel has mounted: the target is then
// the posix target on the mount point.
func Example_mountPoint() {
	t, err := nfs.New(context.Background(), nfs.Config{MountPoint: "/mnt/backup", Subdirectory: "cinder"})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	fmt.Println(t)
}
