package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/compress"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestBadOptionsNameTheFieldAndFix(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutPosix)
	src := genSource(1, 100000)
	for _, c := range []struct {
		opts BackupOptions
		want string
	}{
		{BackupOptions{}, "volume ID is empty"},
		{BackupOptions{VolumeID: "a/b"}, "must not contain '/'"},
		{BackupOptions{VolumeID: "v", ObjectSize: 100000, BlockSize: 32768}, "object size 100000 is not a multiple of block size 32768: use 98304 or 131072"},
		{BackupOptions{VolumeID: "v", ObjectSize: -1}, "object size -1 must be a positive number"},
		{BackupOptions{VolumeID: "v", BlockSize: -4096}, "block size -4096 must be a positive number"},
		{BackupOptions{VolumeID: "v", Size: -7}, "size -7"},
		{BackupOptions{VolumeID: "v", BackupID: "ab"}, "needs at least 4 characters"},
		{BackupOptions{VolumeID: "v", BackupID: "abcd", ParentID: "abcd"}, "the backup's own ID"},
		{BackupOptions{VolumeID: "v", Compression: "lz4"}, `compression "lz4" is not supported`},
		{BackupOptions{VolumeID: "v", Compression: "zlib", CompressionLevel: 42}, "level"},
		{BackupOptions{VolumeID: "v", ObjectSize: 1 << 32}, "too large"},
	} {
		_, err := e.Backup(context.Background(), bytes.NewReader(src), c.opts)
		require.ErrorIs(t, err, ErrInvalidOptions, c.want)
		require.ErrorContains(t, err, c.want)
	}
	require.Empty(t, objectNames(t, mem, ""), "a refused backup stores nothing")
	_, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "v", Compression: "lz4"})
	require.ErrorIs(t, err, compress.ErrUnknownCodec)

	_, err = New(mem, Config{Layout: "tape"})
	require.ErrorContains(t, err, `layout "tape"`)
	_, err = New(mem, Config{Workers: -1})
	require.ErrorContains(t, err, "workers -1")
}

func TestSourceShorterThanClaimed(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutObject)
	src := genSource(2, 100000)
	for _, r := range []io.Reader{bytes.NewReader(src), streamOnly{bytes.NewReader(src)}} {
		_, err := e.Backup(context.Background(), r, BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384, Size: 200000})
		require.ErrorIs(t, err, ErrInvalidOptions)
		require.ErrorContains(t, err, "ended at byte 100000, but its size is 200000")
	}
	require.Empty(t, objectNames(t, mem, ""), "a failed backup leaves nothing behind")
}

func TestReadErrorLeavesNothing(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutObject)
	boom := errors.New("I/O error on the volume")
	r := io.MultiReader(bytes.NewReader(genSource(3, 300000)), iotest.ErrReader(boom))
	_, err := e.Backup(context.Background(), r, BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
	require.ErrorIs(t, err, boom)
	require.Empty(t, objectNames(t, mem, ""))
}

// cancellingReader cancels the backup's context after n bytes.
type cancellingReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestCancelledBackupLeavesNothing(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutPosix)
	ctx, cancel := context.WithCancel(context.Background())
	src := &cancellingReader{r: bytes.NewReader(genSource(4, 2<<20)), n: 1 << 20, cancel: cancel}
	_, err := e.Backup(ctx, streamOnly{src}, BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, objectNames(t, mem, ""))
	list, err := e.List(context.Background(), "")
	require.NoError(t, err)
	require.Empty(t, list)
}

func TestStoreFailureMidBackupLeavesNothingThatLooksComplete(t *testing.T) {
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e, err := New(faulty, Config{Workers: 2})
	require.NoError(t, err)
	// The 5th put fails, and so does every metadata put.
	faulty.Add(targettest.Fault{Op: targettest.OpPut, Match: func(n string) bool { return strings.HasSuffix(n, "-00005") }, Times: 1})
	_, err = e.Backup(context.Background(), bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536})
	require.ErrorIs(t, err, targettest.ErrInjected)
	require.Empty(t, objectNames(t, mem, ""))

	faulty.Add(targettest.Fault{Op: targettest.OpPut, Match: func(n string) bool { return strings.HasSuffix(n, "_metadata") }, Times: 1})
	_, err = e.Backup(context.Background(), bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536})
	require.ErrorIs(t, err, targettest.ErrInjected)
	require.Empty(t, objectNames(t, mem, ""))

	// And the next backup succeeds.
	res, err := e.Backup(context.Background(), bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536})
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte("x"), 1<<20), restoreToFile(t, e, res.Info.ID))
}

