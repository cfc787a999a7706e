//go:build ceph

package rbd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/target"
)

// Source is an RBD image (at a snapshot) to back up: an io.ReaderAt of a
// known size that counts the bytes it reads, and an io.ReadSeeker over the
// same bytes (pass it to backup.Engine.Backup as it is). ReadAt calls may
// run in parallel; Read and Seek may not.
type Source struct {
	ref  ImageRef
	img  *librbd.Image
	size int64
	read atomic.Int64
	seq  *io.SectionReader // Read and Seek, through ReadAt
}

// OpenSource opens ref read-only: at ref.Snapshot, or at the image's head
// (which may change while it is read) when ref.Snapshot is empty.
func (c *Conn) OpenSource(ctx context.Context, ref ImageRef) (*Source, error) {
	if err := ref.validate("source"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ioc, err := c.ioctx(ref.Pool)
	if err != nil {
		return nil, err
	}
	img, err := librbd.OpenImageReadOnly(ioc, ref.Image, ref.Snapshot)
	if err != nil {
		return nil, c.imageError("opening", ref, err)
	}
	size, err := img.GetSize()
	if err != nil {
		img.Close()
		return nil, c.imageError("measuring", ref, err)
	}
	s := &Source{ref: ref, img: img, size: int64(size)}
	s.seq = io.NewSectionReader(s, 0, s.size)
	return s, nil
}

// Read reads the next bytes, from the start of the image on.
func (s *Source) Read(p []byte) (int, error) { return s.seq.Read(p) }

// Seek sets where Read goes on.
func (s *Source) Seek(offset int64, whence int) (int64, error) { return s.seq.Seek(offset, whence) }

// ReadAt reads len(p) bytes at off; at the image's end it returns io.EOF.
func (s *Source) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	want := p
	if rest := s.size - off; int64(len(p)) > rest {
		want = p[:rest]
	}
	n, err := s.img.ReadAt(want, off)
	s.read.Add(int64(n))
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("rbd: reading %s at byte %d: %w", s.ref, off, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size returns the image's size (at the snapshot) in bytes.
func (s *Source) Size() int64 { return s.size }

// Ref returns the image and snapshot read.
func (s *Source) Ref() ImageRef { return s.ref }

// BytesRead returns the number of bytes read from the image so far.
func (s *Source) BytesRead() int64 { return s.read.Load() }

// Close closes the image.
func (s *Source) Close() error { return s.img.Close() }

// Changed returns the extents of the source that differ from its snapshot
// fromSnap (librbd's diff, as `rbd export-diff --from-snap` sees it),
// sorted and merged. With fromSnap empty, it returns the extents that hold
// data (everything ever written and not discarded).
func (s *Source) Changed(ctx context.Context, fromSnap string) ([]backup.Extent, error) {
	diff, err := diffExtents(ctx, s.img, fromSnap, s.size)
	if err != nil {
		return nil, fmt.Errorf("rbd: diff of %s since %q: %w", s.ref, fromSnap, err)
	}
	out := make([]backup.Extent, 0, len(diff))
	for _, d := range diff {
		if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length >= d.Offset {
			out[n-1].Length = max(out[n-1].Offset+out[n-1].Length, d.Offset+d.Length) - out[n-1].Offset
			continue
		}
		out = append(out, backup.Extent{Offset: d.Offset, Length: d.Length})
	}
	return out, nil
}

// diffExtent is one extent of librbd's diff: data, or (Data false) a range
// that now reads as zeros (discarded, or past the old end).
type diffExtent struct {
	Offset, Length int64
	Data           bool
}

// diffExtents lists the extents of img (opened at the newer point) that
// differ from its snapshot fromSnap, or hold data when fromSnap is empty,
// sorted by offset.
func diffExtents(ctx context.Context, img *librbd.Image, fromSnap string, size int64) ([]diffExtent, error) {
	var out []diffExtent
	if size == 0 {
		return out, nil
	}
	err := img.DiffIterate(librbd.DiffIterateConfig{
		SnapName:      fromSnap,
		Offset:        0,
		Length:        uint64(size),
		IncludeParent: librbd.IncludeParent,
		WholeObject:   librbd.DisableWholeObject,
		Callback: func(off, length uint64, exists int, _ any) int {
			if ctx.Err() != nil {
				return -int(syscall.ECANCELED)
			}
			out = append(out, diffExtent{Offset: int64(off), Length: int64(length), Data: exists != 0})
			return 0
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errno(err) == syscall.ENOENT && fromSnap != "" {
			return nil, fmt.Errorf("%w: snapshot %q is not on the image: %v", target.ErrNotFound, fromSnap, err)
		}
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out, nil
}

// snapshotPattern matches the snapshots backups take, as Cinder's Ceph
// driver names them: backup.<backup ID>.snap.<time.time()>.
var snapshotPattern = regexp.MustCompile(`^backup\.([A-Za-z0-9_-]+?)\.snap\.(.+)$`)

// backupIDPattern is what a backup ID must look like to be part of a
// snapshot name that Cinder's pattern parses back.
var backupIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// SnapshotName returns the name of the snapshot a backup takes:
// backup.<backupID>.snap.<seconds.microseconds>, Cinder's form.
func SnapshotName(backupID string, at time.Time) string {
	return fmt.Sprintf("backup.%s.snap.%d.%06d", backupID, at.Unix(), at.Nanosecond()/1000)
}

// BackupSnapshot is a snapshot a backup took.
type BackupSnapshot struct {
	// Name is the snapshot's name; BackupID the backup it belongs to.
	Name, BackupID string
	// ID is librbd's snapshot ID (increasing in creation order).
	ID uint64
	// Size is the image's size at the snapshot.
	Size int64
	// CreatedAt is the time in the snapshot's name.
	CreatedAt time.Time
}

// parseSnapshot reads a backup snapshot's name.
func parseSnapshot(s librbd.SnapInfo) (BackupSnapshot, bool) {
	m := snapshotPattern.FindStringSubmatch(s.Name)
	if m == nil {
		return BackupSnapshot{}, false
	}
	b := BackupSnapshot{Name: s.Name, BackupID: m[1], ID: s.Id, Size: int64(s.Size)}
	if f, err := strconv.ParseFloat(m[2], 64); err == nil {
		sec := int64(f)
		b.CreatedAt = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
	}
	return b, true
}

// backupSnapshots lists img's backup snapshots, oldest first.
func backupSnapshots(img *librbd.Image) ([]BackupSnapshot, error) {
	snaps, err := img.GetSnapshotNames()
	if err != nil && errno(err) != syscall.ENOENT {
		return nil, err
	}
	var out []BackupSnapshot
	for _, s := range snaps {
		if b, ok := parseSnapshot(s); ok {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b BackupSnapshot) int { return cmpUint(a.ID, b.ID) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hasSnapshot reports whether img has a snapshot named name.
func hasSnapshot(img *librbd.Image, name string) (bool, error) {
	snaps, err := img.GetSnapshotNames()
	if err != nil && errno(err) != syscall.ENOENT {
		return false, err
	}
	for _, s := range snaps {
		if s.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// snapshotOf finds the backup snapshot of backupID among snaps.
func snapshotOf(snaps []BackupSnapshot, backupID string) (BackupSnapshot, bool) {
	for _, s := range snaps {
		if s.BackupID == backupID {
			return s, true
		}
	}
	return BackupSnapshot{}, false
}

// BackupSnapshots lists the snapshots backups took of an image (named
// backup.<backup ID>.snap.<time>), oldest first.
func (c *Conn) BackupSnapshots(ctx context.Context, ref ImageRef) ([]BackupSnapshot, error) {
	ref.Snapshot = ""
	img, err := c.openImage(ctx, ref, true)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	snaps, err := backupSnapshots(img)
	if err != nil {
		return nil, c.imageError("listing the snapshots of", ref, err)
	}
	return snaps, nil
}

// CreateSnapshot takes a snapshot of ref.Image named ref.Snapshot.
func (c *Conn) CreateSnapshot(ctx context.Context, ref ImageRef) error {
	if ref.Snapshot == "" {
		return fmt.Errorf("%w: rbd: creating a snapshot of %s: the snapshot name is empty", target.ErrInvalidArgument, ref)
	}
	img, err := c.openImage(ctx, ImageRef{Pool: ref.Pool, Image: ref.Image}, false)
	if err != nil {
		return err
	}
	defer img.Close()
	if _, err := img.CreateSnapshot(ref.Snapshot); err != nil {
		return c.imageError("creating snapshot", ref, err)
	}
	return nil
}

// RemoveSnapshot removes the snapshot ref.Snapshot of ref.Image; a missing
// snapshot is not an error.
func (c *Conn) RemoveSnapshot(ctx context.Context, ref ImageRef) error {
	if ref.Snapshot == "" {
		return fmt.Errorf("%w: rbd: removing a snapshot of %s: the snapshot name is empty", target.ErrInvalidArgument, ref)
	}
	img, err := c.openImage(ctx, ImageRef{Pool: ref.Pool, Image: ref.Image}, false)
	if err != nil {
		return err
	}
	defer img.Close()
	if err := img.GetSnapshot(ref.Snapshot).Remove(); err != nil && !errors.Is(err, librbd.ErrNotFound) && errno(err) != syscall.ENOENT {
		return c.imageError("removing snapshot", ref, err)
	}
	return nil
}

// openImage opens an image, read-only or for writing.
func (c *Conn) openImage(ctx context.Context, ref ImageRef, readOnly bool) (*librbd.Image, error) {
	if err := ref.validate("image"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ioc, err := c.ioctx(ref.Pool)
	if err != nil {
		return nil, err
	}
	var img *librbd.Image
	if readOnly {
		img, err = librbd.OpenImageReadOnly(ioc, ref.Image, ref.Snapshot)
	} else {
		img, err = librbd.OpenImage(ioc, ref.Image, ref.Snapshot)
	}
	if err != nil {
		return nil, c.imageError("opening", ref, err)
	}
	return img, nil
}

// pruneSnapshots removes the oldest backup snapshots of ref.Image so that
// at most keep remain (keep 0: none removed). The newest ones, which the
// next incremental diffs from, always stay.
func (c *Conn) pruneSnapshots(ctx context.Context, ref ImageRef, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	img, err := c.openImage(ctx, ImageRef{Pool: ref.Pool, Image: ref.Image}, false)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	snaps, err := backupSnapshots(img)
	if err != nil {
		return nil, c.imageError("listing the snapshots of", ref, err)
	}
	var removed []string
	for _, s := range snaps[:max(0, len(snaps)-keep)] {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if err := img.GetSnapshot(s.Name).Remove(); err != nil && errno(err) != syscall.ENOENT {
			return removed, c.imageError("removing old backup snapshot", ImageRef{Pool: ref.Pool, Image: ref.Image, Snapshot: s.Name}, err)
		}
		removed = append(removed, s.Name)
	}
	return removed, nil
}

// newUUID returns a random (version 4) UUID, the form Cinder's IDs take.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// checkBackupID checks that a backup ID can be part of a snapshot name.
func checkBackupID(id string) error {
	if !backupIDPattern.MatchString(id) || strings.Contains(id, ".snap.") {
		return fmt.Errorf("%w: backup ID %q: RBD backups name their snapshots backup.<ID>.snap.<time>, so the ID may hold only letters, digits, '-' and '_' (a UUID)", backup.ErrInvalidOptions, id)
	}
	return nil
}
