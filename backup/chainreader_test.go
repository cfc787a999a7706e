package backup

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// testChain is a full backup and two incrementals of one volume, cut with
// three object sizes, with a long zero run (skipped by the full), a data
// range the first incremental zeroes and the second writes into the zero
// run, and a size that is not a whole number of blocks.
type testChain struct {
	ids    []string // full first
	images [][]byte // what each backup restores to
	sizes  []int64  // the object size each was cut with
	opts   []BackupOptions
}

const chainBlock = 4096

func makeTestChain(t *testing.T, e *Engine, volumeID, codec string, sparseFull bool) *testChain {
	t.Helper()
	ctx := context.Background()
	const size = 3<<20 + 123
	data := make([]byte, size)
	copy(data, genSource(50, 1<<20))
	copy(data[2<<20+512<<10:], genSource(51, size-(2<<20+512<<10)))
	c := &testChain{}
	for i, objSize := range []int64{16384, 8192, 32768} {
		switch i {
		case 1:
			clear(data[100000:300000]) // data becomes zeros in a newer layer
			mutate(52, data[:1<<20], 5)
		case 2:
			copy(data[(1<<20)+40000:], genSource(53, 70000)) // into the zero run
			mutate(54, data[2<<20+512<<10:], 4)
		}
		o := BackupOptions{VolumeID: volumeID, BlockSize: chainBlock, ObjectSize: objSize, Compression: codec, Incremental: i > 0}
		var src io.Reader = bytes.NewReader(data)
		if i == 0 && sparseFull {
			f := sparseCopy(t, data)
			defer f.Close()
			src = f
		}
		res, err := e.Backup(ctx, src, o)
		require.NoError(t, err)
		require.Equal(t, i == 0, res.Full)
		c.ids = append(c.ids, res.Info.ID)
		c.images = append(c.images, bytes.Clone(data))
		c.sizes = append(c.sizes, objSize)
		c.opts = append(c.opts, o)
	}
	return c
}

// sparseCopy writes data into a new file, leaving its zero runs of 64 KiB
// or more as holes.
func sparseCopy(t *testing.T, data []byte) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "sparse.img"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(int64(len(data))))
	const step = 64 << 10
	zero := make([]byte, step)
	for off := 0; off < len(data); off += step {
		part := data[off:min(off+step, len(data))]
		if !bytes.Equal(part, zero[:len(part)]) {
			_, err := f.WriteAt(part, int64(off))
			require.NoError(t, err)
		}
	}
	return f
}

func (c *testChain) top() string   { return c.ids[len(c.ids)-1] }
func (c *testChain) image() []byte { return c.images[len(c.images)-1] }

func TestImageReadsTheChain(t *testing.T) {
	for _, codec := range []string{"none", "zlib", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			e, _ := newMemEngine(t, target.LayoutObject)
			c := makeTestChain(t, e, "vol", codec, false)
			ctx := context.Background()
			for i, id := range c.ids {
				im, err := e.OpenImage(ctx, id, ImageOptions{})
				require.NoError(t, err)
				require.EqualValues(t, len(c.images[i]), im.Size())
				require.Len(t, im.Chain(), i+1)
				got, err := io.ReadAll(io.NewSectionReader(im, 0, im.Size()))
				require.NoError(t, err)
				requireSameData(t, c.images[i], got, "image of "+id)
			}

			im, err := e.OpenImage(ctx, c.top(), ImageOptions{CacheObjects: 2})
			require.NoError(t, err)
			want := c.image()
			r := rand.New(rand.NewPCG(1, 2))
			for range 300 {
				off := r.Int64N(im.Size() + 10)
				n := r.IntN(3 * chainBlock * (1 + r.IntN(8)))
				buf := make([]byte, n)
				for i := range buf {
					buf[i] = 0xee // reads must overwrite, zeros included
				}
				got, err := im.ReadAt(buf, off)
				end := min(off+int64(n), int64(len(want)))
				if off >= int64(len(want)) {
					if n > 0 {
						require.ErrorIs(t, err, io.EOF)
					}
					require.Zero(t, got)
					continue
				}
				if end-off < int64(n) {
					require.ErrorIs(t, err, io.EOF)
				} else {
					require.NoError(t, err)
				}
				require.EqualValues(t, end-off, got)
				requireSameData(t, want[off:end], buf[:got], "ReadAt")
			}
			_, err = im.ReadAt(make([]byte, 1), -1)
			require.ErrorIs(t, err, ErrInvalidOptions)
		})
	}
}

func TestImageConcurrentReads(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutPosix)
	c := makeTestChain(t, e, "vol", "zlib", false)
	im, err := e.OpenImage(context.Background(), c.top(), ImageOptions{CacheObjects: 1})
	require.NoError(t, err)
	want := c.image()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 60 {
				off := r.Int64N(int64(len(want)))
				buf := make([]byte, min(int64(1+r.IntN(40000)), int64(len(want))-off))
				n, err := im.ReadAt(buf, off)
				if err != nil || !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d bytes at %d): %d, %v", len(buf), off, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestImageReadsOnlyWhatItNeeds counts the objects fetched: a small read
