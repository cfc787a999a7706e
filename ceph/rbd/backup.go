//go:build ceph

package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chunkback/chunkback/backup"
)

// BackupOptions describes the backup of an RBD image into the chunked
// engine.
type BackupOptions struct {
	// Image is the image to back up. With Image.Snapshot empty, the backup
	// takes a new snapshot, backup.<backup ID>.snap.<time> (Cinder's name),
	// and keeps it for the next incremental to diff from. With
	// Image.Snapshot set, it backs up that existing snapshot and records
	// its name in the backup's volume_meta for the next incremental.
	Image ImageRef
	// Backup is passed to backup.Engine.Backup. Its VolumeID defaults to
	// Image.Image and its BackupID to a new UUID. For an incremental
	// (ParentID, or Incremental for the volume's latest backup), only the
	// extents librbd reports changed since the parent's snapshot are read
	// (Backup.Changed is set here). If the parent's snapshot is no longer
	// on the image, Backup.FallbackToFull makes a full backup (the result's
	// FallbackReason says why); without it the backup fails with an error
	// wrapping backup.ErrParentUnusable and ErrSnapshotMissing.
	Backup backup.BackupOptions
	// MaxSnapshots is how many backup snapshots (backup.*.snap.*) to keep
	// on the image after a successful backup, the newest; older ones are
	// removed. 0 keeps all (Cinder's backup_ceph_max_snapshots). An
	// incremental on a backup whose snapshot was pruned is a full backup
	// (with FallbackToFull) or an error.
	MaxSnapshots int
}

// ErrSnapshotMissing is wrapped when the snapshot an incremental must diff
// from is no longer on the image.
var ErrSnapshotMissing = errors.New("the parent backup's snapshot is no longer on the image")

// volumeMetaKey is where a backup of a named snapshot records it in
// volume_meta (Cinder ignores keys it does not know).
const volumeMetaKey = "chunkback_rbd"

// snapshotRecord is what volume_meta[volumeMetaKey] holds.
type snapshotRecord struct {
	Pool     string `json:"pool"`
	Image    string `json:"image"`
	Snapshot string `json:"snapshot"`
}

// BackupResult describes an RBD backup that completed.
type BackupResult struct {
	*backup.Result
	// Snapshot is the snapshot backed up; ParentSnapshot the one the diff
	// started from (empty for a full backup).
	Snapshot, ParentSnapshot string
	// ChangedExtents and ChangedBytes describe librbd's diff (zero for a
	// full backup).
	ChangedExtents int
	ChangedBytes   int64
	// ImageBytesRead counts the bytes read from the image.
	ImageBytesRead int64
	// PrunedSnapshots are the old backup snapshots removed (MaxSnapshots).
	PrunedSnapshots []string
}

// PreparedBackup is an RBD backup ready for backup.Engine.Backup: a
// snapshot taken, the source opened at it, and the options (with the
// changed extents) settled. Finish must follow, whatever happened.
type PreparedBackup struct {
	// Source is the snapshot to read: pass it as the engine's source, with
	// Options.
	Source *Source
	// Options are the engine options to use.
	Options backup.BackupOptions

	conn           *Conn
	o              BackupOptions
	snap           ImageRef // the snapshot backed up
	created        bool     // the snapshot is ours: remove it if the backup fails
	parentSnap     string
	fallbackReason string
	changed        []backup.Extent
}

// Backup backs the image up into e: PrepareBackup, e.Backup, Finish.
func Backup(ctx context.Context, e *backup.Engine, c *Conn, o BackupOptions) (*BackupResult, error) {
	p, err := PrepareBackup(ctx, e, c, o)
	if err != nil {
		return nil, err
	}
	res, err := e.Backup(ctx, p.Source, p.Options)
	return p.Finish(ctx, res, err)
}

