package chunk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

func testData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	// Zero a few whole blocks and part of one.
	if n >= 11*4096 {
		clear(b[4096 : 3*4096])
		clear(b[10*4096+100 : 11*4096])
	}
	return b
}

// onlyReader hides io.ReaderAt so the sequential path is used.
type onlyReader struct{ io.Reader }

func collect(t *testing.T, src io.Reader, cfg Config) ([]byte, [][32]byte, []bool) {
	t.Helper()
	c, err := New(context.Background(), src, cfg)
	require.NoError(t, err)
	defer c.Close()
	var data []byte
	var hashes [][32]byte
	var zeros []bool
	for want := 0; ; want++ {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Equal(t, want, ch.Index)
		require.EqualValues(t, len(data), ch.Offset)
		require.Equal(t, len(hashes), ch.FirstBlock)
		data = append(data, ch.Data...)
		for _, h := range ch.Hashes {
			hashes = append(hashes, h)
		}
		zeros = append(zeros, ch.Zero...)
		ch.Release()
	}
	return data, hashes, zeros
}

func TestChunksAndHashes(t *testing.T) {
	const bs = 4096
	for _, size := range []int{0, 1, bs - 1, bs, 3*bs + 17, 64 * bs, 64*bs + 1, 200*bs + 5} {
		src := testData(size)
		var wantHashes [][32]byte
		var wantZero []bool
		for off := 0; off < size; off += bs {
			b := src[off:min(off+bs, size)]
			wantHashes = append(wantHashes, sha256.Sum256(b))
			wantZero = append(wantZero, bytes.Count(b, []byte{0}) == len(b))
		}
		for name, r := range map[string]func() io.Reader{
			"readerat":   func() io.Reader { return bytes.NewReader(src) },
			"sequential": func() io.Reader { return onlyReader{bytes.NewReader(src)} },
			"onebyte":    func() io.Reader { return iotest.OneByteReader(bytes.NewReader(src)) },
		} {
			for _, workers := range []int{1, 3} {
				cfg := Config{ObjectSize: 8 * bs, BlockSize: bs, Workers: workers, Size: int64(size)}
				if name == "sequential" {
					cfg.Size = -1
				}
				data, hashes, zeros := collect(t, r(), cfg)
				require.Equal(t, src, append([]byte{}, data...), "%s size %d", name, size)
				require.Equal(t, len(wantHashes), len(hashes))
				if len(wantHashes) > 0 {
					require.Equal(t, wantHashes, hashes, "%s size %d", name, size)
					require.Equal(t, wantZero, zeros)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ObjectSize: 100, BlockSize: 0}, "block size 0"},
		{Config{ObjectSize: 0, BlockSize: 10}, "object size 0"},
		{Config{ObjectSize: -5, BlockSize: 10}, "object size -5"},
		{Config{ObjectSize: 100, BlockSize: 32}, "not a multiple of block size 32: use a multiple such as 128"},
		{Config{ObjectSize: 64, BlockSize: 32, Workers: -1}, "workers"},
		{Config{ObjectSize: 64, BlockSize: 32, Buffers: -1}, "buffers"},
	} {
		require.ErrorContains(t, c.cfg.Validate(), c.want)
		_, err := New(context.Background(), bytes.NewReader(nil), c.cfg)
		require.ErrorContains(t, err, c.want)
	}
}

func TestShortSource(t *testing.T) {
	src := testData(10000)
	for _, r := range []io.Reader{bytes.NewReader(src), onlyReader{bytes.NewReader(src)}} {
		c, err := New(context.Background(), r, Config{ObjectSize: 4096, BlockSize: 1024, Size: 20000})
		require.NoError(t, err)
		got := drain(c)
		require.ErrorIs(t, got, ErrShortSource)
		require.ErrorContains(t, got, "ended at byte 10000, but its size is 20000")
		c.Close()
	}
}

func TestStatedSizeCutsLongerStream(t *testing.T) {
	src := testData(10000)
	data, _, _ := collect(t, onlyReader{bytes.NewReader(src)}, Config{ObjectSize: 4096, BlockSize: 1024, Size: 5000})
	require.Equal(t, src[:5000], data)
}

func TestReadErrorIsReported(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(make([]byte, 5000)), iotest.ErrReader(boom))
	c, err := New(context.Background(), r, Config{ObjectSize: 4096, BlockSize: 1024})
	require.NoError(t, err)
	defer c.Close()
	got := drain(c)
	require.ErrorIs(t, got, boom)
	require.ErrorContains(t, got, "byte 5000")
}

// blockingSource is an endless source that counts its reads.
type blockingSource struct {
	reads atomic.Int64
}

func (s *blockingSource) Read(p []byte) (int, error) { s.reads.Add(1); return len(p), nil }

// TestBoundedBuffers: with an endless source and a consumer that keeps chunks,
// the chunker stops reading once every buffer is out.
func TestBoundedBuffers(t *testing.T) {
	src := &blockingSource{}
	c, err := New(context.Background(), src, Config{ObjectSize: 1024, BlockSize: 512, Workers: 2, Buffers: 3})
	require.NoError(t, err)
	var held []*Chunk
	for range 3 {
		ch, err := c.Next()
		require.NoError(t, err)
		held = append(held, ch)
	}
	time.Sleep(50 * time.Millisecond)
	require.EqualValues(t, 3, src.reads.Load(), "no fourth read while all buffers are held")
	held[0].Release()
	ch, err := c.Next()
	require.NoError(t, err)
	require.Equal(t, 3, ch.Index)
	ch.Release()
	held[1].Release()
	held[2].Release()
	require.NoError(t, c.Close())
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(ctx, &blockingSource{}, Config{ObjectSize: 1024, BlockSize: 512, Buffers: 1})
	require.NoError(t, err)
	ch, err := c.Next()
	require.NoError(t, err)
	done := make(chan error)
	go func() { _, err := c.Next(); done <- err }()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after cancel")
	}
	ch.Release()
	require.NoError(t, c.Close())
}

