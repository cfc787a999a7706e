//go:build ceph

package rbd

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/target"
)

// Defaults of the native mode, as Cinder's Ceph backup driver has them.
const (
	// DefaultBackupPool is Cinder's backup_ceph_pool.
	DefaultBackupPool = "backups"
	// DefaultNativeWorkers is how many extents are copied at once.
	DefaultNativeWorkers = 4
)

// NativeConfig configures the Ceph-native mode. The zero value is Cinder's
// defaults.
type NativeConfig struct {
	// Pool is the pool that holds the backup images. Default
	// DefaultBackupPool ("backups", Cinder's backup_ceph_pool).
	Pool string
	// StripeUnit (bytes) and StripeCount set the striping of new backup
	// images (Cinder's backup_ceph_stripe_unit and _count). 0 keeps
	// librbd's default (one object of 4 MiB per stripe). StripeUnit must
	// be a power of two that divides the object size (4 MiB).
	StripeUnit, StripeCount uint64
	// ImageJournals gives new backup images the journaling and
	// exclusive-lock features, so that RBD mirroring can replicate them
	// (Cinder's backup_ceph_image_journals). Default false.
	ImageJournals bool
	// MaxSnapshots is how many backup snapshots to keep on the source
	// image, the newest; older ones are removed after each backup. 0 keeps
	// all (Cinder's backup_ceph_max_snapshots). The backup images keep one
	// snapshot per backup regardless: removing a source snapshot never
	// breaks a restore, only makes an incremental on that old backup
	// impossible (it becomes a full one with FallbackToFull).
	MaxSnapshots int
	// Workers is how many extents are copied at once (each holds a 4 MiB
	// buffer). Default DefaultNativeWorkers.
	Workers int
}

// Validate checks the configuration.
func (c NativeConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: rbd native config: %s", target.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.ContainsAny(c.Pool, "/@\x00"):
		return bad("Pool %q must not contain '/' or '@'", c.Pool)
	case c.StripeUnit != 0 && (bits.OnesCount64(c.StripeUnit) != 1 || c.StripeUnit < 4096 || c.StripeUnit > 4<<20):
		return bad("StripeUnit %d must be 0 (librbd's default) or a power of two from 4096 to 4194304 bytes that divides the object size", c.StripeUnit)
	case c.StripeCount > 1<<16:
		return bad("StripeCount %d is too large: use 0 (librbd's default) or a count of objects such as 4 or 16", c.StripeCount)
	case c.MaxSnapshots < 0:
		return bad("MaxSnapshots %d must not be negative (0 keeps every snapshot)", c.MaxSnapshots)
	case c.Workers < 0:
		return bad("Workers %d must not be negative (0 means %d)", c.Workers, DefaultNativeWorkers)
	}
	return nil
}

// Native backs RBD images up into RBD images of a backup pool, as Cinder's
// CephBackupDriver does. It is safe for concurrent use on different
// volumes.
type Native struct {
	c   *Conn
	cfg NativeConfig
}

// NewNative returns the native mode on connection c.
func NewNative(c *Conn, cfg NativeConfig) (*Native, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: rbd native: the connection is nil", target.ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Pool == "" {
		cfg.Pool = DefaultBackupPool
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultNativeWorkers
	}
	return &Native{c: c, cfg: cfg}, nil
}

// NativeBackupOptions describes one native backup.
type NativeBackupOptions struct {
	// Source is the image to back up (Source.Snapshot must be empty: the
	// backup takes its own snapshot, backup.<ID>.snap.<time>).
	Source ImageRef
	// VolumeID names the volume; its backups form chains. Default
	// Source.Image.
	VolumeID string
	// BackupID names the backup. Default: a new UUID.
	BackupID string
	// ParentID makes an incremental on that backup; Incremental (with
	// ParentID empty) on the volume's latest backup.
	ParentID    string
	Incremental bool
	// FallbackToFull makes a full backup when an incremental is not
	// possible (no backup yet, or the parent's snapshot is no longer on the
	// source); without it that is an error wrapping
	// backup.ErrParentUnusable.
	FallbackToFull bool
}

