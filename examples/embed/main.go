// Command embed shows chunkback used as a library: it backs a file up into a
// directory, changes the file, makes an incremental backup, and restores the
// chain into a new file.
//
//	go run ./examples/embed FILE [BACKUP_DIR]
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: embed FILE [BACKUP_DIR]")
	}
	dir := filepath.Join(os.TempDir(), "chunkback-embed")
	if len(os.Args) > 2 {
		dir = os.Args[2]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1], dir); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, file, dir string) error {
	// A POSIX directory target, laid out as Cinder's backup_posix_path,
	// wrapped in the standard retry policy.
	dirTarget, err := posix.New(dir, posix.Options{CreateRoot: true})
	if err != nil {
		return err
	}
	defer dirTarget.Close()
	t, err := target.NewRetry(dirTarget, target.RetryPolicy{})
	if err != nil {
		return err
	}
	engine, err := backup.New(t, backup.Config{})
	if err != nil {
		return err
	}

	// A full backup. An *os.File is read in parallel (it is an io.ReaderAt).
	src, err := os.Open(file)
	if err != nil {
		return err
	}
	defer src.Close()
	full, err := engine.Backup(ctx, src, backup.BackupOptions{
		VolumeID:    "embed-example",
		Compression: "zstd",
		Progress: func(p backup.Progress) {
			fmt.Printf("  %s %5.1f%%  %d/%d bytes  %.0f MB/s\n", p.Op, p.Percent, p.BytesDone, p.BytesTotal, p.Rate/1e6)
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("full backup %s: %d bytes read, %d objects\n", full.Info.ID, full.BytesRead, full.Objects)

	// An incremental on top of the latest backup stores only changed blocks.
	if _, err := src.Seek(0, 0); err != nil {
		return err
	}
	inc, err := engine.Backup(ctx, src, backup.BackupOptions{VolumeID: "embed-example", Compression: "zstd", Incremental: true})
	if err != nil {
		return err
	}
	fmt.Printf("incremental %s on %s: %d bytes changed\n", inc.Info.ID, inc.Info.ParentID, inc.BytesChanged)

	// Restore the chain; every object's MD5 and every block's SHA-256 is
	// checked on the way.
	out, err := os.Create(file + ".restored")
	if err != nil {
		return err
	}
	defer out.Close()
	res, err := engine.Restore(ctx, inc.Info.ID, out, backup.RestoreOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("restored %d bytes from a chain of %d into %s\n", res.Size, len(res.Chain), out.Name())
	return nil
}
