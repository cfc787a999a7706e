package gcs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

// Example opens a bucket with a service-account key and wraps the target in
// the retry decorator its configuration asks for (Cinder's 3 retries of 429
// and 5xx), as the CLI does. Without CredentialsFile, Application Default
// Credentials are used (GOOGLE_APPLICATION_CREDENTIALS, gcloud, or the
// machine's service account / workload identity).
func Example() {
	ctx := context.Background()
	cfg := gcs.Config{
		Bucket:          "cinder-backups",                // backup_gcs_bucket
		Prefix:          "region-1",                      // optional
		CredentialsFile: "/etc/chunkback/gcs-key.json",   // backup_gcs_credential_file
		ProjectID:       "my-project",                    // for CreateBucket
		CreateBucket:    true,                            // at BucketLocation "US", StorageClass "NEARLINE"
		WriterChunkSize: 8 << 20,                         // default 2 MiB, as Cinder
		RetryErrorCodes: []int{429, 408},                 // default 429; 5xx always
		ProxyURL:        "http://proxy.example.com:3128", // backup_gcs_proxy_url
		UserAgent:       "nightly-backup/1.0",            // default "chunkback"
		ReaderChunkSize: gcs.SingleRequest,               // default 2 MiB, as Cinder
	}
	t, err := gcs.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	store, err := target.NewRetry(t, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}
	data := []byte("chunk")
	if err := store.Put(ctx, "volume_1/20260101120000/az_nova_backup_2-00001", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
}

// Example_gcsEmulator runs against fake-gcs-server (started by
// scripts/servers/fakegcs.sh): an emulator takes Endpoint and Anonymous, or
// STORAGE_EMULATOR_HOST=host:port in the environment.
func Example_gcsEmulator() {
	env, err := servertest.Load("fakegcs")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cfg := gcs.Config{
		Bucket:       "chunkback-example",
		Endpoint:     env["ENDPOINT"], // http://127.0.0.1:PORT
		Anonymous:    true,
		ProjectID:    "test",
		CreateBucket: true,
	}
	t, err := gcs.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	store, err := target.NewRetry(t, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}
	data := []byte("hello, bucket")
	if err := store.Put(ctx, "greeting", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	rc, err := store.Get(ctx, "greeting", 7, -1)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got)
	if err := store.Delete(ctx, "greeting"); err != nil {
		log.Fatal(err)
	}
	// Output: bucket
}