// setupDamage makes a full and an incremental backup and returns the engine,
// the memory target and the two infos.
func setupDamage(t *testing.T) (*Engine, *targettest.Memory, *Info, *Info, []byte) {
	t.Helper()
	e, mem := newMemEngine(t, target.LayoutPosix)
	ctx := context.Background()
	src := genSource(5, 400000)
	for i := range src {
		if src[i] == 0 {
			src[i] = 1 // no zero extents: every block lives in an object
		}
	}
	opts := BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 32768}
	full, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	mutate(3, src, 4)
	opts.ParentID = full.Info.ID
	inc, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	return e, mem, full.Info, inc.Info, src
}

func put(t *testing.T, tg target.Target, name string, data []byte) {
	t.Helper()
	require.NoError(t, tg.Put(context.Background(), name, bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
}

func get(t *testing.T, tg target.Target, name string) []byte {
	t.Helper()
	rc, err := tg.Get(context.Background(), name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

func restoreErr(e *Engine, id string) error {
	_, err := e.Restore(context.Background(), id, &memFile{data: make([]byte, 1<<20)}, RestoreOptions{})
	return err
}

func TestDamagedBackupsGiveClearErrors(t *testing.T) {
	type damage struct {
		name  string
		do    func(t *testing.T, mem *targettest.Memory, full, inc *Info)
		want  string
		check func(t *testing.T, err error)
	}
	objName := func(b *Info, i int) string { return b.loc.full(b.Metadata.Objects[i].Name) }
	cases := []damage{
		{"metadata missing", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			require.NoError(t, mem.Delete(context.Background(), full.loc.metadataName()))
		}, "needs its parent", nil},
		{"metadata truncated", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			data := get(t, mem, full.loc.metadataName())
			put(t, mem, full.loc.metadataName(), data[:len(data)/2])
		}, "unreadable backup metadata", nil},
		{"metadata not json", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			put(t, mem, full.loc.metadataName(), []byte("garbage"))
		}, "unreadable backup metadata", nil},
		{"metadata bad md5 field", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			data := get(t, mem, full.loc.metadataName())
			put(t, mem, full.loc.metadataName(), bytes.Replace(data, []byte(`"md5": "`), []byte(`"md5": "x`), 1))
		}, "md5 is missing or not 32 hex digits", nil},
		{"sha256file missing", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			require.NoError(t, mem.Delete(context.Background(), inc.loc.shaName()))
		}, "has no", nil},
		{"sha256file truncated", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			data := get(t, mem, inc.loc.shaName())
			put(t, mem, inc.loc.shaName(), data[:len(data)-30])
		}, "unreadable sha256 manifest", nil},
		{"object missing", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			require.NoError(t, mem.Delete(context.Background(), objName(full, 2)))
		}, "missing", nil},
		{"object bit flipped", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			name := objName(full, 1)
			data := get(t, mem, name)
			data[len(data)/2] ^= 1
			put(t, mem, name, data)
		}, "of backup", nil},
		{"object truncated", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			name := objName(full, 1)
			data := get(t, mem, name)
			put(t, mem, name, data[:len(data)-10])
		}, "of backup", nil},
		{"object grown past its data", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			name := objName(full, 1)
			put(t, mem, name, make([]byte, full.Metadata.Objects[1].Length+1000))
		}, "holds more than", nil},
		{"stray object", func(t *testing.T, mem *targettest.Memory, full, inc *Info) {
			put(t, mem, full.loc.full(full.loc.Prefix)+"-99999", []byte("stray"))
		}, "stray object", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, mem, full, inc, _ := setupDamage(t)
			c.do(t, mem, full, inc)
			before := objectNames(t, mem, "")
			err := restoreErr(e, inc.ID)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound), "%v", err)
			require.ErrorContains(t, err, c.want)
			// Verify reports it too (or cannot start, for a broken catalog).
			rep, verr := e.Verify(context.Background(), inc.ID, VerifyOptions{Chain: true})
			if verr == nil {
				require.False(t, rep.OK(), "verify must find the damage")
			}
			// Nothing else was touched.
			after := objectNames(t, mem, "")
			require.Subset(t, after, before, "nothing was deleted")
		})
	}
}