// fetches one object, and a sequential read fetches each object it needs
// once, even with a one-object cache.
func TestImageReadsOnlyWhatItNeeds(t *testing.T) {
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e, err := New(faulty, Config{Now: fixedNow(), Workers: 2})
	require.NoError(t, err)
	c := makeTestChain(t, e, "vol", "zlib", false)
	ctx := context.Background()
	im, err := e.OpenImage(ctx, c.top(), ImageOptions{CacheObjects: 1})
	require.NoError(t, err)

	before := faulty.Calls(targettest.OpGet)
	buf := make([]byte, 100)
	_, err = im.ReadAt(buf, 3)
	require.NoError(t, err)
	require.Equal(t, 1, faulty.Calls(targettest.OpGet)-before, "a 100-byte read fetched more than one object")
	_, err = im.ReadAt(buf, 200)
	require.NoError(t, err)
	require.Equal(t, 1, faulty.Calls(targettest.OpGet)-before, "a cached object was fetched again")

	// A zero range no object holds fetches nothing.
	_, err = im.ReadAt(buf, (1<<20)+400000)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 100), buf)
	require.Equal(t, 1, faulty.Calls(targettest.OpGet)-before)

	seen := map[*restoreObject]bool{}
	for _, s := range im.segments {
		seen[s.obj] = true
	}
	needed := len(seen)
	// Block by block, with a cache that holds one object per layer.
	im2, err := e.OpenImage(ctx, c.top(), ImageOptions{CacheObjects: len(c.ids)})
	require.NoError(t, err)
	before = faulty.Calls(targettest.OpGet)
	block := make([]byte, chainBlock)
	for off := int64(0); off < im2.Size(); off += chainBlock {
		_, err := im2.ReadAt(block, off)
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
		}
	}
	require.Equal(t, needed, faulty.Calls(targettest.OpGet)-before, "a sequential read fetched an object twice")
	// In one read, whose pieces interleave layers, even with a one-object
	// cache.
	im3, err := e.OpenImage(ctx, c.top(), ImageOptions{CacheObjects: 1})
	require.NoError(t, err)
	before = faulty.Calls(targettest.OpGet)
	whole := make([]byte, im3.Size())
	_, err = im3.ReadAt(whole, 0)
	require.NoError(t, err)
	requireSameData(t, c.image(), whole, "one read of the whole image")
	require.Equal(t, needed, faulty.Calls(targettest.OpGet)-before, "one read fetched an object twice")
	var total int
	for _, id := range c.ids {
		info, err := e.Find(ctx, id, "vol")
		require.NoError(t, err)
		total += info.Objects
	}
	require.Less(t, needed, total, "the chain should have objects that newer ones replace")
}

func TestImageDamagedObject(t *testing.T) {
	for _, codec := range []string{"none", "zlib"} {
		t.Run(codec, func(t *testing.T) {
			e, mem := newMemEngine(t, target.LayoutObject)
			c := makeTestChain(t, e, "vol", codec, false)
			name := flipStoredByte(t, mem, c.ids[0]+"-00001")
			im, err := e.OpenImage(context.Background(), c.top(), ImageOptions{})
			require.NoError(t, err)
			_, err = im.ReadAt(make([]byte, im.Size()), 0)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, name)
		})
	}
}

// flipStoredByte flips a bit in the middle of the stored object whose name
// ends with suffix, and returns its name.
func flipStoredByte(t *testing.T, tg target.Target, suffix string) string {
	t.Helper()
	names := objectNames(t, tg, suffix)
	require.Len(t, names, 1, "objects named *%s", suffix)
	ctx := context.Background()
	data, err := (&Engine{t: tg}).getAll(ctx, names[0])
	require.NoError(t, err)
	data[len(data)/2] ^= 1
	require.NoError(t, tg.Delete(ctx, names[0]))
	require.NoError(t, tg.Put(ctx, names[0], bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	return names[0]
}

func TestImageCancelled(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	c := makeTestChain(t, e, "vol", "zlib", false)
	ctx, cancel := context.WithCancel(context.Background())
	im, err := e.OpenImage(ctx, c.top(), ImageOptions{})
	require.NoError(t, err)
	cancel()
	_, err = im.ReadAt(make([]byte, 10), 0)
	require.ErrorIs(t, err, context.Canceled)
	_, err = im.ReadAtContext(context.Background(), make([]byte, 10), 0)
	require.NoError(t, err, "ReadAtContext takes its own context")

	_, err = e.OpenImage(context.Background(), c.top(), ImageOptions{CacheObjects: -1})
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.ErrorContains(t, err, "must not be negative")
	_, err = e.OpenImage(context.Background(), "nope", ImageOptions{})
	require.ErrorIs(t, err, ErrNotFound)
}