// NativeBackup is one backup of the native mode: a snapshot of a backup
// image.
type NativeBackup struct {
	// ID and VolumeID identify the backup.
	ID, VolumeID string
	// Image is the backup image at the backup's snapshot.
	Image ImageRef
	// Size is the source's size in bytes.
	Size int64
	// CreatedAt is when the backup's snapshot was taken.
	CreatedAt time.Time

	snapID uint64
}

// NativeResult describes a native backup that completed.
type NativeResult struct {
	Backup NativeBackup
	// Full is true for a full backup; FallbackReason says why a requested
	// incremental became one.
	Full           bool
	FallbackReason string
	// SourceSnapshot is the source's snapshot backed up; ParentSnapshot
	// the one the diff started from (empty for a full backup).
	SourceSnapshot, ParentSnapshot string
	// ChangedExtents and ChangedBytes describe what librbd's diff listed
	// (all allocated extents for a full backup).
	ChangedExtents int
	ChangedBytes   int64
	// BytesRead counts bytes read from the source; BytesWritten and
	// BytesDiscarded the backup image's writes and discards.
	BytesRead, BytesWritten, BytesDiscarded int64
	// PrunedSnapshots are the source snapshots removed (MaxSnapshots).
	PrunedSnapshots []string
	Duration        time.Duration
}

// baseImagePattern matches backup images: volume-<volume>.backup.<full ID>.
var baseImagePattern = regexp.MustCompile(`^volume-(.+)\.backup\.([A-Za-z0-9_-]+)$`)

// baseImageName is Cinder's name for the backup image of a chain.
func baseImageName(volumeID, fullID string) string {
	return "volume-" + volumeID + ".backup." + fullID
}

// Backup makes a full or incremental native backup.
func (n *Native) Backup(ctx context.Context, o NativeBackupOptions) (*NativeResult, error) {
	start := time.Now()
	if err := o.Source.validate("source"); err != nil {
		return nil, err
	}
	if o.Source.Snapshot != "" {
		return nil, fmt.Errorf("%w: rbd native backup of %s: name the image without @%s: the backup takes its own snapshot", backup.ErrInvalidOptions, o.Source, o.Source.Snapshot)
	}
	if o.VolumeID == "" {
		o.VolumeID = o.Source.Image
	}
	if strings.ContainsAny(o.VolumeID, "/@\x00") {
		return nil, fmt.Errorf("%w: rbd native backup: volume ID %q must not contain '/' or '@' (it is part of the backup image's name)", backup.ErrInvalidOptions, o.VolumeID)
	}
	if o.BackupID == "" {
		o.BackupID = newUUID()
	}
	if err := checkBackupID(o.BackupID); err != nil {
		return nil, err
	}
	if o.ParentID != "" && o.Incremental {
		return nil, fmt.Errorf("%w: rbd native backup: set ParentID or Incremental, not both", backup.ErrInvalidOptions)
	}
	if _, err := n.find(ctx, o.BackupID, ""); err == nil {
		return nil, fmt.Errorf("%w: backup %s is already in pool %s: choose another backup ID", backup.ErrExists, o.BackupID, n.cfg.Pool)
	} else if !errors.Is(err, backup.ErrNotFound) {
		return nil, err
	}

	res := &NativeResult{Full: true}
	var parent *NativeBackup
	if o.ParentID != "" || o.Incremental {
		p, err := n.parentFor(ctx, o)
		if err != nil {
			if !o.FallbackToFull || !errors.Is(err, backup.ErrParentUnusable) {
				return nil, err
			}
			res.FallbackReason = err.Error()
		} else {
			parent, res.Full = p, false
		}
	}

	snap := o.Source
	snap.Snapshot = SnapshotName(o.BackupID, time.Now())
	if err := n.c.CreateSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	src, err := n.c.OpenSource(ctx, snap)
	if err == nil {
		if parent == nil {
			err = n.full(ctx, o, src, res)
		} else {
			err = n.incremental(ctx, parent, src, res)
		}
		res.BytesRead = src.BytesRead()
		src.Close()
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = n.c.RemoveSnapshot(cctx, snap)
		return nil, err
	}
	res.SourceSnapshot = snap.Snapshot
	base := baseImageName(o.VolumeID, o.BackupID)
	if parent != nil {
		base = parent.Image.Image
		res.ParentSnapshot = parent.Image.Snapshot
	}
	res.Backup = NativeBackup{
		ID: o.BackupID, VolumeID: o.VolumeID, Size: src.Size(),
		Image: ImageRef{Pool: n.cfg.Pool, Image: base, Snapshot: snap.Snapshot},
	}
	if b, ok := parseSnapshot(librbd.SnapInfo{Name: snap.Snapshot}); ok {
		res.Backup.CreatedAt = b.CreatedAt
	}
	pruned, perr := n.c.pruneSnapshots(ctx, o.Source, n.cfg.MaxSnapshots)
	res.PrunedSnapshots = pruned
	res.Duration = time.Since(start)
	if perr != nil {
		return res, fmt.Errorf("backup %s is complete, but pruning old source snapshots failed: %w", o.BackupID, perr)
	}
	return res, nil
}