func TestVerifyListsEveryFault(t *testing.T) {
	e, mem, full, inc, _ := setupDamage(t)
	rep, err := e.Verify(context.Background(), inc.ID, VerifyOptions{Chain: true})
	require.NoError(t, err)
	require.True(t, rep.OK())
	require.Equal(t, []string{full.ID, inc.ID}, rep.Backups)

	first := full.loc.full(full.Metadata.Objects[0].Name)
	data := get(t, mem, first)
	data[0] ^= 0xff
	put(t, mem, first, data)
	require.NoError(t, mem.Delete(context.Background(), full.loc.full(full.Metadata.Objects[3].Name)))
	rep, err = e.Verify(context.Background(), inc.ID, VerifyOptions{Chain: true})
	require.NoError(t, err)
	require.Len(t, rep.Faults, 2, "%v", rep.Faults)
	require.Contains(t, rep.Faults[0].String()+rep.Faults[1].String(), "missing from the target")
}

func TestTornWriteIsCaughtOnRestore(t *testing.T) {
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e, err := New(faulty, Config{})
	require.NoError(t, err)
	src := genSource(6, 200000)
	res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536, StoreZeros: true})
	require.NoError(t, err)
	// A store without atomic writes tears a later overwrite of an object.
	name := res.Info.Metadata.Objects[1].Name
	data := get(t, mem, name)
	faulty.Add(targettest.Fault{Op: targettest.OpPut, Torn: true, Times: 1})
	require.Error(t, faulty.Put(context.Background(), name, bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	err = restoreErr(e, res.Info.ID)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, name)
}

func TestCorruptReadsAreCaught(t *testing.T) {
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e, err := New(faulty, Config{})
	require.NoError(t, err)
	res, err := e.Backup(context.Background(), bytes.NewReader(genSource(7, 200000)), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536, StoreZeros: true, Compression: "none"})
	require.NoError(t, err)
	faulty.Add(targettest.Fault{Op: targettest.OpGet, Corrupt: true, Match: func(n string) bool { return strings.HasSuffix(n, "-00002") }})
	// The SHA-256 manifest catches it, naming the object.
	err = restoreErr(e, res.Info.ID)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "SHA-256")
	require.ErrorContains(t, err, "-00002")
	// With VerifyMD5, the object's MD5 catches it first.
	_, err = e.Restore(context.Background(), res.Info.ID, &memFile{data: make([]byte, 1<<20)}, RestoreOptions{VerifyMD5: true})
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "MD5")
	require.ErrorContains(t, err, "-00002")
}

