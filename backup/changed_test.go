package backup

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// readAtCounter is a source with ReadAt only (Read fails), counting bytes.
type readAtCounter struct {
	data []byte
	read atomic.Int64
}

func (s *readAtCounter) Read([]byte) (int, error) {
	return 0, errors.New("sequential read of a Changed source")
}

func (s *readAtCounter) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(s.data).ReadAt(p, off)
	s.read.Add(int64(n))
	return n, err
}

func TestChangedExtentsReadOnlyWhatChanged(t *testing.T) {
	const bs, obj = 4096, 16 * 4096
	e, mem := newMemEngine(t, target.LayoutObject)
	data := genSource(11, 40*obj+777)
	opts := BackupOptions{VolumeID: "vol", ObjectSize: obj, BlockSize: bs}
	full, err := e.Backup(context.Background(), bytes.NewReader(data), opts)
	require.NoError(t, err)

	// Change three places; tell the engine exactly where.
	changed := []Extent{{Offset: 5*bs + 100, Length: 10}, {Offset: 100*bs - 5, Length: 10}, {Offset: 300 * bs, Length: 3 * bs}}
	for _, x := range changed {
		for i := x.Offset; i < x.Offset+x.Length; i++ {
			data[i] ^= 0xa5
		}
	}
	src := &readAtCounter{data: data}
	o := opts
	o.Incremental, o.Changed, o.Size = true, changed, int64(len(data))
	inc, err := e.Backup(context.Background(), src, o)
	require.NoError(t, err)
	require.False(t, inc.Full)
	// Blocks 5, 99, 100, 300-302 and the last (short) block: nothing else.
	want := int64(6*bs + 777)
	require.Equal(t, want, src.read.Load())
	require.Equal(t, want, inc.BytesRead)
	require.EqualValues(t, 6*bs, inc.BytesChanged)

	// The manifest is exactly what a full read makes.
	e2, _ := newMemEngine(t, target.LayoutObject)
	ref, err := e2.Backup(context.Background(), bytes.NewReader(data), BackupOptions{VolumeID: "vol", ObjectSize: obj, BlockSize: bs})
	require.NoError(t, err)
	m1, err := e.manifest(context.Background(), inc.Info)
	require.NoError(t, err)
	m2, err := e2.manifest(context.Background(), ref.Info)
	require.NoError(t, err)
	require.Equal(t, m2.Hashes, m1.Hashes)

	requireSameData(t, data, restoreToFile(t, e, inc.Info.ID), "restore of a Changed incremental")
	_ = mem
	_ = full
}

func TestChangedExtentsNothingChangedAndGrowthInLastBlock(t *testing.T) {
	const bs, obj = 4096, 8 * 4096
	e, _ := newMemEngine(t, target.LayoutObject)
	data := genSource(12, 10*obj+100)
	opts := BackupOptions{VolumeID: "vol", ObjectSize: obj, BlockSize: bs}
	_, err := e.Backup(context.Background(), bytes.NewReader(data), opts)
	require.NoError(t, err)

	// The source grows inside its last block; Changed says nothing changed:
	// the last block is read anyway.
	data = append(data, bytes.Repeat([]byte("x"), 2000)...)
	src := &readAtCounter{data: data}
	o := opts
	o.Incremental, o.Changed, o.Size = true, []Extent{}, int64(len(data))
	inc, err := e.Backup(context.Background(), src, o)
	require.NoError(t, err)
	require.EqualValues(t, 2100, src.read.Load())
	require.Equal(t, 1, inc.Objects)
	requireSameData(t, data, restoreToFile(t, e, inc.Info.ID), "restore after growth")
}

func TestChangedExtentsNeedReaderAt(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	data := genSource(13, 64<<10)
	_, err := e.Backup(context.Background(), bytes.NewReader(data), BackupOptions{VolumeID: "vol", ObjectSize: 32768, BlockSize: 4096})
	require.NoError(t, err)
	_, err = e.Backup(context.Background(), struct{ *bytes.Buffer }{bytes.NewBuffer(data)},
		BackupOptions{VolumeID: "vol", ObjectSize: 32768, BlockSize: 4096, Incremental: true, Changed: []Extent{}, Size: int64(len(data))})
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.ErrorContains(t, err, "io.ReaderAt")
	_, err = e.Backup(context.Background(), bytes.NewReader(data), BackupOptions{VolumeID: "vol", Changed: []Extent{{Offset: -1}}})
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.ErrorContains(t, err, "changed extent 0")
}

// discardFile is a fixed-size destination that records discards.
type discardFile struct {
	memFile
	discarded int64
	zeroWrite bool
}

func (d *discardFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 0 && bytes.Count(p, []byte{0}) == len(p) && len(p) >= 1<<20 {
		d.zeroWrite = true
	}
	return d.memFile.WriteAt(p, off)
}

func (d *discardFile) Discard(off, n int64) error {
	clear(d.data[off : off+n])
	d.discarded += n
	return nil
}

func TestRestoreDiscardsGapsOnADiscarder(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	data := genSource(14, 6<<20)
	clear(data[1<<20 : 4<<20]) // a 3 MiB zero run, left out of the full backup
	res, err := e.Backup(context.Background(), bytes.NewReader(data), BackupOptions{VolumeID: "vol", ObjectSize: 1 << 20, BlockSize: 4096})
	require.NoError(t, err)
	dst := &discardFile{memFile: memFile{data: bytes.Repeat([]byte{0xee}, len(data))}} // old data
	rr, err := e.Restore(context.Background(), res.Info.ID, dst, RestoreOptions{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, rr.ZeroBytes, int64(3<<20))
	require.Equal(t, rr.ZeroBytes, dst.discarded)
	require.False(t, dst.zeroWrite, "zeros were written instead of discarded")
	requireSameData(t, data, dst.data, "restore onto a discarder")
}