// PrepareBackup takes the snapshot (unless o.Image names one), finds the
// parent backup's snapshot and asks librbd what changed since. Use it (with
// Finish) instead of Backup to call e.Backup yourself.
func PrepareBackup(ctx context.Context, e *backup.Engine, c *Conn, o BackupOptions) (*PreparedBackup, error) {
	if e == nil || c == nil {
		return nil, fmt.Errorf("%w: rbd backup: the engine and the connection must not be nil", backup.ErrInvalidOptions)
	}
	if err := o.Image.validate("source"); err != nil {
		return nil, err
	}
	if o.MaxSnapshots < 0 {
		return nil, fmt.Errorf("%w: rbd backup: MaxSnapshots %d must not be negative (0 keeps every snapshot)", backup.ErrInvalidOptions, o.MaxSnapshots)
	}
	if o.Backup.Changed != nil {
		return nil, fmt.Errorf("%w: rbd backup: leave Backup.Changed empty: librbd's diff sets it", backup.ErrInvalidOptions)
	}
	bo := o.Backup
	if bo.VolumeID == "" {
		bo.VolumeID = o.Image.Image
	}
	if bo.BackupID == "" {
		bo.BackupID = newUUID()
	}
	if err := checkBackupID(bo.BackupID); err != nil {
		return nil, err
	}
	p := &PreparedBackup{conn: c, o: o}

	// The parent, and the snapshot it was taken from.
	parent, err := resolveParent(ctx, e, &bo)
	if err != nil {
		return nil, err
	}
	image := ImageRef{Pool: o.Image.Pool, Image: o.Image.Image}
	if parent != nil {
		snap, err := c.parentSnapshot(ctx, image, parent)
		if err != nil {
			return nil, err
		}
		if snap == "" {
			missing := fmt.Errorf("%w: %w: parent backup %s was taken from a snapshot of %s that is gone (deleted, or pruned by MaxSnapshots)", backup.ErrParentUnusable, ErrSnapshotMissing, parent.ID, image)
			if !bo.FallbackToFull {
				return nil, fmt.Errorf("%w: make a full backup, or allow one (FallbackToFull, --fallback-full)", missing)
			}
			p.fallbackReason = missing.Error()
			bo.ParentID, bo.Incremental = "", false
		}
		p.parentSnap = snap
	}

	// The snapshot to back up.
	snapRef := o.Image
	if snapRef.Snapshot == "" {
		snapRef.Snapshot = SnapshotName(bo.BackupID, time.Now())
		if err := c.CreateSnapshot(ctx, snapRef); err != nil {
			return nil, err
		}
		p.created = true
	} else {
		meta, err := recordSnapshot(bo.VolumeMeta, snapshotRecord(snapRef))
		if err != nil {
			return nil, err
		}
		bo.VolumeMeta = meta
	}
	p.snap = snapRef
	src, err := c.OpenSource(ctx, snapRef)
	if err != nil {
		p.dropSnapshot(ctx)
		return nil, err
	}
	p.Source = src
	bo.Size = src.Size()
	if p.parentSnap != "" {
		changed, err := src.Changed(ctx, p.parentSnap)
		if err != nil {
			src.Close()
			p.dropSnapshot(ctx)
			return nil, err
		}
		p.changed = changed
		bo.Changed = changed
		if bo.Changed == nil {
			bo.Changed = []backup.Extent{} // nothing changed: still a diff
		}
	}
	p.Options = bo
	return p, nil
}

// Finish completes a prepared backup with the engine's result: on success
// it prunes old snapshots (MaxSnapshots); on failure it removes the
// snapshot it took. It closes the source.
func (p *PreparedBackup) Finish(ctx context.Context, res *backup.Result, err error) (*BackupResult, error) {
	read := p.Source.BytesRead()
	p.Source.Close()
	if err != nil {
		p.dropSnapshot(ctx)
		return nil, err
	}
	out := &BackupResult{Result: res, Snapshot: p.snap.Snapshot, ImageBytesRead: read}
	if !res.Full {
		out.ParentSnapshot = p.parentSnap
		out.ChangedExtents = len(p.changed)
		for _, x := range p.changed {
			out.ChangedBytes += x.Length
		}
	}
	if out.FallbackReason == "" {
		out.FallbackReason = p.fallbackReason
	}
	pruned, perr := p.conn.pruneSnapshots(ctx, p.o.Image, p.o.MaxSnapshots)
	out.PrunedSnapshots = pruned
	if perr != nil {
		return out, fmt.Errorf("backup %s is complete, but pruning old snapshots failed: %w", res.Info.ID, perr)
	}
	return out, nil
}