func TestParentProblems(t *testing.T) {
	ctx := context.Background()
	src := genSource(8, 100000)
	t.Run("missing parent", func(t *testing.T) {
		e, _ := newMemEngine(t, target.LayoutObject)
		opts := BackupOptions{VolumeID: "v", ParentID: "no-such-backup", BlockSize: 4096, ObjectSize: 16384}
		_, err := e.Backup(ctx, bytes.NewReader(src), opts)
		require.ErrorIs(t, err, ErrParentUnusable)
		require.ErrorContains(t, err, "no-such-backup")
		opts.FallbackToFull = true
		res, err := e.Backup(ctx, bytes.NewReader(src), opts)
		require.NoError(t, err)
		require.True(t, res.Full)
		require.Contains(t, res.FallbackReason, "no-such-backup")
		require.Empty(t, res.Info.ParentID)
		requireSameData(t, src, restoreToFile(t, e, res.Info.ID), "fallback full")
	})
	t.Run("no backup to be incremental on", func(t *testing.T) {
		e, _ := newMemEngine(t, target.LayoutObject)
		_, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", Incremental: true})
		require.ErrorIs(t, err, ErrParentUnusable)
		require.ErrorContains(t, err, "do a full backup first")
	})
	t.Run("block size changed", func(t *testing.T) {
		e, _ := newMemEngine(t, target.LayoutObject)
		full, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
		require.NoError(t, err)
		_, err = e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", ParentID: full.Info.ID, BlockSize: 8192, ObjectSize: 16384})
		require.ErrorIs(t, err, ErrParentUnusable)
		require.ErrorContains(t, err, "hash block size has changed from the parent's 4096 to 8192 bytes: use --block-size 4096")
	})
	t.Run("object size may change", func(t *testing.T) {
		e, _ := newMemEngine(t, target.LayoutObject)
		full, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
		require.NoError(t, err)
		mod := append([]byte{}, src...)
		mutate(1, mod, 3)
		inc, err := e.Backup(ctx, bytes.NewReader(mod), BackupOptions{VolumeID: "v", ParentID: full.Info.ID, BlockSize: 4096, ObjectSize: 8192})
		require.NoError(t, err)
		requireSameData(t, mod, restoreToFile(t, e, inc.Info.ID), "")
	})
	t.Run("source grew", func(t *testing.T) {
		e, _ := newMemEngine(t, target.LayoutObject)
		full, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
		require.NoError(t, err)
		bigger := append(append([]byte{}, src...), make([]byte, 10000)...)
		_, err = e.Backup(ctx, bytes.NewReader(bigger), BackupOptions{VolumeID: "v", ParentID: full.Info.ID, BlockSize: 4096, ObjectSize: 16384})
		require.ErrorIs(t, err, ErrParentUnusable)
		require.ErrorContains(t, err, "the source grew")
		// A stream of unknown size finds out as it reads.
		_, err = e.Backup(ctx, streamOnly{bytes.NewReader(bigger)}, BackupOptions{VolumeID: "v", ParentID: full.Info.ID, BlockSize: 4096, ObjectSize: 16384})
		require.ErrorIs(t, err, ErrParentUnusable)
		res, err := e.Backup(ctx, bytes.NewReader(bigger), BackupOptions{VolumeID: "v", ParentID: full.Info.ID, BlockSize: 4096, ObjectSize: 16384, FallbackToFull: true})
		require.NoError(t, err)
		require.True(t, res.Full)
	})
	t.Run("parent of another volume", func(t *testing.T) {
		e, _ := newMemEngine(t, target.LayoutObject)
		other, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "other", BlockSize: 4096, ObjectSize: 16384})
		require.NoError(t, err)
		_, err = e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "v", ParentID: other.Info.ID, BlockSize: 4096, ObjectSize: 16384})
		require.ErrorIs(t, err, ErrParentUnusable)
		require.ErrorContains(t, err, "is a backup of volume other, not v")
	})
}

func TestRestoreDestinationTooSmall(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	src := genSource(9, 100000)
	res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
	require.NoError(t, err)
	dst := &memFile{data: bytes.Repeat([]byte{7}, 50000)}
	_, err = e.Restore(context.Background(), res.Info.ID, dst, RestoreOptions{})
	require.ErrorIs(t, err, ErrDestination)
	require.ErrorContains(t, err, "holds 50000 bytes but the backup needs 100000")
	require.Equal(t, bytes.Repeat([]byte{7}, 50000), dst.data, "nothing was written")
}

func TestRestoreUnknownBackup(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutPosix)
	err := restoreErr(e, "does-not-exist")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "no backup with ID does-not-exist")
}

func TestCancelledRestore(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutPosix)
	res, err := e.Backup(context.Background(), bytes.NewReader(genSource(10, 1<<20)), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.Restore(ctx, res.Info.ID, &memFile{data: make([]byte, 2<<20)}, RestoreOptions{})
	require.ErrorIs(t, err, context.Canceled)
}

// TestLostReplyOnFinalWritesIsNotAConflict: the store did the create but the
// reply was lost; the retry sees ErrExists for its own object.
func TestLostReplyOnFinalWritesIsNotAConflict(t *testing.T) {
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	retried, err := target.NewRetry(faulty, target.RetryPolicy{})
	require.NoError(t, err)
	e, err := New(retried, Config{})
	require.NoError(t, err)
	faulty.Add(targettest.Fault{Op: targettest.OpPut, After: true, Times: 2, Match: func(n string) bool {
		return strings.HasSuffix(n, "_metadata") || strings.HasSuffix(n, "_sha256file")
	}})
	src := genSource(12, 100000)
	res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
	require.NoError(t, err)
	require.Equal(t, 2, faulty.Injected(targettest.OpPut))
	requireSameData(t, src, restoreToFile(t, e, res.Info.ID), "after lost replies")
}
