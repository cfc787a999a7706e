package compress

import (
	"bytes"
	stdbzip2 "compress/bzip2"
	stdzlib "compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allNames are every name Cinder accepts, with the Name() each codec records.
var allNames = []struct{ name, recorded string }{
	{"none", "none"}, {"off", "none"}, {"no", "none"},
	{"zlib", "zlib"}, {"gzip", "gzip"},
	{"bz2", "bz2"}, {"bzip2", "bzip2"},
	{"zstd", "zstd"},
}

// compressingNames are one name per compressing codec family plus aliases.
var compressingNames = []string{"zlib", "gzip", "bz2", "bzip2", "zstd"}

func TestNames(t *testing.T) {
	for _, tc := range allNames {
		for _, spelled := range []string{tc.name, string(bytes.ToUpper([]byte(tc.name))), "  " + tc.name + "\t"} {
			c, err := New(spelled, Options{})
			require.NoError(t, err, spelled)
			assert.Equal(t, tc.recorded, c.Name(), "New(%q)", spelled)
			c, err = New(spelled, Options{Level: 1, DisableSampling: true})
			require.NoError(t, err, spelled)
			assert.Equal(t, tc.recorded, c.Name(), "New(%q, opts)", spelled)
		}
		for _, spelled := range []string{tc.name, string(bytes.ToUpper([]byte(tc.name))), "Mixed" + tc.name} {
			c, err := ForMetadata(spelled)
			if spelled == "Mixed"+tc.name {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err, spelled)
			assert.Equal(t, tc.recorded, c.Name(), "ForMetadata(%q)", spelled)
		}
		// Cinder's restore does not trim the metadata value.
		_, err := ForMetadata(" " + tc.name)
		assert.ErrorIs(t, err, ErrUnknownCodec)
	}
	// Default codecs are shared.
	a, _ := New("ZLIB", Options{})
	b, _ := ForMetadata("zlib")
	assert.Same(t, a, b)
}

func TestUnknownCodec(t *testing.T) {
	for _, name := range []string{"lz4", "", "zlib2", "gzip ", "ſtd", "zſtd"} {
		_, err := ForMetadata(name)
		require.ErrorIs(t, err, ErrUnknownCodec, name)
		assert.Contains(t, err.Error(), fmt.Sprintf("%q", name))
	}
	_, err := New("lz4", Options{})
	require.ErrorIs(t, err, ErrUnknownCodec)
	assert.Equal(t, `compress: unknown compression algorithm: compression "lz4" is not supported: use one of none, zlib, gzip, bz2, bzip2, zstd`, err.Error())
	// Unicode case folding must not make "ſtd" (long s) match "std" etc.
	_, err = New("ZſTD", Options{})
	assert.ErrorIs(t, err, ErrUnknownCodec)
}

func TestOptionsValidate(t *testing.T) {
	assert.NoError(t, Options{}.Validate())
	assert.NoError(t, Options{Level: 22, DisableSampling: true}.Validate())
	for _, lvl := range []int{-1, 23, 100} {
		err := Options{Level: lvl}.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Options.Level")
		_, err = New("zstd", Options{Level: lvl})
		assert.Error(t, err)
	}
	for _, tc := range []struct {
		name string
		ok   []int
		bad  []int
	}{
		{"zlib", []int{1, 6, 9}, []int{10, 22, -1}},
		{"gzip", []int{1, 9}, []int{10}},
		{"bz2", []int{1, 9}, []int{10}},
		{"bzip2", []int{5}, []int{12}},
		{"zstd", []int{1, 3, 19, 22}, []int{23, -3}},
		{"none", []int{1, 22}, []int{23}},
	} {
		for _, lvl := range tc.ok {
			_, err := New(tc.name, Options{Level: lvl})
			assert.NoError(t, err, "%s level %d", tc.name, lvl)
		}
		for _, lvl := range tc.bad {
			_, err := New(tc.name, Options{Level: lvl})
			if assert.Error(t, err, "%s level %d", tc.name, lvl) {
				assert.Contains(t, err.Error(), "Options.Level")
				assert.NotErrorIs(t, err, ErrUnknownCodec)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	data := datasets()
	for _, name := range append(compressingNames, "none") {
		for _, opts := range []Options{{}, {DisableSampling: true}, {Level: 1}, {Level: 9}} {
			c, err := New(name, opts)
			require.NoError(t, err)
			t.Run(fmt.Sprintf("%s/%+v", name, opts), func(t *testing.T) {
				t.Parallel()
				var cbuf, dbuf []byte
				for _, ds := range data {
					if len(ds.data) > 2<<20 && (name == "bz2" || name == "bzip2") && opts != (Options{}) {
						continue // slow, and adds nothing over the default options
					}
					out, smaller, err := c.Compress(cbuf, ds.data)
					require.NoError(t, err, ds.name)
					cbuf = out
					if !smaller {
						assert.Empty(t, out, ds.name)
						if name != "none" && ds.compressible != nil {
							assert.False(t, *ds.compressible, "%s should compress", ds.name)
						}
						continue
					}
					require.NotEqual(t, "none", name)
					if ds.compressible != nil {
						assert.True(t, *ds.compressible, "%s should not compress", ds.name)
					}
					require.Less(t, len(out), len(ds.data), ds.name)
					// Through ForMetadata, with a reused buffer and with nil.
					d, err := ForMetadata(c.Name())
					require.NoError(t, err)
					got, err := d.Decompress(dbuf, out, len(ds.data))
					require.NoError(t, err, ds.name)
					require.True(t, bytes.Equal(ds.data, got), ds.name)
					dbuf = got
					got, err = c.Decompress(nil, out, len(ds.data))
					require.NoError(t, err, ds.name)
					require.True(t, bytes.Equal(ds.data, got), ds.name)
				}
			})
		}
	}
}

func TestNoneCodec(t *testing.T) {
	c, err := New("off", Options{})
	require.NoError(t, err)
	out, smaller, err := c.Compress(make([]byte, 10), []byte("abc"))
	require.NoError(t, err)
	assert.False(t, smaller)
	assert.Empty(t, out)
	got, err := c.Decompress(nil, []byte("abc"), 3)
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
	_, err = c.Decompress(nil, []byte("abc"), 4)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = c.Decompress(nil, []byte("abc"), 2)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestRandomIsFastAndNotSmaller(t *testing.T) {
	src := randomData(1<<20, 42)
	for _, name := range compressingNames {
		c, err := New(name, Options{})
		require.NoError(t, err)
		dst := make([]byte, 0, len(src))
		start := time.Now()
		out, smaller, err := c.Compress(dst, src)
		elapsed := time.Since(start)
		require.NoError(t, err)
		assert.False(t, smaller, name)
		assert.Empty(t, out)
		assert.Less(t, elapsed, 50*time.Millisecond, "%s: sampling should reject random data quickly", name)

		// Without sampling the output is still bounded by len(src).
		c, err = New(name, Options{DisableSampling: true})
		require.NoError(t, err)
		out, smaller, err = c.Compress(nil, src)
		require.NoError(t, err)
		assert.False(t, smaller, name)
		assert.Empty(t, out)
		assert.LessOrEqual(t, cap(out), len(src), name)
	}
}

func TestSamplingKeepsCompressibleTail(t *testing.T) {
	// Random head, compressible rest: the spread-out sample sees the text.
	src := append(randomData(256<<10, 7), textData(768<<10, 8)...)
	for _, name := range compressingNames {
		c, _ := New(name, Options{})
		_, smaller, err := c.Compress(nil, src)
		require.NoError(t, err)
		assert.True(t, smaller, name)
	}
}

func TestFormatHeaders(t *testing.T) {
	src := textData(100<<10, 9)
	compress := func(name string, level int) []byte {
		c, err := New(name, Options{Level: level})
		require.NoError(t, err)
		out, smaller, err := c.Compress(nil, src)
		require.NoError(t, err)
		require.True(t, smaller)
		return out
	}
	// RFC 1950 zlib header: 78 9c at level 6 like Python, for both names.
	assert.Equal(t, []byte{0x78, 0x9c}, compress("zlib", 0)[:2])
	assert.Equal(t, []byte{0x78, 0x9c}, compress("gzip", 6)[:2])
	assert.Equal(t, []byte{0x78, 0x01}, compress("zlib", 1)[:2])
	assert.Equal(t, []byte{0x78, 0xda}, compress("gzip", 9)[:2])
	// Adler-32 trailer.
	z := compress("zlib", 0)
	assert.Equal(t, adler32(src), binary.BigEndian.Uint32(z[len(z)-4:]))
	// bzip2 block size level in the header.
	assert.Equal(t, "BZh9", string(compress("bz2", 0)[:4]))
	assert.Equal(t, "BZh9", string(compress("bzip2", 0)[:4]))
	assert.Equal(t, "BZh1", string(compress("bz2", 1)[:4]))
}

func adler32(b []byte) uint32 {
	var a, s uint32 = 1, 0
	for _, c := range b {
		a = (a + uint32(c)) % 65521
		s = (s + a) % 65521
	}
	return s<<16 | a
}

func TestZstdFrameContentSize(t *testing.T) {
	for _, level := range []int{0, 1, 7, 19} {
		c, err := New("zstd", Options{Level: level, DisableSampling: true})
		require.NoError(t, err)
		for _, n := range []int{2, 100, 255, 256, 1000, 1024, 1025, 65791, 65792, 1 << 20, 9 << 20} {
			src := make([]byte, n)
			out, smaller, err := c.Compress(nil, src)
			require.NoError(t, err)
			if !smaller {
				assert.Less(t, n, 16, "zeros(%d) should compress", n)
				continue
			}
			var h zstd.Header
			require.NoError(t, h.Decode(out))
			assert.True(t, h.HasFCS, "level %d size %d: content size missing", level, n)
			assert.Equal(t, uint64(n), h.FrameContentSize)
			// Exactly one frame.
			fl, err := zstdFrameLen(out, h.HeaderSize, h.HasCheckSum)
			require.NoError(t, err)
			assert.Equal(t, len(out), fl)
		}
	}
}

// compressed returns src compressed by the named codec, which must shrink it.
func compressed(t testing.TB, name string, src []byte) []byte {
	t.Helper()
	c, err := New(name, Options{DisableSampling: true})
	require.NoError(t, err)
	out, smaller, err := c.Compress(nil, src)
	require.NoError(t, err)
	require.True(t, smaller)
	return out
}

func TestDecompressErrors(t *testing.T) {
	src := textData(300<<10, 10)
	for _, name := range compressingNames {
		t.Run(name, func(t *testing.T) {
			c, _ := ForMetadata(name)
			comp := compressed(t, name, src)
			expectErr := func(what string, in []byte, size int) {
				t.Helper()
				out, err := c.Decompress(make([]byte, 0, len(src)+10), in, size)
				if assert.Error(t, err, what) {
					assert.ErrorIs(t, err, ErrCorrupt, what)
					assert.Contains(t, err.Error(), name, what)
				}
				assert.Empty(t, out, what)
			}
			got, err := c.Decompress(nil, comp, len(src))
			require.NoError(t, err)
			require.Equal(t, src, got)

			expectErr("size+1", comp, len(src)+1)
			expectErr("size-1", comp, len(src)-1)
			expectErr("size 0", comp, 0)
			expectErr("negative size", comp, -1)
			expectErr("empty input", nil, len(src))
			expectErr("empty input size 0", []byte{}, 0)
			expectErr("trailing garbage", append(bytes.Clone(comp), "garbage"...), len(src))
			expectErr("trailing zero", append(bytes.Clone(comp), 0), len(src))
			expectErr("doubled", append(bytes.Clone(comp), comp...), len(src))
			for _, cut := range []int{1, 2, 4, 5, 10, len(comp) / 2, len(comp) - 5, len(comp) - 4, len(comp) - 1} {
				expectErr(fmt.Sprintf("truncated to %d", cut), comp[:cut], len(src))
			}
			for _, pos := range []int{0, 1, 3, 6, 20, len(comp) / 3, len(comp) / 2, len(comp) - 3} {
				bad := bytes.Clone(comp)
				bad[pos] ^= 0x55
				expectErr(fmt.Sprintf("flipped byte %d", pos), bad, len(src))
			}
			expectErr("other codec's data", compressed(t, map[string]string{"zlib": "zstd", "gzip": "bz2", "bz2": "zlib", "bzip2": "zstd", "zstd": "gzip"}[name], src), len(src))
		})
	}
}

func TestZstdRejectsFramesCinderCannotRead(t *testing.T) {
	src := textData(1<<20, 11)
	c, _ := ForMetadata("zstd")
	// Streaming encoder: no content size in the header.
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	require.NoError(t, err)
	_, _ = w.Write(src)
	require.NoError(t, w.Close())
	var h zstd.Header
	require.NoError(t, h.Decode(buf.Bytes()))
	require.False(t, h.HasFCS)
	_, err = c.Decompress(nil, buf.Bytes(), len(src))
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "content size")

	// Two frames (python-zstd fails on those too).
	e, _ := zstd.NewWriter(nil)
	two := e.EncodeAll(src[:1000], nil)
	two = e.EncodeAll(src[1000:], two)
	_, err = c.Decompress(nil, two, len(src))
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = c.Decompress(nil, two, 1000)
	assert.ErrorIs(t, err, ErrCorrupt)

	// A skippable frame.
	_, err = c.Decompress(nil, []byte{0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, 0)
	assert.ErrorIs(t, err, ErrCorrupt)
}

// measureAlloc returns the bytes allocated by f.
func measureAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Decompression bombs: about 1 GiB of zeros whose metadata claims 1 MiB.
func TestDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1 GiB bombs")
	}
	const bomb = 1 << 30
	const claimed = 1 << 20
	const maxAlloc = 24 << 20 // output, plus decoder state if a GC emptied the pool
	zeros := make([]byte, 1<<20)

	var zbuf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zbuf, flate.BestSpeed)
	for range bomb / len(zeros) {
		_, _ = zw.Write(zeros)
	}
	require.NoError(t, zw.Close())

	// bzip2: one 128 MiB stream repeated 8 times (Python's bz2.decompress
	// and this package read concatenated streams).
	var bbuf bytes.Buffer
	bw, _ := bzip2.NewWriter(&bbuf, &bzip2.WriterConfig{Level: 9})
	for range (bomb / 8) / len(zeros) {
		_, _ = bw.Write(zeros)
	}
	require.NoError(t, bw.Close())
	bz := bytes.Repeat(bbuf.Bytes(), 8)

	zstdBomb := func(contentSize int64) []byte {
		var buf bytes.Buffer
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		w.ResetContentSize(&buf, contentSize)
		for range bomb / len(zeros) {
			_, _ = w.Write(zeros)
		}
		require.NoError(t, w.Close())
		return buf.Bytes()
	}
	zsTrue := zstdBomb(bomb)
	zsNone := zstdBomb(-1)
	// Content size field lies: claims 1 MiB (same 4-byte field width).
	zsLie := bytes.Clone(zsTrue)
	var h zstd.Header
	require.NoError(t, h.Decode(zsLie))
	require.Equal(t, uint64(bomb), h.FrameContentSize)
	binary.LittleEndian.PutUint32(zsLie[h.HeaderSize-4:], claimed)
	require.NoError(t, h.Decode(zsLie))
	require.Equal(t, uint64(claimed), h.FrameContentSize)

	for _, tc := range []struct {
		codec string
		data  []byte
	}{
		{"zlib", zbuf.Bytes()}, {"gzip", zbuf.Bytes()},
		{"bz2", bz},
		{"zstd", zsTrue}, {"zstd", zsNone}, {"zstd", zsLie},
	} {
		c, _ := ForMetadata(tc.codec)
		// Warm the pools.
		_, _ = c.Decompress(nil, compressed(t, tc.codec, zeros), len(zeros))
		var err error
		start := time.Now()
		alloc := measureAlloc(func() {
			_, err = c.Decompress(nil, tc.data, claimed)
		})
		assert.ErrorIs(t, err, ErrCorrupt, tc.codec)
		assert.Less(t, alloc, uint64(maxAlloc), "%s: allocated %d bytes", tc.codec, alloc)
		assert.Less(t, time.Since(start), 2*time.Second, tc.codec)
		t.Logf("%s bomb (%d bytes): %v in %v, %d bytes allocated", tc.codec, len(tc.data), err, time.Since(start), alloc)
	}
}

func TestAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful with coverage or race")
	}
	src := textData(1<<20, 12)
	for _, name := range compressingNames {
		c, _ := New(name, Options{})
		comp := compressed(t, name, src)
		cbuf := make([]byte, 0, len(src))
		dbuf := make([]byte, 0, len(src))
		cAllocs := testing.AllocsPerRun(5, func() {
			out, _, _ := c.Compress(cbuf, src)
			if &out[:1][0] != &cbuf[:1][0] {
				t.Errorf("%s: Compress did not reuse dst", name)
			}
		})
		dAllocs := testing.AllocsPerRun(5, func() {
			out, err := c.Decompress(dbuf, comp, len(src))
			if err != nil || &out[0] != &dbuf[:1][0] {
				t.Errorf("%s: Decompress did not reuse dst: %v", name, err)
			}
		})
		t.Logf("%s: %.0f allocs/Compress, %.0f allocs/Decompress", name, cAllocs, dAllocs)
		maxAllocs := 2.0
		if name == "bz2" || name == "bzip2" {
			maxAllocs = 64 // dsnet/compress allocates per block internally
		}
		assert.LessOrEqual(t, cAllocs, maxAllocs, name)
		assert.LessOrEqual(t, dAllocs, 4.0, name)
	}
}

