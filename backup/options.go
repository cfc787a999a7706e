package backup

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/chunkback/chunkback/chunk"
	"github.com/chunkback/chunkback/compress"
)

// Defaults, as Cinder's object-store drivers have them.
const (
	// DefaultObjectSize is Cinder's backup_swift/s3/gcs_object_size. (Cinder's
	// posix driver defaults to 1999994880 bytes; any size restores, and a
	// smaller one keeps memory and retries small.)
	DefaultObjectSize = 52428800
	// DefaultBlockSize is Cinder's backup_*_block_size / sha block size.
	DefaultBlockSize = 32768
	// DefaultCompression is Cinder's backup_compression_algorithm default.
	DefaultCompression = "zlib"
)

// Extent is a range of bytes of a source: BackupOptions.Changed lists them.
type Extent = chunk.Extent

// BackupOptions describes one backup. VolumeID is required; the rest have
// documented defaults.
type BackupOptions struct {
	// VolumeID identifies the source (a Cinder volume ID, or any name without
	// '/'). Backups of one volume form its chains.
	VolumeID string
	// BackupID names the backup. Default: a new random UUID.
	BackupID string
	// ParentID makes an incremental on top of that backup.
	ParentID string
	// Incremental makes an incremental on top of the volume's latest backup
	// (when ParentID is empty).
	Incremental bool
	// FallbackToFull makes a full backup, instead of failing with
	// ErrParentUnusable, when the parent is missing or damaged, has another
	// block size, or the source grew. Result.FallbackReason says why. A
	// stream of unknown size that turns out to have grown still fails: it
	// cannot be read a second time.
	FallbackToFull bool
	// Name and Description are stored as the backup's display name and
	// description (JSON null when empty, as Cinder writes them).
	Name, Description string
	// Compression is a Cinder codec name: none, off, no, zlib, gzip, bz2,
	// bzip2 or zstd (case-insensitive). Default "zlib".
	Compression string
	// CompressionLevel is the codec level; 0 is Cinder's default level.
	CompressionLevel int
	// ObjectSize is the largest object stored, in bytes. It must be a
	// multiple of BlockSize. Default DefaultObjectSize.
	ObjectSize int64
	// BlockSize is the number of bytes each SHA-256 covers. An incremental
	// must use its parent's. Default DefaultBlockSize.
	BlockSize int
	// Size is the source's length in bytes. 0 detects it from an io.Seeker
	// source (a file or block device); -1 means unknown (a stream). With a
	// known size and an io.ReaderAt source, reading is parallel.
	Size int64
	// StoreZeros stores all-zero extents of a full backup like any data.
	// By default they are skipped, and restore writes zeros there. Skipping
	// is safe for Cinder's own restore onto a new (zeroed) volume; set this
	// when Cinder may restore onto a volume holding old data.
	StoreZeros bool
	// VolumeMeta is Cinder's volume_meta document (a JSON string), carried
	// unchanged. Default null.
	VolumeMeta *string
	// Changed, when not nil, lists the only byte ranges of the source that
	// may differ from the parent backup: a changed-block list such as
	// librbd's diff between the parent's snapshot and this one. An
	// incremental then reads only the blocks these ranges touch (plus the
	// source's last block, and any part past the parent's end); every other
	// block keeps the parent's hash and is neither read nor stored. The
	// source must implement io.ReaderAt and have a known size. A full backup
	// (including a FallbackToFull one) ignores Changed and reads everything.
	// An empty, non-nil list means nothing changed.
	Changed []Extent
	// ReadHoles reads the holes of a sparse source file too. By default the
	// holes that SEEK_DATA/SEEK_HOLE report (Linux) are not read: they are
	// zeros, so a 64 GiB sparse file holding 1 GiB of data costs about what
	// a 1 GiB file does.
	ReadHoles bool
	// Resumable keeps a resume journal next to the backup's objects while
	// it runs (see Engine.Partials), and on failure or cancellation keeps
	// the journal and the objects stored so far instead of deleting them:
	// the error is then a *PartialError, and Resume continues the backup.
	// A journal left next to a complete backup is harmless; Delete removes
	// it. Default off (a failed backup leaves nothing).
	Resumable bool
	// Resume continues the partial backup BackupID (required) left by an
	// interrupted Resumable backup: same location and creation time, its
	// options checked against those it was started with (a mismatch is
	// ErrInvalidOptions naming the field). The source is read and hashed
	// again; objects already stored with the same offset, length and MD5 are
	// reused, every other one is stored again, and the result is the backup
	// an uninterrupted run would have made. With no partial backup of that
	// ID, a new Resumable backup is started; a complete one is ErrExists.
	Resume bool
	// Progress, when set, receives a report every ProgressInterval (default
	// one second) and a final one.
	Progress         ProgressFunc
	ProgressInterval time.Duration

	// syntheticOf is set by Synthesize only, so that no caller can claim a
	// backup was merged from a chain: it becomes Facts.SyntheticOf.
	syntheticOf string
}

