package backup

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

type streamOnly struct{ io.Reader }

func TestRoundTrips(t *testing.T) {
	const bs = 4096
	for _, layout := range []target.Layout{target.LayoutPosix, target.LayoutObject} {
		for _, codec := range []string{"none", "zlib", "gzip", "bz2", "zstd", "OFF"} {
			for _, size := range []int{0, 1, bs*3 + 5, 64*bs + 7, 300 * bs} {
				name := fmt.Sprintf("%s/%s/%d", layout, codec, size)
				t.Run(name, func(t *testing.T) {
					e, _ := newMemEngine(t, layout)
					ctx := context.Background()
					src := genSource(uint64(size), size)
					opts := BackupOptions{VolumeID: "vol-1", Compression: codec, ObjectSize: 16 * bs, BlockSize: bs, Name: "n"}
					full, err := e.Backup(ctx, bytes.NewReader(src), opts)
					require.NoError(t, err)
					require.True(t, full.Full)
					require.EqualValues(t, size, full.BytesRead)
					require.EqualValues(t, size, full.Info.Size)
					requireSameData(t, src, restoreToFile(t, e, full.Info.ID), "full")

					// Incremental from a stream of unknown size.
					mod := append([]byte{}, src...)
					mutate(7, mod, 5)
					opts.Incremental = true
					opts.Size = -1
					inc, err := e.Backup(ctx, streamOnly{bytes.NewReader(mod)}, opts)
					require.NoError(t, err)
					require.False(t, inc.Full)
					require.Equal(t, full.Info.ID, inc.Info.ParentID)
					require.LessOrEqual(t, inc.BytesChanged, int64(5*2*bs))
					requireSameData(t, mod, restoreToFile(t, e, inc.Info.ID), "incremental")
					// The full still restores to the original.
					requireSameData(t, src, restoreToFile(t, e, full.Info.ID), "full after incremental")

					rep, err := e.Verify(ctx, inc.Info.ID, VerifyOptions{Chain: true})
					require.NoError(t, err)
					require.True(t, rep.OK(), "%v", rep.Faults)
				})
			}
		}
	}
}

func TestZerosAreSkippedInFullAndStoredWhenTheyAppear(t *testing.T) {
	const bs = 4096
	e, _ := newMemEngine(t, target.LayoutObject)
	ctx := context.Background()
	src := make([]byte, 2<<20)
	copy(src[100:], "data at the start")
	copy(src[len(src)-10:], "the end")
	opts := BackupOptions{VolumeID: "v", ObjectSize: 256 * bs, BlockSize: bs}
	full, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	require.EqualValues(t, 2*bs, full.BytesChanged, "only the two data blocks are stored")
	require.Equal(t, 2, full.Objects)

	// A source that ends in zeros still stores its last block, so Cinder's
	// restore (seek and write, never truncate) gives a file of full length.
	tailZeros := append(append([]byte{}, src[:1<<20]...), make([]byte, 1<<20)...)
	tz, err := e.Backup(ctx, streamOnly{bytes.NewReader(tailZeros)}, BackupOptions{VolumeID: "v", ObjectSize: 256 * bs, BlockSize: bs})
	require.NoError(t, err)
	objs := tz.Info.Metadata.Objects
	require.EqualValues(t, len(tailZeros), objs[len(objs)-1].End())
	require.EqualValues(t, 2*bs, tz.BytesChanged, "the data block and the zero tail block")

	// A destination full of old data gets its gaps zero-filled.
	dst := &memFile{data: bytes.Repeat([]byte{0xAA}, len(src)+100)}
	res, err := e.Restore(ctx, full.Info.ID, dst, RestoreOptions{})
	require.NoError(t, err)
	require.EqualValues(t, len(src)-2*bs, res.ZeroBytes)
	requireSameData(t, src, dst.data[:len(src)], "restore over old data")

	// A block of data that becomes zeros is stored by the incremental.
	mod := append([]byte{}, src...)
	clear(mod[:bs])
	opts.ParentID = full.Info.ID
	inc, err := e.Backup(ctx, bytes.NewReader(mod), opts)
	require.NoError(t, err)
	require.EqualValues(t, bs, inc.BytesChanged)
	requireSameData(t, mod, restoreToFile(t, e, inc.Info.ID), "incremental")

	// StoreZeros stores everything, as Cinder does.
	opts.ParentID, opts.StoreZeros = "", true
	all, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	require.EqualValues(t, len(src), all.BytesChanged)
}

