package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/posix"
)

// Back up a source into a directory, then restore it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "chunkback-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	t, err := posix.New(dir, posix.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	engine, err := backup.New(t, backup.Config{})
	if err != nil {
		log.Fatal(err)
	}

	source := bytes.Repeat([]byte("a volume's data "), 100000)
	res, err := engine.Backup(ctx, bytes.NewReader(source), backup.BackupOptions{
		VolumeID: "11111111-1111-4111-8111-111111111111",
		BackupID: "22222222-2222-4222-8222-222222222222",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("backed up", res.BytesRead, "bytes into", res.Objects, "object")

	restored, err := os.CreateTemp(dir, "restored")
	if err != nil {
		log.Fatal(err)
	}
	defer restored.Close()
	if _, err := engine.Restore(ctx, res.Info.ID, restored, backup.RestoreOptions{}); err != nil {
		log.Fatal(err)
	}
	got, err := os.ReadFile(restored.Name())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored the same bytes:", bytes.Equal(got, source))
	// Output:
	// backed up 1600000 bytes into 1 object
	// restored the same bytes: true
}