// normalized fills in defaults and validates, naming the field at fault.
func (o BackupOptions) normalized(layoutPosix, fixedContainer bool) (BackupOptions, error) {
	if o.Resume && o.BackupID == "" {
		return o, fmt.Errorf("%w: Resume needs BackupID: name the partial backup to continue (see Engine.Partials)", ErrInvalidOptions)
	}
	if o.BackupID == "" {
		o.BackupID = newUUID()
	}
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	if o.ObjectSize == 0 {
		o.ObjectSize = DefaultObjectSize
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	bad := func(format string, args ...any) (BackupOptions, error) {
		return o, fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.VolumeID == "":
		return bad("volume ID is empty: name the volume the source belongs to")
	case strings.ContainsAny(o.VolumeID, "/\x00"):
		return bad("volume ID %q must not contain '/'", o.VolumeID)
	case strings.ContainsAny(o.BackupID, "/\x00"):
		return bad("backup ID %q must not contain '/'", o.BackupID)
	case layoutPosix && !fixedContainer && len(o.BackupID) < 4:
		return bad("backup ID %q is too short: the posix layout puts a backup in ID[0:2]/ID[2:4]/ID, so it needs at least 4 characters (a UUID)", o.BackupID)
	case o.ParentID == o.BackupID:
		return bad("parent ID %q is the backup's own ID", o.ParentID)
	case o.BlockSize <= 0:
		return bad("block size %d must be a positive number of bytes (default %d)", o.BlockSize, DefaultBlockSize)
	case o.ObjectSize <= 0:
		return bad("object size %d must be a positive number of bytes (default %d)", o.ObjectSize, DefaultObjectSize)
	case o.ObjectSize%int64(o.BlockSize) != 0:
		below, above := o.ObjectSize/int64(o.BlockSize)*int64(o.BlockSize), (o.ObjectSize/int64(o.BlockSize)+1)*int64(o.BlockSize)
		if below == 0 {
			return bad("object size %d is not a multiple of block size %d: use %d", o.ObjectSize, o.BlockSize, above)
		}
		return bad("object size %d is not a multiple of block size %d: use %d or %d", o.ObjectSize, o.BlockSize, below, above)
	case o.ObjectSize > 1<<31-1:
		return bad("object size %d is too large: objects are held in memory whole; use at most 2147483647", o.ObjectSize)
	case o.Size < -1:
		return bad("size %d must be -1 (unknown), 0 (detect) or the source's length", o.Size)
	case o.ProgressInterval < 0:
		return bad("progress interval %v must not be negative", o.ProgressInterval)
	}
	for i, e := range o.Changed {
		if e.Offset < 0 || e.Length < 0 {
			return bad("changed extent %d {offset %d, length %d}: offsets and lengths must not be negative", i, e.Offset, e.Length)
		}
	}
	if err := (compress.Options{Level: o.CompressionLevel}).Validate(); err != nil {
		return bad("compression level: %v", err)
	}
	return o, nil
}

// newUUID returns a random (version 4) UUID, the form Cinder's IDs take.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
