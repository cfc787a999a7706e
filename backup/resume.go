package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/chunkback/chunkback/target"
)

// PartialError is the error of a Resumable backup that failed or was
// cancelled after it started: its journal and the objects it stored were
// kept. Resume (with the same BackupID and options) continues it; Delete
// removes it. It wraps the cause of the failure.
type PartialError struct {
	// BackupID and VolumeID identify the partial backup.
	BackupID, VolumeID string
	// Objects is the number of objects its journal records as stored.
	Objects int
	// Err is why the backup stopped.
	Err error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%v (partial backup %s kept with %d objects: resume it, or delete it)", e.Err, e.BackupID, e.Objects)
}

// Unwrap returns the cause of the failure.
func (e *PartialError) Unwrap() error { return e.Err }

// PartialInfo describes an interrupted Resumable backup: a resume journal
// with no _metadata beside it.
type PartialInfo struct {
	// ID, VolumeID and ParentID ("" for a full backup) identify the backup.
	ID, VolumeID, ParentID string
	// Name is the backup's display name.
	Name string
	// StartedAt is when the backup was first started (its created_at once
	// complete); UpdatedAt when its journal was last written.
	StartedAt, UpdatedAt time.Time
	// SourceSize is the source's length in bytes when last started (-1
	// for a stream of unknown size).
	SourceSize int64
	// Objects is the number of objects the journal records as stored,
	// DataBytes their uncompressed and StoredBytes their stored length.
	Objects                int
	DataBytes, StoredBytes int64
	// Journal is the target name of its resume journal.
	Journal string
	// Err, when not nil, says why the journal is unreadable (wrapping
	// ErrCorrupt): the backup cannot be resumed, only deleted.
	Err error
}

// journalRef is a journal found on the target.
type journalRef struct {
	name string
	loc  location
	id   string
}

