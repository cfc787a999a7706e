package backup

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chunkback/chunkback/target"
)

// How often a Resumable backup rewrites its journal. The journal is one
// object, about 100 bytes per stored object, replaced whole with Put (every
// target replaces atomically), so a rewrite costs more as the backup grows.
// It is rewritten after every journalEvery stored objects, or at the first
// object stored journalInterval after the last rewrite, but never sooner than
// journalBudget times as long as the last rewrite took after it: rewrites
// take at most about 1/journalBudget of the backup's time, however large the
// source. An interrupted backup loses (stores again) at most the objects
// stored since the last rewrite.
const (
	journalEvery    = 16
	journalInterval = 5 * time.Second
	journalBudget   = 20
	// journalVersion is the journal format's version.
	journalVersion = 1
	// journalFinalTimeout bounds the last journal write of a failed backup,
	// which runs even when the backup's context was cancelled.
	journalFinalTimeout = time.Minute
)

// journalDoc is the stored journal: everything a resumed backup needs to
// produce the backup the interrupted one would have, and the objects whose
// Put returned OK.
type journalDoc struct {
	Version     int     `json:"chunkback_journal"`
	BackupID    string  `json:"backup_id"`
	VolumeID    string  `json:"volume_id"`
	ParentID    string  `json:"parent_id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	VolumeMeta  *string `json:"volume_meta"`
	// StartedAt is the time in the backup's location and its created_at.
	StartedAt        time.Time `json:"started_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	Compression      string    `json:"compression"`
	CompressionLevel int       `json:"compression_level"`
	ObjectSize       int64     `json:"object_size"`
	BlockSize        int       `json:"block_size"`
	SourceSize       int64     `json:"source_size"`
	StoreZeros       bool      `json:"store_zeros"`
	FallbackReason   string    `json:"fallback_reason"`
	// KeyID is the encryption key's ID in an encrypted backup (Config.Keys):
	// a resume must seal with the same key.
	KeyID   string         `json:"key_id,omitempty"`
	Objects []journalEntry `json:"objects"`
}

// journalEntry is one stored object: its number (the -NNNNN of its name),
// where its data lies in the source, how it was stored and its size on the
// target.
type journalEntry struct {
	Number      int    `json:"n"`
	Offset      int64  `json:"o"`
	Length      int64  `json:"l"`
	Compression string `json:"c"`
	MD5         string `json:"m"`
	Stored      int64  `json:"s"`
	// Data is, in an encrypted backup, a keyed digest of the object's data
	// (MD5 is then the sealed bytes'): a plaintext digest in the clear
	// would let anyone who reads the store confirm guessed content.
	Data string `json:"d,omitempty"`
}

// digest is what the entry recognises the object's data by.
func (e journalEntry) digest() string {
	if e.Data != "" {
		return e.Data
	}
	return e.MD5
}

// parseJournal reads a journal and checks every field a resume relies on.
func parseJournal(data []byte, backupID string) (*journalDoc, error) {
	var d journalDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	switch {
	case d.Version != journalVersion:
		return nil, fmt.Errorf("version %d is not supported (only %d)", d.Version, journalVersion)
	case d.BackupID != backupID:
		return nil, fmt.Errorf("it names backup %q, not %q", d.BackupID, backupID)
	case d.VolumeID == "":
		return nil, errors.New("volume_id is missing")
	case d.StartedAt.IsZero():
		return nil, errors.New("started_at is missing")
	case d.Compression == "":
		return nil, errors.New("compression is missing")
	case d.ObjectSize <= 0 || d.BlockSize <= 0:
		return nil, fmt.Errorf("object_size %d or block_size %d is not positive", d.ObjectSize, d.BlockSize)
	}
	for i, o := range d.Objects {
		if _, err := hex.DecodeString(o.MD5); err != nil || len(o.MD5) != 32 || o.Number < 1 || o.Offset < 0 || o.Length <= 0 || o.Stored < 0 || o.Compression == "" {
			return nil, fmt.Errorf("objects[%d] is malformed", i)
		}
	}
	return &d, nil
}

// journal is the resume state of one Resumable backup in progress.
type journal struct {
	e       *Engine
	name    string // target name of the journal
	loc     location
	resumed bool
	// existing maps the target names of the objects found under the
	// backup's prefix when it was resumed to their sizes.
	existing map[string]int64

	mu      sync.Mutex
	doc     journalDoc           // header; Objects is built at each write
	entries map[int]journalEntry // by object number
	changes uint64               // bumped by every change of entries
	pending int                  // entries added since the last write
	reused  int
	bytes   int64 // uncompressed bytes of the reused objects

	writeMu  sync.Mutex // one write at a time; guards the fields below
	saved    uint64     // changes the stored journal reflects
	lastSave time.Time
	lastCost time.Duration
}

// number returns the object number of a data object's _metadata name.
func (j *journal) number(name string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, j.loc.Prefix+"-"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("object %s does not belong to backup %s", name, j.doc.BackupID)
	}
	return n, nil
}

