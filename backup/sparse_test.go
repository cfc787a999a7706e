package backup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// sparseFile makes a file of size bytes with data only at the given
// offsets (holes elsewhere) and returns its path and contents.
func sparseFile(t *testing.T, size int64, pieces map[int64][]byte) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sparse.img")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	want := make([]byte, size)
	for off, p := range pieces {
		_, err := f.WriteAt(p, off)
		require.NoError(t, err)
		copy(want[off:], p)
	}
	return path, want
}

func TestSparseHolesAreNotRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SEEK_DATA/SEEK_HOLE are used on Linux only")
	}
	const size = 256 << 20
	piece := genSource(21, 1<<20)
	path, want := sparseFile(t, size, map[int64][]byte{0: piece, 100 << 20: piece, size - 5000: piece[:5000]})
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	if dataExtents(f, size) == nil {
		t.Skip("this filesystem reports no holes (SEEK_DATA unsupported)")
	}
	e, _ := newMemEngine(t, target.LayoutObject)
	res, err := e.Backup(context.Background(), f, BackupOptions{VolumeID: "vol", ObjectSize: 4 << 20, BlockSize: 32768})
	require.NoError(t, err)
	// The two 1 MiB pieces and the block holding the tail: filesystems
	// report data in pages or blocks, so allow a little more.
	require.Less(t, res.BytesRead, int64(3<<20), "holes were read")
	require.GreaterOrEqual(t, res.BytesRead, int64(2<<20+5000))
	require.EqualValues(t, size, res.Info.Size)
	requireSameData(t, want, restoreToFile(t, e, res.Info.ID), "restore of a sparse file")

	// The same file read whole gives the same manifest.
	e2, _ := newMemEngine(t, target.LayoutObject)
	dense, err := e2.Backup(context.Background(), bytes.NewReader(want), BackupOptions{VolumeID: "vol", ObjectSize: 4 << 20, BlockSize: 32768})
	require.NoError(t, err)
	m1, err := e.manifest(context.Background(), res.Info)
	require.NoError(t, err)
	m2, err := e2.manifest(context.Background(), dense.Info)
	require.NoError(t, err)
	require.Equal(t, m2.Hashes, m1.Hashes)

	// An incremental of the sparse file after a write into a hole stores
	// just that, and ReadHoles reads everything.
	g, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	written := bytes.Repeat([]byte("new data"), 65536/8)
	_, err = g.WriteAt(written, 50<<20)
	require.NoError(t, err)
	require.NoError(t, g.Close())
	copy(want[50<<20:], written)
	f2, err := os.Open(path)
	require.NoError(t, err)
	defer f2.Close()
	inc, err := e.Backup(context.Background(), f2, BackupOptions{VolumeID: "vol", ObjectSize: 4 << 20, BlockSize: 32768, Incremental: true})
	require.NoError(t, err)
	require.EqualValues(t, 65536, inc.BytesChanged)
	requireSameData(t, want, restoreToFile(t, e, inc.Info.ID), "restore of a sparse incremental")
	f3, err := os.Open(path)
	require.NoError(t, err)
	defer f3.Close()
	whole, err := e.Backup(context.Background(), f3, BackupOptions{VolumeID: "vol", ObjectSize: 4 << 20, BlockSize: 32768, Incremental: true, ReadHoles: true})
	require.NoError(t, err)
	require.EqualValues(t, size, whole.BytesRead)
	require.Zero(t, whole.Objects)
}

func TestDenseFileHasNoExtents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dense.img")
	require.NoError(t, os.WriteFile(path, genSource(22, 1<<20), 0o600))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.Nil(t, dataExtents(f, 1<<20))
	require.Nil(t, dataExtents(bytes.NewReader(nil), 10), "not a file")
}