// journals lists the resume journals under the search prefix of backupID
// and volumeID (either may be empty) that have no _metadata beside them.
func (e *Engine) journals(ctx context.Context, backupID, volumeID string) ([]journalRef, error) {
	var refs []journalRef
	complete := map[string]bool{}
	err := e.t.List(ctx, e.naming.searchPrefix(backupID, volumeID), func(o target.Info) error {
		if loc, id, ok := e.naming.locateJournal(o.Name); ok && (backupID == "" || id == backupID) {
			refs = append(refs, journalRef{name: o.Name, loc: loc, id: id})
		} else if loc, _, ok := e.naming.locate(o.Name); ok {
			complete[loc.journalName()] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking for partial backups: %w", err)
	}
	out := refs[:0]
	for _, r := range refs {
		if !complete[r.name] {
			out = append(out, r)
		}
	}
	return out, nil
}

// readJournal reads and parses a journal; an unreadable one is ErrCorrupt.
func (e *Engine) readJournal(ctx context.Context, ref journalRef) (*journalDoc, error) {
	data, err := e.getAll(ctx, ref.name)
	if err != nil {
		return nil, fmt.Errorf("reading the resume journal %s: %w", ref.name, err)
	}
	d, err := parseJournal(data, ref.id)
	if err != nil {
		return nil, fmt.Errorf("%w: the resume journal %s of partial backup %s is unreadable (%v): it cannot be resumed; delete it and back up again", ErrCorrupt, ref.name, ref.id, err)
	}
	return d, nil
}

// Partials lists the interrupted Resumable backups on the target, oldest
// first; with a volume ID, only that volume's. A partial backup whose
// journal is unreadable is listed with Err set (and, its volume being
// unknown, whatever the volume ID asked for); Delete removes it.
func (e *Engine) Partials(ctx context.Context, volumeID string) ([]*PartialInfo, error) {
	refs, err := e.journals(ctx, "", volumeID)
	if err != nil {
		return nil, err
	}
	var out []*PartialInfo
	for _, r := range refs {
		p := &PartialInfo{ID: r.id, Journal: r.name, SourceSize: -1}
		d, err := e.readJournal(ctx, r)
		switch {
		case errors.Is(err, target.ErrNotFound):
			continue // finished or deleted while we listed
		case errors.Is(err, ErrCorrupt):
			p.Err = err
		case err != nil:
			return nil, err
		default:
			p.VolumeID, p.ParentID, p.Name = d.VolumeID, d.ParentID, d.Name
			p.StartedAt, p.UpdatedAt, p.SourceSize = d.StartedAt, d.UpdatedAt, d.SourceSize
			p.Objects = len(d.Objects)
			for _, o := range d.Objects {
				p.DataBytes += o.Length
				p.StoredBytes += o.Stored
			}
		}
		if volumeID == "" || p.VolumeID == volumeID || p.Err != nil {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}

// deletePartial deletes the partial backup backupID (its objects, then its
// journal, so that an interrupted delete can be run again), or returns
// notFound when there is none.
func (e *Engine) deletePartial(ctx context.Context, backupID string, notFound error) ([]string, error) {
	refs, err := e.journals(ctx, backupID, "")
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, notFound
	}
	for _, r := range refs {
		var names []string
		err := e.t.List(ctx, r.loc.listPrefix(), func(o target.Info) error {
			if r.loc.owns(o.Name) {
				names = append(names, o.Name)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("deleting partial backup %s: %w", backupID, err)
		}
		for _, n := range append(names, r.name) {
			if err := e.t.Delete(ctx, n); err != nil {
				return nil, fmt.Errorf("deleting partial backup %s: %w", backupID, err)
			}
		}
	}
	return []string{backupID}, nil
}

// resumable prepares the journal of a Resumable backup (nil for any other).
// With o.Resume and a partial backup of that ID, it checks o against the
// journal and makes o name the same parent; the backup then continues in the
// partial backup's location. newID says the backup ID was just made up, so
// that no partial backup can have it.
func (e *Engine) resumable(ctx context.Context, o *BackupOptions, codec string, newID bool) (*journal, error) {
	if !o.Resumable && !o.Resume {
		return nil, nil
	}
	if newID {
		return &journal{e: e, entries: map[int]journalEntry{}}, nil
	}
	refs, err := e.journals(ctx, o.BackupID, o.VolumeID)
	if err != nil {
		return nil, err
	}
	j := &journal{e: e, entries: map[int]journalEntry{}}
	switch {
	case len(refs) > 1:
		return nil, fmt.Errorf("%w: backup ID %s has %d partial backups (%s and %s): delete it and back up again", ErrCorrupt, o.BackupID, len(refs), refs[0].name, refs[1].name)
	case len(refs) == 0:
		return j, nil
	case !o.Resume:
		return nil, fmt.Errorf("%w: a partial backup %s is on the target (%s): resume it, or delete it first", ErrExists, o.BackupID, refs[0].name)
	}
	d, err := e.readJournal(ctx, refs[0])
	if err != nil {
		return nil, err
	}
	if err := d.check(o, codec); err != nil {
		return nil, err
	}
	if want := e.naming.newLocation(d.VolumeID, d.BackupID, d.StartedAt); want != refs[0].loc {
		return nil, fmt.Errorf("%w: the partial backup %s is at %s, but this engine would write it at %s: open the target with the layout, container and availability zone it was started with",
			ErrInvalidOptions, o.BackupID, refs[0].loc.listPrefix(), want.listPrefix())
	}
	j.name, j.loc, j.resumed, j.doc = refs[0].name, refs[0].loc, true, *d
	for _, ent := range d.Objects {
		j.entries[ent.Number] = ent
	}
	j.existing = map[string]int64{}
	err = e.t.List(ctx, j.loc.listPrefix(), func(o target.Info) error {
		if j.loc.owns(o.Name) {
			j.existing[o.Name] = o.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the objects of partial backup %s: %w", o.BackupID, err)
	}
	return j, nil
}

// check compares the options of a resumed backup with those it was started
// with, and makes o ask for the same parent.
func (d *journalDoc) check(o *BackupOptions, codec string) error {
	differ := func(field, got, was, fix string) error {
		return fmt.Errorf("%w: resuming backup %s: %s %s differs from the partial backup's %s: %s, or delete the partial backup and back up again",
			ErrInvalidOptions, d.BackupID, field, got, was, fix)
	}
	q := func(s string) string { return strconv.Quote(s) }
	switch {
	case o.VolumeID != d.VolumeID:
		return differ("volume ID", q(o.VolumeID), q(d.VolumeID), "use volume ID "+q(d.VolumeID))
	case codec != d.Compression:
		return differ("compression", q(codec), q(d.Compression), "use compression "+q(d.Compression))
	case o.CompressionLevel != d.CompressionLevel:
		return differ("compression level", itoa(o.CompressionLevel), itoa(d.CompressionLevel), "use compression level "+itoa(d.CompressionLevel))
	case o.ObjectSize != d.ObjectSize:
		return differ("object size", i64(o.ObjectSize), i64(d.ObjectSize), "use object size "+i64(d.ObjectSize))
	case o.BlockSize != d.BlockSize:
		return differ("block size", itoa(o.BlockSize), itoa(d.BlockSize), "use block size "+itoa(d.BlockSize))
	case o.StoreZeros != d.StoreZeros:
		return differ("store zeros", fmt.Sprint(o.StoreZeros), fmt.Sprint(d.StoreZeros), fmt.Sprintf("set StoreZeros (--store-zeros) to %v", d.StoreZeros))
	case o.Name != d.Name:
		return differ("name", q(o.Name), q(d.Name), "use name "+q(d.Name))
	case o.Description != d.Description:
		return differ("description", q(o.Description), q(d.Description), "use description "+q(d.Description))
	case !sameStringPtr(o.VolumeMeta, d.VolumeMeta):
		return differ("volume meta", describePtr(o.VolumeMeta), describePtr(d.VolumeMeta), "pass the same volume meta")
	}
	if d.ParentID != "" {
		switch {
		case o.ParentID != "" && o.ParentID != d.ParentID:
			return differ("parent ID", q(o.ParentID), q(d.ParentID), "use parent ID "+q(d.ParentID))
		case o.ParentID == "" && !o.Incremental:
			return differ("kind", "full", "incremental on "+d.ParentID, "ask for an incremental (parent ID "+q(d.ParentID)+")")
		}
		o.ParentID, o.Incremental, o.FallbackToFull = d.ParentID, false, false
		return nil
	}
	if (o.ParentID != "" || o.Incremental) && !(o.FallbackToFull && d.FallbackReason != "") {
		return differ("kind", "incremental", "full", "ask for a full backup (no parent ID, not incremental)")
	}
	o.ParentID, o.Incremental = "", false
	return nil
}

// start fills in the journal's header for the backup about to run and writes
// it, before any object is stored: every object the backup stores lies next
// to a journal that Partials finds and Delete removes. at and loc are the new
// backup's own; a resumed backup keeps the partial one's.
func (j *journal) start(ctx context.Context, loc location, at time.Time, o BackupOptions, codec, parentID string, size int64, res *Result) error {
	if j.resumed {
		res.FallbackReason = j.doc.FallbackReason
	} else {
		j.loc, j.name = loc, loc.journalName()
		j.doc = journalDoc{
			Version: journalVersion, BackupID: o.BackupID, VolumeID: o.VolumeID, ParentID: parentID,
			Name: o.Name, Description: o.Description, VolumeMeta: o.VolumeMeta, StartedAt: at.UTC(),
			Compression: codec, CompressionLevel: o.CompressionLevel, ObjectSize: o.ObjectSize, BlockSize: o.BlockSize,
			StoreZeros: o.StoreZeros, FallbackReason: res.FallbackReason, KeyID: j.doc.KeyID,
		}
	}
	j.mu.Lock()
	j.doc.SourceSize = size
	j.changes++
	changes := j.changes
	j.mu.Unlock()
	return j.saveThrough(ctx, changes)
}

// checkKey makes a resumed backup use the encryption key its objects were
// sealed with ("" for none), and records it in a new journal.
func (j *journal) checkKey(backupID, keyID string) error {
	if j == nil {
		return nil
	}
	if !j.resumed {
		j.doc.KeyID = keyID
		return nil
	}
	if j.doc.KeyID == keyID {
		return nil
	}
	describe := func(id string) string {
		if id == "" {
			return "no encryption"
		}
		return "encryption key " + id
	}
	return fmt.Errorf("%w: resuming backup %s: it was started with %s, and this engine uses %s: give the key it was started with, or delete the partial backup and back up again",
		ErrInvalidOptions, backupID, describe(j.doc.KeyID), describe(keyID))
}

// startTime returns the time a backup starting at now is made at: a resumed
// backup keeps the partial one's.
func (j *journal) startTime(now time.Time) time.Time {
	if j.resumed {
		return j.doc.StartedAt
	}
	return now
}

// result fills in what a resumed backup reused.
func (j *journal) result(res *Result) {
	j.mu.Lock()
	defer j.mu.Unlock()
	res.Resumed, res.ObjectsReused, res.BytesReused = j.resumed, j.reused, j.bytes
}

func itoa(v int) string  { return strconv.Itoa(v) }
func i64(v int64) string { return strconv.FormatInt(v, 10) }

func sameStringPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func describePtr(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}
