package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/chunkback/chunkback/backup"
)

// cmdSynthesize merges a backup's chain into a new full backup on the
// target, without reading the source.
func cmdSynthesize(ctx context.Context, args []string, out *output) error {
	var b oneBackup
	var o backup.SynthesizeOptions
	err := b.open(ctx, "synthesize", "merge, with its chain, into a new full backup", args, out, func(fs *flag.FlagSet) {
		fs.StringVar(&o.BackupID, "new-backup-id", "", "ID of the synthetic full backup (default: a new UUID)")
		fs.StringVar(&o.Compression, "compression", "", "none, zlib, gzip, bz2, bzip2 or zstd (default: the chain's codec)")
		fs.IntVar(&o.CompressionLevel, "compression-level", 0, "codec level (default: Cinder's: zlib 6, bz2 9, zstd 3)")
		fs.Int64Var(&o.ObjectSize, "object-size", 0, "bytes per object, a multiple of the chain's block size (default: the top backup's)")
		fs.StringVar(&o.Name, "name", "", "display name (default: the top backup's)")
		fs.StringVar(&o.Description, "description", "", `display description (default: "synthetic full of backup ID")`)
	})
	if err != nil {
		return err
	}
	defer b.close()
	o.Progress = out.progress(b.progress)
	res, err := b.engine.Synthesize(ctx, b.id, o)
	out.endProgress()
	if err != nil {
		return err
	}
	out.result(map[string]any{
		"backup_id": res.Info.ID, "volume_id": res.Info.VolumeID, "synthetic_of": res.Info.SyntheticOf(), "full": true,
		"bytes": res.Info.Size, "bytes_changed": res.BytesChanged, "bytes_stored": res.BytesStored,
		"objects": res.Objects, "seconds": res.Duration.Seconds(), "rate_bytes_per_second": rate(res.Info.Size, res.Duration),
	}, fmt.Sprintf("synthetic full %s of volume %s from the chain of %s: %s, stored %d objects, %s (%s compressed) in %s\n",
		res.Info.ID, res.Info.VolumeID, b.id, bytesText(res.Info.Size), res.Objects, bytesText(res.BytesChanged),
		bytesText(res.BytesStored), res.Duration.Round(time.Millisecond)))
	return nil
}
