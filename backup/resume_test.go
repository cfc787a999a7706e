package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// dataObject matches the target name of a data object (…-NNNNN).
var dataObject = regexp.MustCompile(`-[0-9]{5,}$`)

// putLog records the names of the objects every Put that succeeded stored.
type putLog struct {
	target.Target
	mu    sync.Mutex
	names []string
}

func (p *putLog) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	err := p.Target.Put(ctx, name, body, size, opts)
	if err == nil {
		p.mu.Lock()
		p.names = append(p.names, name)
		p.mu.Unlock()
	}
	return err
}

func (p *putLog) Unwrap() target.Target { return p.Target }

// dataPuts returns the data objects stored since the last call.
func (p *putLog) dataPuts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, n := range p.names {
		if dataObject.MatchString(n) {
			out = append(out, n)
		}
	}
	p.names = nil
	return out
}

// rig is an engine on a posix directory, through a Faulty and a putLog.
type rig struct {
	dir    string
	posix  *posix.Target
	faulty *targettest.Faulty
	puts   *putLog
	e      *Engine
}

// newRig opens a rig whose clock starts where every other rig's does, so
// that two rigs doing the same backups make the same ones. With one worker,
// objects are stored one after the other, so that "the first k objects
// succeed" is exact; with more, a failure cancels Puts already under way.
func newRig(t *testing.T, workers int) *rig {
	t.Helper()
	dir := t.TempDir()
	p, err := posix.New(dir, posix.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	r := &rig{dir: dir, posix: p, faulty: targettest.NewFaulty(p, targettest.FaultOptions{})}
	r.puts = &putLog{Target: r.faulty}
	r.e, err = New(r.puts, Config{Now: fixedNow(), Workers: workers})
	require.NoError(t, err)
	return r
}

// failDataPutsAfter makes every data object Put after the first k fail.
func (r *rig) failDataPutsAfter(k int) {
	var n atomic.Int64
	r.faulty.Add(targettest.Fault{Op: targettest.OpPut, Match: func(name string) bool {
		return dataObject.MatchString(name) && n.Add(1) > int64(k)
	}})
}

// files returns every file below the rig's directory and its bytes.
func (r *rig) files(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.Walk(r.dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(r.dir, path)
		out[rel] = data
		return err
	}))
	return out
}

// requireSameBackups checks that two rigs hold the same objects, byte for
// byte: the same _metadata, _sha256file and data objects, and nothing else.
func requireSameBackups(t *testing.T, want, got *rig) {
	t.Helper()
	w, g := want.files(t), got.files(t)
	require.Equal(t, sortedKeys(w), sortedKeys(g), "object lists differ")
	for name, data := range w {
		require.True(t, bytes.Equal(data, g[name]), "%s differs:\nwant %.300s\ngot  %.300s", name, data, g[name])
	}
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return sortedStrings(ks)
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// requirePartial checks that err is a kept partial backup with objects
// objects (or any number, when objects < 0).
func requirePartial(t *testing.T, err error, id string, objects int) *PartialError {
	t.Helper()
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, id, pe.BackupID)
	if objects >= 0 {
		require.Equal(t, objects, pe.Objects)
	}
	return pe
}

const resumeID = "5e1f0c2a-7d3b-4c1e-9a55-0b6f7e8d9c01"

func resumeOpts() BackupOptions {
	return BackupOptions{VolumeID: "vol-r", BackupID: resumeID, BlockSize: 4096, ObjectSize: 65536, Name: "nightly"}
}