// parentFor finds the parent of an incremental and checks that the source
// still has its snapshot. Every reason it cannot be used wraps
// backup.ErrParentUnusable.
func (n *Native) parentFor(ctx context.Context, o NativeBackupOptions) (*NativeBackup, error) {
	var parent *NativeBackup
	if o.ParentID != "" {
		p, err := n.find(ctx, o.ParentID, o.VolumeID)
		if errors.Is(err, backup.ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", backup.ErrParentUnusable, err)
		}
		if err != nil {
			return nil, err
		}
		parent = p
	} else {
		all, err := n.List(ctx, o.VolumeID)
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("%w: volume %s has no native backup in pool %s to base an incremental on: do a full backup first", backup.ErrParentUnusable, o.VolumeID, n.cfg.Pool)
		}
		parent = &all[len(all)-1]
	}
	if parent.VolumeID != o.VolumeID {
		return nil, fmt.Errorf("%w: parent %s is a backup of volume %s, not %s", backup.ErrParentUnusable, parent.ID, parent.VolumeID, o.VolumeID)
	}
	img, err := n.c.openImage(ctx, ImageRef{Pool: o.Source.Pool, Image: o.Source.Image}, true)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	ok, err := hasSnapshot(img, parent.Image.Snapshot)
	if err != nil {
		return nil, n.c.imageError("listing the snapshots of", o.Source, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %w: the snapshot %s of parent backup %s is no longer on %s (deleted, or pruned by MaxSnapshots): make a full backup, or allow one (FallbackToFull)", backup.ErrParentUnusable, ErrSnapshotMissing, parent.Image.Snapshot, parent.ID, o.Source)
	}
	return parent, nil
}

// features returns the features of a new backup image: Cinder's choice.
func (n *Native) features() uint64 {
	f := librbd.FeatureLayering | librbd.FeatureExclusiveLock | librbd.FeatureObjectMap | librbd.FeatureFastDiff
	if n.cfg.StripeUnit != 0 || n.cfg.StripeCount != 0 {
		f |= librbd.FeatureStripingV2
	}
	if n.cfg.ImageJournals {
		f |= librbd.FeatureJournaling
	}
	return f
}

