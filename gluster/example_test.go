//go:build gluster

package gluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/chunkback/chunkback/gluster"
	"github.com/chunkback/chunkback/target"
)

// Open the volume Cinder's glusterfs_backup_share names, wrap the target
// with the retry decorator its Config asks for, and store and read back an
// object. (The share is the one scripts/servers/gluster.sh starts.)
func Example() {
	ctx := context.Background()
	cfg, err := gluster.ParseShare("10.203.0.2:chunkback")
	if err != nil {
		log.Fatal(err)
	}
	cfg.Path = "example"
	cfg.CreatePath = true
	g, err := gluster.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close() // about 10 seconds: keep one target (or Volume) per process

	t, err := target.NewRetry(g, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}
	data := []byte("one chunk of a backup")
	if err := t.Put(ctx, "ab/cd/object", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	rc, err := t.Get(ctx, "ab/cd/object", 4, 5)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, layout %s\n", got, g.CinderLayout())
	if err := t.Delete(ctx, "ab/cd/object"); err != nil {
		log.Fatal(err)
	}
	// Output: chunk, layout posix
}