func TestResumeAfterStoreFailureIsIdenticalAndStoresOnlyTheRest(t *testing.T) {
	ctx := context.Background()
	src := genSource(11, 3<<20+777)
	ref := newRig(t, 1)
	want, err := ref.e.Backup(ctx, bytes.NewReader(src), resumeOpts())
	require.NoError(t, err)

	r := newRig(t, 1)
	r.failDataPutsAfter(10)
	o := resumeOpts()
	o.Resumable = true
	_, err = r.e.Backup(ctx, bytes.NewReader(src), o)
	require.ErrorIs(t, err, targettest.ErrInjected)
	requirePartial(t, err, resumeID, 10)
	require.Contains(t, err.Error(), "partial backup "+resumeID+" kept with 10 objects")
	stored := r.puts.dataPuts()
	_, err = r.e.Find(ctx, resumeID, "")
	require.ErrorIs(t, err, ErrNotFound, "a partial backup is not a backup")
	parts, err := r.e.Partials(ctx, "")
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.Equal(t, resumeID, parts[0].ID)
	require.Equal(t, "vol-r", parts[0].VolumeID)
	require.Equal(t, "nightly", parts[0].Name)
	require.Equal(t, 10, parts[0].Objects)
	require.EqualValues(t, len(src), parts[0].SourceSize)
	require.NoError(t, parts[0].Err)

	r.faulty.Reset()
	o.Resume = true
	res, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.True(t, res.Resumed)
	require.Equal(t, 10, res.ObjectsReused)
	var reusedBytes int64
	for _, obj := range want.Info.Metadata.Objects {
		for _, n := range stored {
			if strings.HasSuffix(n, "/"+obj.Name) {
				reusedBytes += obj.Length
			}
		}
	}
	require.Equal(t, reusedBytes, res.BytesReused)
	require.Equal(t, want.Objects, res.Objects)
	again := r.puts.dataPuts()
	require.Len(t, stored, 10)
	require.Len(t, again, want.Objects-10, "only the objects not yet stored are stored")
	for _, n := range stored {
		require.NotContains(t, again, n, "a reused object was stored again")
	}

	requireSameBackups(t, ref, r)
	requireSameData(t, src, restoreToFile(t, r.e, resumeID), "resumed backup")
	parts, err = r.e.Partials(ctx, "")
	require.NoError(t, err)
	require.Empty(t, parts)
}

func TestResumeAfterCancel(t *testing.T) {
	src := genSource(12, 3<<20)
	ref := newRig(t, 1)
	_, err := ref.e.Backup(context.Background(), bytes.NewReader(src), resumeOpts())
	require.NoError(t, err)

	r := newRig(t, 3)
	o := resumeOpts()
	o.Resumable = true
	ctx, cancel := context.WithCancel(context.Background())
	_, err = r.e.Backup(ctx, streamOnly{&cancellingReader{r: bytes.NewReader(src), n: 3 << 19, cancel: cancel}}, o)
	require.ErrorIs(t, err, context.Canceled)
	pe := requirePartial(t, err, resumeID, -1)
	require.Positive(t, pe.Objects)

	o.Resume = true
	res, err := r.e.Backup(context.Background(), bytes.NewReader(src), o)
	require.NoError(t, err)
	require.Equal(t, pe.Objects, res.ObjectsReused)
	requireSameBackups(t, ref, r)
	requireSameData(t, src, restoreToFile(t, r.e, resumeID), "resumed backup")
}

func TestResumeWithAChangedSourceBacksUpTheNewData(t *testing.T) {
	ctx := context.Background()
	src := genSource(13, 3<<20)
	r := newRig(t, 3)
	r.failDataPutsAfter(30)
	o := resumeOpts()
	o.Resumable = true
	_, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.LessOrEqual(t, requirePartial(t, err, resumeID, -1).Objects, 30)
	r.faulty.Reset()

	// Changed in place, and shorter: objects past the new end are strays.
	changed := append([]byte(nil), src[:2<<20+5]...)
	mutate(5, changed[:1<<20], 6)
	o.Resume = true
	res, err := r.e.Backup(ctx, bytes.NewReader(changed), o)
	require.NoError(t, err)
	require.Less(t, res.ObjectsReused, 30)
	requireSameData(t, changed, restoreToFile(t, r.e, resumeID), "resumed backup of changed data")

	ref := newRig(t, 1)
	_, err = ref.e.Backup(ctx, bytes.NewReader(changed), resumeOpts())
	require.NoError(t, err)
	requireSameBackups(t, ref, r)
	rep, err := r.e.Verify(ctx, resumeID, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Faults)
}