// full copies the source's allocated extents into a new backup image and
// snapshots it; on failure the image is removed.
func (n *Native) full(ctx context.Context, o NativeBackupOptions, src *Source, res *NativeResult) (err error) {
	ioc, err := n.c.ioctx(n.cfg.Pool)
	if err != nil {
		return err
	}
	ref := ImageRef{Pool: n.cfg.Pool, Image: baseImageName(o.VolumeID, o.BackupID)}
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	set := []struct {
		opt librbd.ImageOption
		v   uint64
	}{{librbd.ImageOptionFeatures, n.features()}}
	if n.cfg.StripeUnit != 0 {
		set = append(set, struct {
			opt librbd.ImageOption
			v   uint64
		}{librbd.ImageOptionStripeUnit, n.cfg.StripeUnit})
	}
	if n.cfg.StripeCount != 0 {
		set = append(set, struct {
			opt librbd.ImageOption
			v   uint64
		}{librbd.ImageOptionStripeCount, n.cfg.StripeCount})
	}
	for _, s := range set {
		if err := opts.SetUint64(s.opt, s.v); err != nil {
			return fmt.Errorf("rbd: image options: %w", err)
		}
	}
	if err := librbd.CreateImage(ioc, ref.Image, uint64(src.Size()), opts); err != nil {
		if errno(err) == syscall.EINVAL {
			return fmt.Errorf("%w: rbd: creating backup image %s: librbd refused the striping (StripeUnit %d, StripeCount %d): the stripe unit must divide the object size: %v", target.ErrInvalidArgument, ref, n.cfg.StripeUnit, n.cfg.StripeCount, err)
		}
		return n.c.imageError("creating backup image", ref, err)
	}
	defer func() {
		if err != nil {
			n.removeImage(ctx, ref)
		}
	}()
	img, err := librbd.OpenImage(ioc, ref.Image, librbd.NoSnapshot)
	if err != nil {
		return n.c.imageError("opening backup image", ref, err)
	}
	defer img.Close()
	extents, err := diffExtents(ctx, src.img, "", src.Size())
	if err != nil {
		return fmt.Errorf("rbd: listing the extents of %s: %w", src.ref, err)
	}
	countExtents(extents, res)
	dst := &Destination{ref: ref, img: img, size: src.Size(), zeroed: true}
	var st copyStats
	err = copyExtents(ctx, src, dst, extents, true, n.cfg.Workers, &st)
	res.BytesWritten, res.BytesDiscarded = st.written.Load(), st.discarded.Load()
	if err != nil {
		return fmt.Errorf("rbd: copying %s into %s: %w", src.ref, ref, err)
	}
	return n.seal(img, ref, src.ref.Snapshot)
}

// incremental applies the source's diff since the parent's snapshot to the
// parent's backup image and snapshots it.
func (n *Native) incremental(ctx context.Context, parent *NativeBackup, src *Source, res *NativeResult) error {
	base := ImageRef{Pool: n.cfg.Pool, Image: parent.Image.Image}
	img, err := n.c.openImage(ctx, base, false)
	if err != nil {
		return err
	}
	defer img.Close()
	dst := &Destination{ref: base, img: img}
	if err := n.revert(ctx, dst, parent); err != nil {
		return err
	}
	if src.Size() != parent.Size {
		if err := img.Resize(uint64(src.Size())); err != nil {
			return n.c.imageError("resizing backup image", base, err)
		}
	}
	dst.size = src.Size()
	diff, err := diffExtents(ctx, src.img, parent.Image.Snapshot, src.Size())
	if err != nil {
		return fmt.Errorf("rbd: diff of %s since %s: %w", src.ref, parent.Image.Snapshot, err)
	}
	countExtents(diff, res)
	var st copyStats
	err = copyExtents(ctx, src, dst, diff, false, n.cfg.Workers, &st)
	res.BytesWritten, res.BytesDiscarded = st.written.Load(), st.discarded.Load()
	if err != nil {
		return fmt.Errorf("rbd: copying the changes of %s into %s: %w", src.ref, base, err)
	}
	return n.seal(img, base, src.ref.Snapshot)
}