func TestParallelAndSequentialSourcesAgree(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutObject)
	ctx := context.Background()
	src := genSource(3, 1<<20+333)
	opts := BackupOptions{VolumeID: "v", ObjectSize: 64 << 10, BlockSize: 4096}
	a, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	b, err := e.Backup(ctx, streamOnly{bytes.NewReader(src)}, opts)
	require.NoError(t, err)
	ma, err := e.manifest(ctx, a.Info)
	require.NoError(t, err)
	mb, err := e.manifest(ctx, b.Info)
	require.NoError(t, err)
	require.Equal(t, ma.Hashes, mb.Hashes)
	require.Equal(t, len(a.Info.Metadata.Objects), len(b.Info.Metadata.Objects))
	for i := range a.Info.Metadata.Objects {
		oa, ob := a.Info.Metadata.Objects[i], b.Info.Metadata.Objects[i]
		require.Equal(t, oa.Offset, ob.Offset)
		require.Equal(t, oa.MD5, ob.MD5)
		require.True(t, strings.HasSuffix(oa.Name, fmt.Sprintf("-%05d", i+1)), "objects are numbered in source order")
	}
	_ = mem
}

func TestProgressIsAccurate(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	src := genSource(5, 3<<20)
	var last Progress
	calls := 0
	res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{
		VolumeID: "v", ObjectSize: 256 << 10, BlockSize: 4096,
		Progress: func(p Progress) { last = p; calls++ },
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, calls, 1)
	require.True(t, last.Done)
	require.EqualValues(t, len(src), last.BytesDone)
	require.EqualValues(t, len(src), last.BytesTotal)
	require.Equal(t, 100.0, last.Percent)
	require.Equal(t, res.Objects, last.Objects)
	require.Equal(t, res.BytesStored, last.BytesStored)
	require.Less(t, last.BytesStored, last.BytesChanged, "text compresses")
}

func TestListShowChainDelete(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutPosix)
	ctx := context.Background()
	src := genSource(1, 200<<10)
	opts := BackupOptions{VolumeID: "11111111-1111-4111-8111-111111111111", ObjectSize: 64 << 10, BlockSize: 4096}
	full, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	opts.Incremental = true
	mutate(1, src, 2)
	inc1, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	mutate(2, src, 2)
	inc2, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	require.Equal(t, inc1.Info.ID, inc2.Info.ParentID, "the latest backup is the parent")
	other, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "other-volume", ObjectSize: 64 << 10, BlockSize: 4096})
	require.NoError(t, err)

	all, err := e.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 4)
	vol, err := e.List(ctx, opts.VolumeID)
	require.NoError(t, err)
	require.Equal(t, []string{full.Info.ID, inc1.Info.ID, inc2.Info.ID}, []string{vol[0].ID, vol[1].ID, vol[2].ID})
	chain, err := e.Chain(ctx, inc2.Info.ID)
	require.NoError(t, err)
	require.Len(t, chain, 3)
	require.Equal(t, full.Info.ID, chain[0].ID)

	// Posix layout: ID[0:2]/ID[2:4]/ID/volume_<vol>_<ts>_backup_<id>_metadata.
	id := full.Info.ID
	names := objectNames(t, mem, id+"_metadata")
	require.Len(t, names, 1)
	require.Regexp(t, "^"+id[0:2]+"/"+id[2:4]+"/"+id+"/volume_"+opts.VolumeID+`_\d{14}_backup_`+id+"_metadata$", names[0])

	_, err = e.Delete(ctx, inc1.Info.ID, DeleteOptions{})
	require.ErrorIs(t, err, ErrHasChildren)
	require.ErrorContains(t, err, inc2.Info.ID)
	deleted, err := e.Delete(ctx, full.Info.ID, DeleteOptions{Chain: true})
	require.NoError(t, err)
	require.Equal(t, []string{inc2.Info.ID, inc1.Info.ID, full.Info.ID}, deleted)
	for _, id := range deleted {
		require.Empty(t, objectNames(t, mem, id))
		_, err := e.Find(ctx, id, "")
		require.ErrorIs(t, err, ErrNotFound)
	}
	requireSameData(t, src, restoreToFile(t, e, other.Info.ID), "other volume untouched")
}

