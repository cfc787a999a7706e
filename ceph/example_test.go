//go:build ceph

package ceph_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/chunkback/chunkback/ceph"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

// Open a RADOS pool as a target, with retries as Cinder makes them, and store
// and read back an object.
func Example() {
	ctx := context.Background()
	// The test cluster of scripts/servers/ceph.sh; in production these are
	// e.g. /etc/ceph/ceph.conf, "cinder-backup" and its keyring.
	env, err := servertest.Load("ceph")
	if err != nil {
		log.Fatal(err)
	}
	cfg := ceph.Config{
		Conf:      env["CONF"],
		User:      env["CLIENT_ID"],
		Keyring:   env["KEYRING"],
		Pool:      env["POOL"],
		Namespace: "example",
	}
	t, err := ceph.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	// librados makes one attempt per operation; the retry decorator retries
	// timeouts as cfg says (4 attempts, 5s backoff base by default).
	store, err := target.NewRetry(t, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}

	data := []byte("a backup object")
	if err := store.Put(ctx, "volume_1/obj-00001", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	rc, err := store.Get(ctx, "volume_1/obj-00001", 2, 6)
	if err != nil {
		log.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got)
	if err := store.Delete(ctx, "volume_1/obj-00001"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// backup
}