// revert makes the backup image's head equal to the parent's snapshot
// again: a later backup of the chain, or a failed one, may have changed
// it. Only the extents that differ are copied back.
func (n *Native) revert(ctx context.Context, head *Destination, parent *NativeBackup) error {
	size, err := head.img.GetSize()
	if err != nil {
		return n.c.imageError("measuring", head.ref, err)
	}
	if int64(size) != parent.Size {
		if err := head.img.Resize(uint64(parent.Size)); err != nil {
			return n.c.imageError("resizing backup image", head.ref, err)
		}
	}
	head.size = parent.Size
	dirty, err := diffExtents(ctx, head.img, parent.Image.Snapshot, parent.Size)
	if err != nil {
		return fmt.Errorf("rbd: diff of %s since %s: %w", head.ref, parent.Image.Snapshot, err)
	}
	if len(dirty) == 0 {
		return nil
	}
	for i := range dirty {
		dirty[i].Data = true // read what the snapshot holds, zeros included
	}
	snap, err := n.c.OpenSource(ctx, parent.Image)
	if err != nil {
		return err
	}
	defer snap.Close()
	var st copyStats
	if err := copyExtents(ctx, snap, head, dirty, false, n.cfg.Workers, &st); err != nil {
		return fmt.Errorf("rbd: restoring %s to its snapshot %s: %w", head.ref, parent.Image.Snapshot, err)
	}
	return nil
}

// seal flushes the backup image and takes the backup's snapshot of it.
func (n *Native) seal(img *librbd.Image, ref ImageRef, snap string) error {
	if err := img.Flush(); err != nil {
		return n.c.imageError("flushing", ref, err)
	}
	if _, err := img.CreateSnapshot(snap); err != nil {
		ref.Snapshot = snap
		return n.c.imageError("creating snapshot", ref, err)
	}
	return nil
}

func countExtents(extents []diffExtent, res *NativeResult) {
	res.ChangedExtents = len(extents)
	for _, x := range extents {
		res.ChangedBytes += x.Length
	}
}

// removeImage removes a backup image with its snapshots (best effort).
func (n *Native) removeImage(ctx context.Context, ref ImageRef) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	ioc, err := n.c.ioctx(ref.Pool)
	if err != nil {
		return
	}
	if img, err := n.c.openImage(ctx, ref, false); err == nil {
		snaps, _ := img.GetSnapshotNames()
		for _, s := range snaps {
			_ = img.GetSnapshot(s.Name).Remove()
		}
		img.Close()
	}
	_ = librbd.RemoveImage(ioc, ref.Image)
}

// List returns the native backups in the backup pool, oldest first; with a
// volume ID, only that volume's.
func (n *Native) List(ctx context.Context, volumeID string) ([]NativeBackup, error) {
	ioc, err := n.c.ioctx(n.cfg.Pool)
	if err != nil {
		return nil, err
	}
	names, err := librbd.GetImageNames(ioc)
	if err != nil {
		return nil, fmt.Errorf("rbd: listing the images of pool %s: %w", n.cfg.Pool, err)
	}
	var out []NativeBackup
	for _, name := range names {
		m := baseImagePattern.FindStringSubmatch(name)
		if m == nil || (volumeID != "" && m[1] != volumeID) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ref := ImageRef{Pool: n.cfg.Pool, Image: name}
		img, err := librbd.OpenImageReadOnly(ioc, name, librbd.NoSnapshot)
		if errors.Is(err, librbd.ErrNotFound) {
			continue // removed while we listed
		}
		if err != nil {
			return nil, n.c.imageError("opening", ref, err)
		}
		snaps, err := backupSnapshots(img)
		img.Close()
		if err != nil {
			return nil, n.c.imageError("listing the snapshots of", ref, err)
		}
		for _, s := range snaps {
			ref.Snapshot = s.Name
			out = append(out, NativeBackup{ID: s.BackupID, VolumeID: m[1], Image: ref, Size: s.Size, CreatedAt: s.CreatedAt, snapID: s.ID})
		}
	}
	slices.SortStableFunc(out, func(a, b NativeBackup) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmpUint(a.snapID, b.snapID)
	})
	return out, nil
}