// dropSnapshot removes the snapshot PrepareBackup took, if any (best
// effort, even when ctx has ended).
func (p *PreparedBackup) dropSnapshot(ctx context.Context) {
	if !p.created {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = p.conn.RemoveSnapshot(ctx, p.snap)
}

// resolveParent finds the parent backup an incremental asks for, and pins
// it in bo.ParentID. It returns nil when there is none to find (a full
// backup, or a parent the engine will report as unusable itself).
func resolveParent(ctx context.Context, e *backup.Engine, bo *backup.BackupOptions) (*backup.Info, error) {
	switch {
	case bo.ParentID != "":
		info, err := e.Find(ctx, bo.ParentID, bo.VolumeID)
		if errors.Is(err, backup.ErrNotFound) || errors.Is(err, backup.ErrCorrupt) {
			return nil, nil // the engine says why (or falls back to full)
		}
		return info, err
	case bo.Incremental:
		all, err := e.List(ctx, bo.VolumeID)
		if err != nil || len(all) == 0 {
			return nil, err
		}
		latest := all[len(all)-1]
		bo.ParentID, bo.Incremental = latest.ID, false
		return latest, nil
	}
	return nil, nil
}

// parentSnapshot returns the snapshot of image that parent was taken from,
// or "" when it is not there any more: a snapshot named after the parent
// (backup.<ID>.snap.*), or the named snapshot its volume_meta records.
func (c *Conn) parentSnapshot(ctx context.Context, image ImageRef, parent *backup.Info) (string, error) {
	img, err := c.openImage(ctx, image, true)
	if err != nil {
		return "", err
	}
	defer img.Close()
	snaps, err := backupSnapshots(img)
	if err != nil {
		return "", c.imageError("listing the snapshots of", image, err)
	}
	if s, ok := snapshotOf(snaps, parent.ID); ok {
		return s.Name, nil
	}
	if parent.Metadata != nil {
		if rec, ok := readSnapshotRecord(parent.Metadata.VolumeMeta); ok && rec.Pool == image.Pool && rec.Image == image.Image {
			ok, err := hasSnapshot(img, rec.Snapshot)
			if err != nil {
				return "", c.imageError("listing the snapshots of", image, err)
			}
			if ok {
				return rec.Snapshot, nil
			}
		}
	}
	return "", nil
}

// recordSnapshot adds rec to a volume_meta document (a JSON object; a new
// one, of Cinder's version 2, when meta is nil).
func recordSnapshot(meta *string, rec snapshotRecord) (*string, error) {
	doc := map[string]any{"version": 2}
	if meta != nil {
		doc = nil
		if err := json.Unmarshal([]byte(*meta), &doc); err != nil || doc == nil {
			return nil, fmt.Errorf("%w: rbd backup: volume_meta is not a JSON object, so the snapshot %s cannot be recorded in it: pass a JSON object or none", backup.ErrInvalidOptions, rec.Snapshot)
		}
	}
	doc[volumeMetaKey] = rec
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// readSnapshotRecord reads what recordSnapshot wrote.
func readSnapshotRecord(meta *string) (snapshotRecord, bool) {
	var doc map[string]json.RawMessage
	if meta == nil || json.Unmarshal([]byte(*meta), &doc) != nil {
		return snapshotRecord{}, false
	}
	var rec snapshotRecord
	if raw, ok := doc[volumeMetaKey]; !ok || json.Unmarshal(raw, &rec) != nil || rec.Snapshot == "" {
		return snapshotRecord{}, false
	}
	return rec, true
}