func TestResumeRefusesOtherOptions(t *testing.T) {
	ctx := context.Background()
	src := genSource(14, 1<<20)
	r := newRig(t, 1)
	r.failDataPutsAfter(3)
	o := resumeOpts()
	o.Resumable = true
	_, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	requirePartial(t, err, resumeID, 3)
	r.faulty.Reset()

	o.Resume = true
	for _, c := range []struct {
		change func(*BackupOptions)
		want   string
	}{
		{func(o *BackupOptions) { o.ObjectSize = 131072 }, "object size 131072 differs from the partial backup's 65536: use object size 65536"},
		{func(o *BackupOptions) { o.BlockSize = 8192 }, "block size 8192 differs from the partial backup's 4096"},
		{func(o *BackupOptions) { o.Compression = "zstd" }, `compression "zstd" differs from the partial backup's "zlib"`},
		{func(o *BackupOptions) { o.CompressionLevel = 9 }, "compression level 9 differs from the partial backup's 0"},
		{func(o *BackupOptions) { o.StoreZeros = true }, "store zeros true differs from the partial backup's false"},
		{func(o *BackupOptions) { o.Name = "other" }, `name "other" differs from the partial backup's "nightly"`},
		{func(o *BackupOptions) { o.VolumeID = "vol-x" }, `volume ID "vol-x" differs from the partial backup's "vol-r"`},
		{func(o *BackupOptions) { o.Incremental = true }, "kind incremental differs from the partial backup's full"},
	} {
		bad := o
		c.change(&bad)
		_, err := r.e.Backup(ctx, bytes.NewReader(src), bad)
		require.ErrorIs(t, err, ErrInvalidOptions, c.want)
		require.ErrorContains(t, err, c.want)
		require.ErrorContains(t, err, "resuming backup "+resumeID)
	}
	_, err = r.e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", Resume: true})
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.ErrorContains(t, err, "Resume needs BackupID")

	// A new Resumable backup with the partial one's ID is refused.
	fresh := resumeOpts()
	fresh.Resumable = true
	_, err = r.e.Backup(ctx, bytes.NewReader(src), fresh)
	require.ErrorIs(t, err, ErrExists)
	require.ErrorContains(t, err, "a partial backup "+resumeID+" is on the target")

	// None of it touched the partial backup.
	res, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.Equal(t, 3, res.ObjectsReused)

	// Resuming a complete backup is refused.
	_, err = r.e.Backup(ctx, bytes.NewReader(src), o)
	require.ErrorIs(t, err, ErrExists)
}

func TestResumeWithoutAPartialStartsANewBackup(t *testing.T) {
	ctx := context.Background()
	src := genSource(15, 1<<20)
	ref := newRig(t, 1)
	_, err := ref.e.Backup(ctx, bytes.NewReader(src), resumeOpts())
	require.NoError(t, err)
	r := newRig(t, 1)
	o := resumeOpts()
	o.Resume = true
	res, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.False(t, res.Resumed)
	require.Zero(t, res.ObjectsReused)
	requireSameBackups(t, ref, r)
}

func TestResumeIncremental(t *testing.T) {
	ctx := context.Background()
	src := genSource(16, 2<<20)
	mod := append([]byte(nil), src...)
	mutate(8, mod, 10)
	fullOpts := resumeOpts()
	fullOpts.BackupID = "f0f0f0f0-0000-4000-8000-000000000001"
	incOpts := resumeOpts()
	incOpts.Incremental = true

	ref := newRig(t, 1)
	_, err := ref.e.Backup(ctx, bytes.NewReader(src), fullOpts)
	require.NoError(t, err)
	want, err := ref.e.Backup(ctx, bytes.NewReader(mod), incOpts)
	require.NoError(t, err)
	require.False(t, want.Full)

	r := newRig(t, 1)
	_, err = r.e.Backup(ctx, bytes.NewReader(src), fullOpts)
	require.NoError(t, err)
	r.failDataPutsAfter(4)
	incOpts.Resumable = true
	_, err = r.e.Backup(ctx, bytes.NewReader(mod), incOpts)
	requirePartial(t, err, resumeID, 4)
	r.faulty.Reset()
	parts, err := r.e.Partials(ctx, "vol-r")
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.Equal(t, fullOpts.BackupID, parts[0].ParentID)

	incOpts.Resume = true
	asFull := incOpts
	asFull.Incremental = false
	_, err = r.e.Backup(ctx, bytes.NewReader(mod), asFull)
	require.ErrorContains(t, err, "kind full differs from the partial backup's incremental on "+fullOpts.BackupID)
	res, err := r.e.Backup(ctx, bytes.NewReader(mod), incOpts)
	require.NoError(t, err)
	require.False(t, res.Full)
	require.Equal(t, 4, res.ObjectsReused)
	requireSameBackups(t, ref, r)
	requireSameData(t, mod, restoreToFile(t, r.e, resumeID), "resumed incremental")
}