// find returns the native backup backupID, or an error wrapping
// backup.ErrNotFound.
func (n *Native) find(ctx context.Context, backupID, volumeID string) (*NativeBackup, error) {
	all, err := n.List(ctx, volumeID)
	if err != nil {
		return nil, err
	}
	var found []NativeBackup
	for _, b := range all {
		if b.ID == backupID {
			found = append(found, b)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no native backup with ID %s in pool %s", backup.ErrNotFound, backupID, n.cfg.Pool)
	case 1:
		return &found[0], nil
	}
	return nil, fmt.Errorf("%w: backup ID %s has %d snapshots (%s and %s): remove the duplicate", backup.ErrCorrupt, backupID, len(found), found[0].Image, found[1].Image)
}

// NativeRestoreResult describes a native restore that completed.
type NativeRestoreResult struct {
	Backup NativeBackup
	// Created is true when the restore created the destination image.
	Created bool
	// BytesRead counts bytes read from the backup image; BytesWritten and
	// BytesDiscarded the destination's writes and discards (the excess
	// bytes' discard included).
	BytesRead, BytesWritten, BytesDiscarded int64
	Duration                                time.Duration
}

// Restore writes the native backup backupID into an image (o.Size is
// ignored: it is the backup's). Only the backup image's allocated extents
// are read; the rest of an existing destination is discarded.
func (n *Native) Restore(ctx context.Context, backupID string, o DestinationOptions) (*NativeRestoreResult, error) {
	start := time.Now()
	b, err := n.find(ctx, backupID, "")
	if err != nil {
		return nil, err
	}
	src, err := n.c.OpenSource(ctx, b.Image)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	o.Size = src.Size()
	dst, err := n.c.OpenDestination(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &NativeRestoreResult{Backup: *b, Created: dst.Zeroed()}
	err = n.restoreInto(ctx, src, dst)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", backup.ErrDestination, cerr)
	}
	if err != nil {
		return nil, err
	}
	res.BytesRead, res.BytesWritten, res.BytesDiscarded = src.BytesRead(), dst.BytesWritten(), dst.BytesDiscarded()
	res.Duration = time.Since(start)
	return res, nil
}

func (n *Native) restoreInto(ctx context.Context, src *Source, dst *Destination) error {
	extents, err := diffExtents(ctx, src.img, "", src.Size())
	if err != nil {
		return fmt.Errorf("rbd: listing the extents of %s: %w", src.ref, err)
	}
	var data []diffExtent
	for _, x := range extents {
		if x.Data {
			data = append(data, x)
		}
	}
	if !dst.Zeroed() {
		data = append(data, gaps(data, src.Size())...) // discarded
	}
	var st copyStats
	if err := copyExtents(ctx, src, dst, data, dst.Zeroed(), n.cfg.Workers, &st); err != nil {
		return fmt.Errorf("rbd: restoring %s into %s: %w", src.ref, dst.ref, err)
	}
	return nil
}

// Delete removes the native backup backupID: its snapshot of the backup
// image, and the image with its last snapshot. The other backups of the
// chain stay restorable (each snapshot is whole).
func (n *Native) Delete(ctx context.Context, backupID string) error {
	b, err := n.find(ctx, backupID, "")
	if err != nil {
		return err
	}
	base := ImageRef{Pool: b.Image.Pool, Image: b.Image.Image}
	img, err := n.c.openImage(ctx, base, false)
	if err != nil {
		return err
	}
	if err := img.GetSnapshot(b.Image.Snapshot).Remove(); err != nil && errno(err) != syscall.ENOENT {
		img.Close()
		return n.c.imageError("removing snapshot", b.Image, err)
	}
	left, err := img.GetSnapshotNames()
	img.Close()
	if err != nil && errno(err) != syscall.ENOENT {
		return n.c.imageError("listing the snapshots of", base, err)
	}
	if len(left) > 0 {
		return nil
	}
	ioc, err := n.c.ioctx(base.Pool)
	if err != nil {
		return err
	}
	if err := librbd.RemoveImage(ioc, base.Image); err != nil && !errors.Is(err, librbd.ErrNotFound) {
		return n.c.imageError("removing backup image", base, err)
	}
	return nil
}