func TestConcurrentUse(t *testing.T) {
	inputs := [][]byte{textData(200<<10, 13), mixedData(300<<10, 14), randomData(150<<10, 15), make([]byte, 100)}
	for _, name := range compressingNames {
		c, _ := New(name, Options{Level: 1})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				var cbuf, dbuf []byte
				for i := range 6 {
					src := inputs[(g+i)%len(inputs)]
					out, smaller, err := c.Compress(cbuf, src)
					if err != nil {
						t.Error(err)
						return
					}
					cbuf = out
					if !smaller {
						continue
					}
					got, err := c.Decompress(dbuf, out, len(src))
					if err != nil || !bytes.Equal(got, src) {
						t.Errorf("%s: round trip failed: %v", name, err)
						return
					}
					dbuf = got
				}
			})
		}
		wg.Wait()
	}
}

// readAllStd decompresses with a reference reader, for cross-checks.
func readAllStd(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

func TestCrossCheckWithOtherReaders(t *testing.T) {
	src := mixedData(1<<20, 16)
	// Go's standard library readers: independent implementations.
	zr, err := stdzlib.NewReader(bytes.NewReader(compressed(t, "zlib", src)))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(src, readAllStd(t, zr)))
	br := stdbzip2.NewReader(bytes.NewReader(compressed(t, "bz2", src)))
	assert.True(t, bytes.Equal(src, readAllStd(t, br)))
	d, err := zstd.NewReader(bytes.NewReader(compressed(t, "zstd", src)))
	require.NoError(t, err)
	defer d.Close()
	assert.True(t, bytes.Equal(src, readAllStd(t, d)))
}

func TestErrorsAreDistinct(t *testing.T) {
	assert.False(t, errors.Is(ErrCorrupt, ErrUnknownCodec))
	assert.NotEqual(t, ErrCorrupt.Error(), ErrUnknownCodec.Error())
}
