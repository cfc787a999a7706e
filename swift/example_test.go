package swift_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"log"

	"github.com/ncw/swift/v2/swifttest"

	"github.com/chunkback/chunkback/swift"
	"github.com/chunkback/chunkback/target"
)

// Open a Swift container with service credentials (auth v1 here; Keystone
// v2 or v3 take Tenant, or Project and the domains) and wrap the target in
// the retry decorator with Cinder's retry options, as the CLI does. An
// in-process fake Swift stands in for a real server.
func Example() {
	srv, err := swifttest.NewSwiftServer("127.0.0.1")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	cfg := swift.Config{
		AuthStrategy:    swift.AuthSingleUser,
		AuthURL:         srv.AuthURL,
		User:            swifttest.TEST_ACCOUNT,
		Key:             swifttest.TEST_ACCOUNT,
		Container:       "volumebackups",
		Prefix:          "host1",
		CreateContainer: true,
	}
	t, err := swift.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	rt, err := target.NewRetry(t, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}

	data := []byte("a chunk of a volume")
	sum := md5.Sum(data) // checked by Swift
	err = rt.Put(ctx, "volume_1/20260101120000/az_nova_backup_1-00001", bytes.NewReader(data), int64(len(data)),
		target.PutOptions{ContentMD5: sum[:]})
	if err != nil {
		log.Fatal(err)
	}
	rc, err := rt.Get(ctx, "volume_1/20260101120000/az_nova_backup_1-00001", 0, -1)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got)
	fmt.Println(cfg.RetryPolicy().MaxAttempts, "attempts at most")
	// Output:
	// a chunk of a volume
	// 4 attempts at most
}