func BenchmarkChunker(b *testing.B) {
	const size = 64 << 20
	src := testData(size)
	for _, name := range []string{"readerat", "sequential"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var r io.Reader = bytes.NewReader(src)
				cfg := Config{ObjectSize: 4 << 20, BlockSize: 32768, Size: size}
				if name == "sequential" {
					r = onlyReader{r}
				}
				c, err := New(context.Background(), r, cfg)
				if err != nil {
					b.Fatal(err)
				}
				for {
					ch, err := c.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					ch.Release()
				}
				c.Close()
			}
		})
	}
}

// drain takes chunks until Next fails, and returns its error.
func drain(c *Chunker) error {
	for {
		ch, err := c.Next()
		if err != nil {
			return err
		}
		ch.Release()
	}
}

// countingReaderAt counts the bytes read through ReadAt.
type countingReaderAt struct {
	r    *bytes.Reader
	read atomic.Int64
}

func (c *countingReaderAt) Read([]byte) (int, error) {
	return 0, errors.New("Read called: the chunker must use ReadAt")
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read.Add(int64(n))
	return n, err
}

func TestExtentsReadOnlyTouchedBlocks(t *testing.T) {
	const bs, obj = 4096, 4 * 4096
	data := testData(10*obj + 1000) // a short last block
	_, full, _ := collect(t, bytes.NewReader(data), Config{ObjectSize: obj, BlockSize: bs, Size: int64(len(data))})
	src := &countingReaderAt{r: bytes.NewReader(data)}
	extents := []Extent{
		{Offset: 5, Length: 1},                    // block 0
		{Offset: 3*bs - 1, Length: 2},             // blocks 2 and 3
		{Offset: 2 * bs, Length: 10},              // block 2 again (merged)
		{Offset: 20 * bs, Length: 0},              // empty: nothing
		{Offset: 39*bs + 10, Length: 1 << 30},     // blocks 39, 40 (short), clipped
		{Offset: int64(len(data)) + 5, Length: 9}, // past the end: nothing
	}
	want := map[int]bool{0: true, 2: true, 3: true, 39: true, 40: true}
	c, err := New(context.Background(), src, Config{ObjectSize: obj, BlockSize: bs, Size: int64(len(data)), Extents: extents, Workers: 3})
	require.NoError(t, err)
	defer c.Close()
	block := 0
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Len(t, ch.Skipped, ch.Blocks())
		for i := range ch.Blocks() {
			g := ch.FirstBlock + i
			require.Equal(t, !want[g], ch.Skipped[i], "block %d", g)
			if want[g] {
				require.Equal(t, full[g], [32]byte(ch.Hashes[i]), "block %d", g)
				require.Equal(t, data[g*bs:min((g+1)*bs, len(data))], ch.Block(i))
			}
		}
		block += ch.Blocks()
		ch.Release()
	}
	require.Equal(t, len(full), block)
	wantRead := int64(4*bs + 1000) // blocks 0, 2, 3, 39 and the short 40
	require.Equal(t, wantRead, src.read.Load())
	require.Equal(t, wantRead, c.BytesRead())
	require.Equal(t, int64(len(data)), c.BytesCovered())
}

func TestExtentsNeedReaderAtAndSize(t *testing.T) {
	_, err := New(context.Background(), onlyReader{bytes.NewReader(make([]byte, 10))}, Config{ObjectSize: 4096, BlockSize: 4096, Size: 10, Extents: []Extent{}})
	require.ErrorContains(t, err, "io.ReaderAt")
	_, err = New(context.Background(), bytes.NewReader(nil), Config{ObjectSize: 4096, BlockSize: 4096, Extents: []Extent{{Offset: -1}}})
	require.ErrorContains(t, err, "must not be negative")
}

func TestZeroOutsideMakesHoles(t *testing.T) {
	const bs, obj = 4096, 4 * 4096
	data := testData(10*obj + 1000)
	// Blocks outside the extents are holes: make them zero in the reference.
	extents := []Extent{{Offset: 2 * bs, Length: 2 * bs}, {Offset: 30 * bs, Length: 1}, {Offset: 40 * bs, Length: 1000}}
	want := map[int]bool{2: true, 3: true, 30: true, 40: true}
	ref := bytes.Clone(data)
	for b := 0; b*bs < len(ref); b++ {
		if !want[b] {
			clear(ref[b*bs : min((b+1)*bs, len(ref))])
		}
	}
	refData, refHashes, refZeros := collect(t, bytes.NewReader(ref), Config{ObjectSize: obj, BlockSize: bs, Size: int64(len(ref))})
	src := &countingReaderAt{r: bytes.NewReader(data)}
	gotData, gotHashes, gotZeros := collect(t, src, Config{ObjectSize: obj, BlockSize: bs, Size: int64(len(data)), Extents: extents, ZeroOutside: true})
	require.True(t, bytes.Equal(refData, gotData), "hole blocks must read as zeros")
	require.Equal(t, refHashes, gotHashes)
	require.Equal(t, refZeros, gotZeros)
	require.EqualValues(t, 3*bs+1000, src.read.Load(), "only the data extents are read")
}