// reuse reports whether the object obj, whose data has MD5 sum, is already
// stored: the journal records it with the same offset, length and MD5, and
// the object was found with the recorded size. It then fills in obj. When
// the journal records something else under that number, the entry is
// removed from the stored journal before the caller overwrites the object,
// so that no journal ever vouches for an object's old content.
func (j *journal) reuse(ctx context.Context, obj *ObjectMeta, digest string) (bool, error) {
	if !j.resumed {
		return false, nil
	}
	n, err := j.number(obj.Name)
	if err != nil {
		return false, err
	}
	j.mu.Lock()
	ent, ok := j.entries[n]
	j.mu.Unlock()
	if !ok {
		return false, nil
	}
	size, found := j.existing[j.loc.full(obj.Name)]
	if found && size == ent.Stored && ent.Offset == obj.Offset && ent.Length == obj.Length && ent.digest() == digest {
		obj.Compression, obj.MD5 = ent.Compression, ent.MD5
		j.mu.Lock()
		j.reused++
		j.bytes += obj.Length
		j.mu.Unlock()
		return true, nil
	}
	j.mu.Lock()
	delete(j.entries, n)
	j.changes++
	through := j.changes
	j.mu.Unlock()
	return false, j.saveThrough(ctx, through)
}

// stored records an object whose Put returned OK, and rewrites the journal
// when it is due.
func (j *journal) stored(ctx context.Context, obj *ObjectMeta, storedSize int64, digest string) error {
	n, err := j.number(obj.Name)
	if err != nil {
		return err
	}
	j.mu.Lock()
	ent := journalEntry{Number: n, Offset: obj.Offset, Length: obj.Length, Compression: obj.Compression, MD5: obj.MD5, Stored: storedSize}
	if digest != obj.MD5 {
		ent.Data = digest // an encrypted backup's keyed digest of the data
	}
	j.entries[n] = ent
	j.changes++
	j.pending++
	pending := j.pending
	j.mu.Unlock()
	if !j.writeMu.TryLock() {
		return nil // a write is under way; a later object triggers the next
	}
	defer j.writeMu.Unlock()
	since := time.Since(j.lastSave)
	if since < journalBudget*j.lastCost || (pending < journalEvery && since < journalInterval) {
		return nil
	}
	return j.saveLocked(ctx)
}

// saveThrough makes sure the stored journal reflects at least the given
// number of changes.
func (j *journal) saveThrough(ctx context.Context, changes uint64) error {
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	if j.saved >= changes {
		return nil
	}
	return j.saveLocked(ctx)
}

// saveLocked writes the journal; the caller holds writeMu.
func (j *journal) saveLocked(ctx context.Context) error {
	j.mu.Lock()
	doc := j.doc
	doc.UpdatedAt = time.Now().UTC()
	doc.Objects = make([]journalEntry, 0, len(j.entries))
	for _, ent := range j.entries {
		doc.Objects = append(doc.Objects, ent)
	}
	changes, pending := j.changes, j.pending
	j.mu.Unlock()
	slices.SortFunc(doc.Objects, func(a, b journalEntry) int { return a.Number - b.Number })
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := j.e.t.Put(ctx, j.name, bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		return fmt.Errorf("writing the resume journal %s: %w", j.name, err)
	}
	j.saved, j.lastSave, j.lastCost = changes, time.Now(), time.Since(start)
	j.mu.Lock()
	j.pending -= pending
	j.mu.Unlock()
	return nil
}

// keep is called when the backup failed: it writes the journal one last time
// (even when ctx was cancelled) so that Resume reuses every object stored,
// and returns the error to report.
func (j *journal) keep(ctx context.Context, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalFinalTimeout)
	defer cancel()
	j.mu.Lock()
	changes := j.changes
	j.mu.Unlock()
	// A failed last write leaves the previous journal, which is still true:
	// it records only objects whose Put returned OK, and none overwritten.
	_ = j.saveThrough(ctx, changes)
	j.mu.Lock()
	objects := len(j.entries)
	j.mu.Unlock()
	return &PartialError{BackupID: j.doc.BackupID, VolumeID: j.doc.VolumeID, Objects: objects, Err: cause}
}

// dropStrays deletes, before a resumed backup writes its _sha256file and
// _metadata, every object under its prefix that it does not list: objects
// of an earlier attempt past the new end (the source shrank or changed),
// and an earlier attempt's _sha256file.
func (j *journal) dropStrays(ctx context.Context, objects []*ObjectMeta) error {
	if !j.resumed {
		return nil
	}
	want := make(map[string]bool, len(objects))
	for _, o := range objects {
		want[j.loc.full(o.Name)] = true
	}
	var stray []string
	err := j.e.t.List(ctx, j.loc.listPrefix(), func(o target.Info) error {
		if j.loc.owns(o.Name) && !want[o.Name] {
			stray = append(stray, o.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing the objects of the resumed backup %s: %w", j.doc.BackupID, err)
	}
	for _, name := range stray {
		if err := j.e.t.Delete(ctx, name); err != nil {
			return fmt.Errorf("deleting %s, left by an earlier attempt: %w", name, err)
		}
	}
	return nil
}

// finished deletes the journal of a backup whose _metadata is written. A
// failure is not the backup's: it is complete, and a journal left next to
// it is harmless (Delete removes it).
func (j *journal) finished(ctx context.Context) {
	_ = j.e.t.Delete(ctx, j.name)
}
