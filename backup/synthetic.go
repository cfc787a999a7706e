package backup

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SynthesizeOptions describes a synthetic full backup. Every field has a
// default taken from the chain it is made from.
type SynthesizeOptions struct {
	// BackupID names the new backup. Default: a new random UUID.
	BackupID string
	// Name is its display name. Default: the top backup's name.
	Name string
	// Description is its display description. Default: "synthetic full of
	// backup <ID>".
	Description string
	// Compression is a Cinder codec name, as BackupOptions.Compression.
	// Default: the codec the chain's newest backups used (the first codec
	// other than "none" found from the top down; "none" when every object
	// is stored raw; DefaultCompression when the chain holds no object).
	Compression string
	// CompressionLevel is the codec level; 0 is Cinder's default level.
	CompressionLevel int
	// ObjectSize is the largest object stored. Default: the top backup's
	// object size (for a chain Cinder wrote, its largest object, rounded up
	// to a multiple of the block size).
	ObjectSize int64
	// Progress, when set, receives a report every ProgressInterval (default
	// one second) and a final one.
	Progress         ProgressFunc
	ProgressInterval time.Duration
}

// Synthesize merges the chain of backupID into a new full backup of the
// same volume, on the same target, without reading the source: long chains
// can then be cut, and old fulls pruned. The new backup is made by the
// normal backup path reading the chain's Image, so its objects, compression,
// zero skipping and metadata are what a full backup of the same data gives
// (with the block size of the chain's manifest, and zeros stored or skipped
// as the chain's full backup did); its Facts.SyntheticOf names backupID, and
// an incremental can be made on top of it like on any full backup.
//
// Every block read from the chain is checked against the top backup's
// SHA-256 manifest, and the new backup's manifest is then compared with it:
// they must be identical. On any failure (a damaged object in the chain is
// an error wrapping ErrCorrupt), nothing is left that looks like a new
// backup.
//
// Memory is a backup's ((Workers + 2) x object size) plus the Image's: its
// cache of DefaultImageCacheObjects objects and one object per read in
// progress (Workers), each as large as the chain's largest object.
func (e *Engine) Synthesize(ctx context.Context, backupID string, o SynthesizeOptions) (*Result, error) {
	switch {
	case o.ObjectSize < 0:
		return nil, fmt.Errorf("%w: object size %d must be a positive number of bytes (0 keeps the top backup's)", ErrInvalidOptions, o.ObjectSize)
	case o.BackupID == backupID && backupID != "":
		return nil, fmt.Errorf("%w: new backup ID %q is the ID of the backup it is made from: choose another", ErrInvalidOptions, o.BackupID)
	}
	im, err := e.OpenImage(ctx, backupID, ImageOptions{})
	if err != nil {
		return nil, err
	}
	chain := im.Chain()
	top := chain[len(chain)-1]
	bo := BackupOptions{
		VolumeID:         top.VolumeID,
		BackupID:         o.BackupID,
		Name:             o.Name,
		Description:      o.Description,
		Compression:      o.Compression,
		CompressionLevel: o.CompressionLevel,
		ObjectSize:       o.ObjectSize,
		BlockSize:        im.BlockSize(),
		Size:             im.Size(),
		StoreZeros:       !chain[0].ours || !chain[0].facts.ZerosSkipped,
		VolumeMeta:       top.Metadata.VolumeMeta,
		Progress:         o.Progress,
		ProgressInterval: o.ProgressInterval,
		syntheticOf:      top.ID,
	}
	if bo.Name == "" {
		bo.Name = top.Name
	}
	if bo.Description == "" {
		bo.Description = "synthetic full of backup " + top.ID
	}
	if bo.Compression == "" {
		bo.Compression = chainCodec(chain)
	}
	if bo.ObjectSize == 0 {
		bo.ObjectSize = chainObjectSize(chain, im.BlockSize())
	}
	if bo.Size == 0 {
		bo.Size = -1 // an empty source: 0 would mean "measure it"
	}

	res, err := e.Backup(ctx, io.NewSectionReader(im, 0, im.Size()), bo)
	if err != nil {
		return nil, fmt.Errorf("synthesizing a full backup of %s: %w", top.ID, err)
	}
	if err := e.checkSynthetic(ctx, res.Info, im); err != nil {
		// It may look complete: take it away, _metadata first.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := e.deleteOne(cctx, res.Info); derr != nil {
			return nil, fmt.Errorf("%w (and deleting the new backup %s failed: %v: delete it)", err, res.Info.ID, derr)
		}
		return nil, err
	}
	return res, nil
}

// checkSynthetic compares the new backup's manifest with the chain's.
func (e *Engine) checkSynthetic(ctx context.Context, made *Info, im *Image) error {
	m, err := e.manifest(ctx, made)
	if err != nil {
		return fmt.Errorf("checking synthetic full %s: %w", made.ID, err)
	}
	want := im.manifest
	if m.BlockSize != want.BlockSize || !slices.Equal(m.Hashes, want.Hashes) {
		return fmt.Errorf("%w: synthetic full %s: its SHA-256 manifest (%d blocks of %d bytes) differs from that of %s (%d blocks of %d bytes)",
			ErrCorrupt, made.ID, len(m.Hashes), m.BlockSize, im.chain[len(im.chain)-1].ID, len(want.Hashes), want.BlockSize)
	}
	return nil
}

// SyntheticOf returns, for a synthetic full backup, the backup whose chain
// it was merged from (Facts.SyntheticOf), and "" for any other backup.
func (i *Info) SyntheticOf() string { return i.facts.SyntheticOf }

// chainCodec is the codec the chain's newest backups were stored with.
func chainCodec(chain []*Info) string {
	raw := false
	for i := len(chain) - 1; i >= 0; i-- {
		for _, o := range chain[i].Metadata.Objects {
			if c := strings.ToLower(o.Compression); c != "none" && c != "" {
				return c
			}
			raw = true
		}
	}
	if raw {
		return "none"
	}
	return DefaultCompression
}

// chainObjectSize is the object size the chain's top was cut with: from
// chunkback's facts, else the largest object (rounded up to whole blocks).
func chainObjectSize(chain []*Info, blockSize int) int64 {
	for i := len(chain) - 1; i >= 0; i-- {
		if b := chain[i]; b.ours && b.facts.ObjectSize > 0 && b.facts.ObjectSize%int64(blockSize) == 0 {
			return b.facts.ObjectSize
		}
	}
	var largest int64
	for _, b := range chain {
		for _, o := range b.Metadata.Objects {
			largest = max(largest, o.Length)
		}
	}
	if largest == 0 {
		return DefaultObjectSize
	}
	bs := int64(blockSize)
	return min((largest+bs-1)/bs*bs, (1<<31-1)/bs*bs)
}