func TestObjectLayoutNames(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutObject)
	src := bytes.Repeat([]byte("no zeros here "), 1000)
	res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "vol", BackupID: "bk-1", BlockSize: 4096, ObjectSize: 8192})
	require.NoError(t, err)
	names := objectNames(t, mem, "")
	require.Len(t, names, 2+res.Objects)
	for _, n := range names {
		require.Regexp(t, `^volume_vol/\d{14}/az_nova_backup_bk-1(-\d{5}|_metadata|_sha256file)$`, n)
	}
	require.Equal(t, names[0], res.Info.Metadata.Objects[0].Name, "object layout names keep their slashes in _metadata")
}

func TestExistingBackupIDIsRefused(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutPosix)
	ctx := context.Background()
	opts := BackupOptions{VolumeID: "v", BackupID: "abcd-1", BlockSize: 4096, ObjectSize: 8192}
	_, err := e.Backup(ctx, bytes.NewReader([]byte("one")), opts)
	require.NoError(t, err)
	_, err = e.Backup(ctx, bytes.NewReader([]byte("two")), opts)
	require.ErrorIs(t, err, ErrExists)
	require.Equal(t, []byte("one"), restoreToFile(t, e, "abcd-1"))
}

func TestEmptyIncrementalWritesNoObjects(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	ctx := context.Background()
	src := genSource(9, 100000)
	opts := BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 8192}
	_, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	opts.Incremental = true
	inc, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	require.Zero(t, inc.Objects)
	require.Empty(t, inc.Info.Metadata.Objects)
	requireSameData(t, src, restoreToFile(t, e, inc.Info.ID), "no-change incremental")
}

func TestManifestMatchesSource(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	src := genSource(11, 50000)
	res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 16384})
	require.NoError(t, err)
	m, err := e.manifest(context.Background(), res.Info)
	require.NoError(t, err)
	require.Len(t, m.Hashes, 13)
	for i, h := range m.Hashes {
		require.Equal(t, sha.Sum(src[i*4096:min((i+1)*4096, len(src))]), h, "block %d", i)
	}
}

// md5Recorder is a memory target that asks for PutOptions.ContentMD5 (or not)
// and records what it gets.
type md5Recorder struct {
	*targettest.Memory
	wants bool
	mu    sync.Mutex
	sums  map[string][]byte
}

func (m *md5Recorder) UsesContentMD5() bool { return m.wants }

func (m *md5Recorder) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	m.mu.Lock()
	m.sums[name] = opts.ContentMD5
	m.mu.Unlock()
	return m.Memory.Put(ctx, name, body, size, opts)
}

func TestContentMD5OnlyForTargetsThatUseIt(t *testing.T) {
	src := append(bytes.Repeat([]byte("compressible text "), 20000), genSource(1, 100000)...)
	for _, wants := range []bool{true, false} {
		rec := &md5Recorder{Memory: targettest.NewMemory(), wants: wants, sums: map[string][]byte{}}
		retried, err := target.NewRetry(rec, target.RetryPolicy{})
		require.NoError(t, err)
		e, err := New(retried, Config{})
		require.NoError(t, err)
		res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "v", BlockSize: 4096, ObjectSize: 65536, StoreZeros: true})
		require.NoError(t, err)
		compressed := 0
		for _, o := range res.Info.Metadata.Objects {
			stored := get(t, rec.Memory, o.Name)
			want := md5.Sum(stored)
			switch {
			case o.Compression == "none":
				require.Equal(t, want[:], rec.sums[o.Name], "a raw object's MD5 is free: always sent")
			case wants:
				compressed++
				require.Equal(t, want[:], rec.sums[o.Name], "MD5 of the stored (compressed) bytes")
			default:
				compressed++
				require.Nil(t, rec.sums[o.Name], "not computed for a target that ignores it")
			}
		}
		require.Positive(t, compressed)
	}
}