func TestResumeZeroSkipping(t *testing.T) {
	ctx := context.Background()
	// Data, 2 MiB of zeros (skipped unless StoreZeros), data, a zero tail.
	src := make([]byte, 5<<20)
	copy(src, genSource(17, 1<<20))
	copy(src[3<<20:], genSource(18, 1<<20))
	for _, storeZeros := range []bool{false, true} {
		t.Run(map[bool]string{false: "skip", true: "store"}[storeZeros], func(t *testing.T) {
			o := resumeOpts()
			o.StoreZeros = storeZeros
			ref := newRig(t, 1)
			want, err := ref.e.Backup(ctx, bytes.NewReader(src), o)
			require.NoError(t, err)
			r := newRig(t, 1)
			r.failDataPutsAfter(5)
			o.Resumable = true
			_, err = r.e.Backup(ctx, bytes.NewReader(src), o)
			requirePartial(t, err, resumeID, 5)
			r.faulty.Reset()
			o.Resume = true
			res, err := r.e.Backup(ctx, bytes.NewReader(src), o)
			require.NoError(t, err)
			require.Equal(t, want.Objects, res.Objects)
			requireSameBackups(t, ref, r)
			requireSameData(t, src, restoreToFile(t, r.e, resumeID), "resumed backup")
		})
	}
}

// TestJournalNeverVouchesForOverwrittenObjects: a resume that overwrites an
// object the journal records (the source changed) takes it out of the
// stored journal first. Here the overwrite lands, the backup fails and so
// does every later journal write; a third run on the original data must not
// take the overwritten object (same size, uncompressed) for the original.
func TestJournalNeverVouchesForOverwrittenObjects(t *testing.T) {
	ctx := context.Background()
	src := genSource(19, 1<<20)
	for i := range src {
		if src[i] == 0 {
			src[i] = 7 // every block stored, in 16 objects
		}
	}
	r := newRig(t, 1)
	r.failDataPutsAfter(6)
	o := resumeOpts()
	o.Compression = "none"
	o.Resumable = true
	_, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	requirePartial(t, err, resumeID, 6)
	r.faulty.Reset()

	changed := append([]byte(nil), src...)
	changed[65536+100] ^= 0xff // in object 2, same length
	var overwritten atomic.Bool
	r.faulty.Add(
		targettest.Fault{Op: targettest.OpPut, After: true, Match: func(n string) bool {
			if strings.HasSuffix(n, "-00002") {
				overwritten.Store(true)
				return true
			}
			return false
		}},
		targettest.Fault{Op: targettest.OpPut, Match: func(n string) bool {
			return overwritten.Load() && strings.Contains(n, journalMarker)
		}},
	)
	o.Resume = true
	_, err = r.e.Backup(ctx, bytes.NewReader(changed), o)
	require.ErrorIs(t, err, targettest.ErrInjected)
	require.True(t, overwritten.Load())
	r.faulty.Reset()

	res, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.Equal(t, 5, res.ObjectsReused, "objects 1 and 3-6")
	requireSameData(t, src, restoreToFile(t, r.e, resumeID), "after an overwritten object")
}

// TestJournalIsWrittenWhileTheBackupRuns: when the process dies (here every
// Put fails from some point, journal writes included), the journal written
// along the way still lists stored objects, and only those.
func TestJournalIsWrittenWhileTheBackupRuns(t *testing.T) {
	ctx := context.Background()
	src := genSource(20, 4<<20)
	for i := range src {
		if src[i] == 0 {
			src[i] = 3
		}
	}
	r := newRig(t, 3)
	var n atomic.Int64
	r.faulty.Add(targettest.Fault{Op: targettest.OpPut, Match: func(name string) bool {
		if dataObject.MatchString(name) {
			return n.Add(1) > 48
		}
		return n.Load() > 48 // journal writes too: the process is gone
	}})
	o := resumeOpts()
	o.Resumable = true
	_, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.LessOrEqual(t, requirePartial(t, err, resumeID, -1).Objects, 48)
	parts, err := r.e.Partials(ctx, "")
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.GreaterOrEqual(t, parts[0].Objects, journalEvery, "the journal was rewritten while the backup ran")
	require.LessOrEqual(t, parts[0].Objects, 48)
	r.faulty.Reset()
	o.Resume = true
	res, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.Equal(t, parts[0].Objects, res.ObjectsReused)
	requireSameData(t, src, restoreToFile(t, r.e, resumeID), "resumed backup")
}

