package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
)

// Info describes one complete backup found on the target.
type Info struct {
	// ID, VolumeID and ParentID ("" for a full backup) identify the backup.
	ID, VolumeID, ParentID string
	// Name and Description are the backup's display name and description.
	Name, Description string
	// CreatedAt is when the backup was made.
	CreatedAt time.Time
	// Size is the source's length in bytes: exact for chunkback's backups;
	// for Cinder's, the end of the furthest object.
	Size int64
	// Objects is the number of data objects, and DataBytes their
	// uncompressed length in total.
	Objects   int
	DataBytes int64
	// Writer is "chunkback" or "cinder" (a backup without chunkback's facts).
	Writer string
	// Owner is the Config.Owner of the engine that wrote the backup, or ""
	// when none is recorded (Cinder's backups): see lock_owner.go.
	Owner string
	// Metadata is the backup's _metadata as stored.
	Metadata *Metadata

	loc   location
	facts Facts
	ours  bool
	key   *crypt.Key // an encrypted backup's subkey, once unlocked
}

// Incremental reports whether the backup has a parent.
func (i *Info) Incremental() bool { return i.ParentID != "" }

// Find returns the backup with the given ID, or an error wrapping ErrNotFound.
// volumeID, when known, narrows the search on object stores.
func (e *Engine) Find(ctx context.Context, backupID, volumeID string) (*Info, error) {
	if backupID == "" {
		return nil, fmt.Errorf("%w: backup ID is empty", ErrInvalidOptions)
	}
	if e.naming.layout == target.LayoutPosix && e.naming.container == "" && len(backupID) < 4 {
		return nil, fmt.Errorf("%w: backup %q", ErrNotFound, backupID)
	}
	var found []location
	err := e.t.List(ctx, e.naming.searchPrefix(backupID, volumeID), func(o target.Info) error {
		if loc, id, ok := e.naming.locate(o.Name); ok && id == backupID {
			found = append(found, loc)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking for backup %s: %w", backupID, err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no backup with ID %s on the target (list backups to see the IDs there)", ErrNotFound, backupID)
	case 1:
		return e.load(ctx, found[0], backupID)
	}
	return nil, fmt.Errorf("%w: backup ID %s appears %d times (%s and %s): remove the duplicate", ErrCorrupt, backupID, len(found), found[0].metadataName(), found[1].metadataName())
}

// findRelated finds a backup that should belong to volumeID: first among that
// volume's names, then anywhere, so that a backup of another volume is
// reported as such rather than as missing.
func (e *Engine) findRelated(ctx context.Context, backupID, volumeID string) (*Info, error) {
	info, err := e.Find(ctx, backupID, volumeID)
	if errors.Is(err, ErrNotFound) && e.naming.searchPrefix(backupID, volumeID) != e.naming.searchPrefix(backupID, "") {
		return e.Find(ctx, backupID, "")
	}
	return info, err
}

// List returns the complete backups on the target, oldest first; with a
// volume ID, only that volume's. Objects of unfinished backups (no _metadata)
// are not listed.
func (e *Engine) List(ctx context.Context, volumeID string) ([]*Info, error) {
	var locs []location
	var ids []string
	err := e.t.List(ctx, e.naming.searchPrefix("", volumeID), func(o target.Info) error {
		if loc, id, ok := e.naming.locate(o.Name); ok {
			locs = append(locs, loc)
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing backups: %w", err)
	}
	var out []*Info
	for i, loc := range locs {
		info, err := e.load(ctx, loc, ids[i])
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // deleted while we listed
			}
			return nil, err
		}
		if volumeID == "" || info.VolumeID == volumeID {
			out = append(out, info)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Chain returns the backups a restore of backupID applies, oldest (the full)
// first, followed through each backup's parent_id.
func (e *Engine) Chain(ctx context.Context, backupID string) ([]*Info, error) {
	top, err := e.Find(ctx, backupID, "")
	if err != nil {
		return nil, err
	}
	chain := []*Info{top}
	seen := map[string]bool{top.ID: true}
	for cur := top; cur.ParentID != ""; {
		parent, err := e.findRelated(ctx, cur.ParentID, cur.VolumeID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: backup %s needs its parent %s, which is not on the target", ErrCorrupt, cur.ID, cur.ParentID)
			}
			return nil, err
		}
		if seen[parent.ID] {
			return nil, fmt.Errorf("%w: the parents of backup %s form a loop at %s", ErrCorrupt, backupID, parent.ID)
		}
		if parent.VolumeID != top.VolumeID {
			return nil, fmt.Errorf("%w: backup %s (volume %s) has parent %s of another volume (%s)", ErrCorrupt, cur.ID, cur.VolumeID, parent.ID, parent.VolumeID)
		}
		seen[parent.ID] = true
		chain = append(chain, parent)
		cur = parent
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// load reads and checks one backup's _metadata.
func (e *Engine) load(ctx context.Context, loc location, backupID string) (*Info, error) {
	name := loc.metadataName()
	data, err := e.getAll(ctx, name)
	if err != nil {
		if errors.Is(err, target.ErrNotFound) {
			return nil, fmt.Errorf("%w: backup %s: %s is gone", ErrNotFound, backupID, name)
		}
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	m, err := ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w (restore it from a copy, or delete the backup)", ErrCorrupt, name, err)
	}
	if m.BackupID != backupID {
		return nil, fmt.Errorf("%w: %s names backup %s, not %s", ErrCorrupt, name, m.BackupID, backupID)
	}
	info := &Info{ID: m.BackupID, VolumeID: m.VolumeID, Metadata: m, loc: loc, Writer: "cinder", Objects: len(m.Objects)}
	if m.ParentID != nil {
		info.ParentID = *m.ParentID
	}
	if m.BackupName != nil {
		info.Name = *m.BackupName
	}
	if m.BackupDescription != nil {
		info.Description = *m.BackupDescription
	}
	if t, err := time.Parse("2006-01-02 15:04:05-07:00", m.CreatedAt); err == nil {
		info.CreatedAt = t
	}
	for _, o := range m.Objects {
		info.DataBytes += o.Length
		info.Size = max(info.Size, o.End())
	}
	facts, ours, err := m.facts()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	if ours {
		info.facts, info.ours, info.Writer, info.Owner = facts, true, "chunkback", facts.Owner
		info.Size = facts.SourceSize
	}
	return info, nil
}

// manifest reads a backup's _sha256file, opening it in an encrypted backup.
func (e *Engine) manifest(ctx context.Context, info *Info) (*sha.Manifest, error) {
	if err := e.unlock(ctx, info); err != nil {
		return nil, err
	}
	name := info.loc.shaName()
	rc, err := e.t.Get(ctx, name, 0, -1)
	if err != nil {
		if errors.Is(err, target.ErrNotFound) {
			return nil, fmt.Errorf("%w: backup %s has no %s (its SHA-256 manifest); do a full backup", ErrCorrupt, info.ID, name)
		}
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer rc.Close()
	var body io.Reader = rc
	if info.key != nil {
		body = crypt.NewOpenReader(rc, info.key, manifestIdentity(info.VolumeID, info.ID))
	}
	m, err := sha.Parse(body)
	if err == nil && info.key != nil {
		// Authenticate to the end: nothing may follow what was parsed.
		if _, err = io.Copy(io.Discard, body); err != nil && !errors.Is(err, crypt.ErrAuth) {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	if m.BackupID != info.ID {
		return nil, fmt.Errorf("%w: %s names backup %s, not %s", ErrCorrupt, name, m.BackupID, info.ID)
	}
	return m, nil
}

// getAll reads a whole (small) object.
func (e *Engine) getAll(ctx context.Context, name string) ([]byte, error) {
	rc, err := e.t.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// checkObjectList compares the objects stored under a backup's prefix with
// those its metadata names, as Cinder does before a restore: a missing object
// or a stray one with the prefix is an error that names it.
func (e *Engine) checkObjectList(ctx context.Context, info *Info) error {
	missing, stray, err := e.objectList(ctx, info)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: backup %s: %d object(s) missing, first %s", ErrCorrupt, info.ID, len(missing), missing[0])
	}
	if len(stray) > 0 {
		return fmt.Errorf("%w: backup %s: %d stray object(s) carry its prefix, first %s: Cinder refuses to restore such a backup; remove them", ErrCorrupt, info.ID, len(stray), stray[0])
	}
	return nil
}
