package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/s3"
	"github.com/chunkback/chunkback/target"
)

// Open a bucket on an S3-compatible store (here the test MinIO that
// scripts/servers/minio.sh starts), wrap it with the retry policy of its
// Config as every caller should, and store and read an object.
func Example() {
	env, err := servertest.Load("minio")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cfg := s3.Config{
		Endpoint:     env["ENDPOINT"],
		Region:       env["REGION"],
		AccessKey:    env["ACCESS_KEY"], // leave empty for the SDK's default credential chain
		SecretKey:    env["SECRET_KEY"],
		Bucket:       "chunkback-example",
		Prefix:       "backups",
		PathStyle:    true, // MinIO and radosgw on an IP address
		CreateBucket: true,
	}
	st, err := s3.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	// The SDK's own retries are off: retrying, with Retry-After and Cinder's
	// legacy mode and 4 attempts, is the decorator's job.
	t, err := target.NewRetry(st, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}

	data := []byte("hello, world")
	if err := t.Put(ctx, "greeting", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	rc, err := t.Get(ctx, "greeting", 7, -1)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, layout %s\n", got, st.CinderLayout())
	if err := t.Delete(ctx, "greeting"); err != nil {
		log.Fatal(err)
	}
	// Output: world, layout object
}