func TestDeletePartialAndUnreadableJournal(t *testing.T) {
	ctx := context.Background()
	src := genSource(21, 1<<20)
	r := newRig(t, 1)
	r.failDataPutsAfter(4)
	o := resumeOpts()
	o.Resumable = true
	_, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	requirePartial(t, err, resumeID, 4)
	r.faulty.Reset()
	parts, err := r.e.Partials(ctx, "")
	require.NoError(t, err)
	require.Len(t, parts, 1)
	journal := parts[0].Journal
	require.Equal(t, resumeID[:2]+"/"+resumeID[2:4]+"/"+resumeID+"/chunkback_journal_volume_vol-r_20261122100001_backup_"+resumeID, journal)

	require.NoError(t, r.posix.Put(ctx, journal, strings.NewReader("{not json"), 9, target.PutOptions{}))
	o.Resume = true
	_, err = r.e.Backup(ctx, bytes.NewReader(src), o)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "the resume journal "+journal+" of partial backup "+resumeID+" is unreadable")
	require.ErrorContains(t, err, "delete it and back up again")
	parts, err = r.e.Partials(ctx, "")
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.ErrorIs(t, parts[0].Err, ErrCorrupt)

	deleted, err := r.e.Delete(ctx, resumeID, DeleteOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{resumeID}, deleted)
	require.Empty(t, r.files(t))
	_, err = r.e.Delete(ctx, resumeID, DeleteOptions{})
	require.ErrorIs(t, err, ErrNotFound)
}

// TestLeftoverJournalIsHarmless: a crash between the _metadata write and the
// journal's delete leaves the journal next to a complete backup. It does
// not carry the backup's prefix, so restore (ours and Cinder's) sees no
// stray object; it is not a partial backup; Delete removes it.
func TestLeftoverJournalIsHarmless(t *testing.T) {
	ctx := context.Background()
	src := genSource(22, 1<<20)
	r := newRig(t, 1)
	r.faulty.Add(targettest.Fault{Op: targettest.OpDelete, Match: func(n string) bool { return strings.Contains(n, journalMarker) }, Times: 1})
	o := resumeOpts()
	o.Resumable = true
	_, err := r.e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.Len(t, objectNames(t, r.posix, journalMarker), 1)

	requireSameData(t, src, restoreToFile(t, r.e, resumeID), "backup with a leftover journal")
	rep, err := r.e.Verify(ctx, resumeID, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Faults)
	parts, err := r.e.Partials(ctx, "")
	require.NoError(t, err)
	require.Empty(t, parts)
	o.Resume = true
	_, err = r.e.Backup(ctx, bytes.NewReader(src), o)
	require.ErrorIs(t, err, ErrExists)

	_, err = r.e.Delete(ctx, resumeID, DeleteOptions{})
	require.NoError(t, err)
	require.Empty(t, r.files(t))
}

func TestJournalNamesInBothLayouts(t *testing.T) {
	for _, n := range []naming{
		{layout: target.LayoutPosix},
		{layout: target.LayoutPosix, container: "backups/c"},
		{layout: target.LayoutObject, zone: "nova"},
	} {
		loc := n.newLocation("vol", "abcd-1234", fixedNow()())
		name := loc.journalName()
		require.NotContains(t, name, loc.listPrefix(), "the journal must not carry the backup's prefix")
		require.False(t, strings.HasSuffix(name, metadataSuffix))
		got, id, ok := n.locateJournal(name)
		require.True(t, ok, name)
		require.Equal(t, loc, got, name)
		require.Equal(t, "abcd-1234", id)
		_, _, ok = n.locate(name)
		require.False(t, ok, "a journal is not a _metadata")
	}
	_, _, ok := naming{layout: target.LayoutObject}.locateJournal("volume_v/1/az_nova_backup_x_metadata")
	require.False(t, ok)
}

func TestPartialErrorUnwraps(t *testing.T) {
	cause := errors.New("boom")
	err := error(&PartialError{BackupID: "b", Objects: 2, Err: cause})
	require.ErrorIs(t, err, cause)
	require.Equal(t, "boom (partial backup b kept with 2 objects: resume it, or delete it)", err.Error())
}
