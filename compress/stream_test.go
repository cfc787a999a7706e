package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeBoth decompresses src with Decompress and with DecompressFrom (read
// in small pieces, as from a network body) and requires them to agree.
func decodeBoth(t testing.TB, c Codec, src []byte, size int) ([]byte, error) {
	t.Helper()
	want, werr := c.Decompress(nil, src, size)
	got, gerr := DecompressFrom(c, make([]byte, 0, 16), iotest.HalfReader(bytes.NewReader(src)), size)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s, size %d: Decompress says %v, DecompressFrom %v", c.Name(), size, werr, gerr)
	}
	if gerr != nil {
		if !errors.Is(gerr, ErrCorrupt) {
			t.Fatalf("%s: DecompressFrom error does not wrap ErrCorrupt: %v", c.Name(), gerr)
		}
		return nil, gerr
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s: DecompressFrom gave other bytes than Decompress", c.Name())
	}
	return got, nil
}

func TestDecompressFromMatchesDecompress(t *testing.T) {
	src := textData(300<<10, 10)
	for _, name := range append([]string{"none"}, compressingNames...) {
		t.Run(name, func(t *testing.T) {
			c, err := ForMetadata(name)
			require.NoError(t, err)
			comp := src
			if name != "none" {
				comp = compressed(t, name, src)
			}
			got, err := decodeBoth(t, c, comp, len(src))
			require.NoError(t, err)
			require.Equal(t, src, got)
			_, err = decodeBoth(t, c, []byte{}, 0)
			if name == "none" {
				require.NoError(t, err, "an empty raw object")
			}

			bad := map[string][]byte{
				"trailing garbage": append(bytes.Clone(comp), "garbage"...),
				"trailing zero":    append(bytes.Clone(comp), 0),
				"doubled":          append(bytes.Clone(comp), comp...),
				"empty":            nil,
			}
			for _, cut := range []int{1, 5, len(comp) / 2, len(comp) - 4, len(comp) - 1} {
				bad[fmt.Sprintf("truncated to %d", cut)] = comp[:cut]
			}
			for what, in := range bad {
				_, err := decodeBoth(t, c, in, len(src))
				assert.ErrorIs(t, err, ErrCorrupt, what)
			}
			for _, size := range []int{len(src) - 1, len(src) + 1, 0} {
				_, err := decodeBoth(t, c, comp, size)
				assert.ErrorIs(t, err, ErrCorrupt, "size %d", size)
			}
			if name != "none" {
				for _, pos := range []int{0, 1, 3, 20, len(comp) / 3, len(comp) - 3} {
					flipped := bytes.Clone(comp)
					flipped[pos] ^= 0x55
					_, err := decodeBoth(t, c, flipped, len(src))
					assert.ErrorIs(t, err, ErrCorrupt, "flipped byte %d", pos)
				}
			}
		})
	}
}

// A source that fails (a dropped connection) is that failure, not corrupt
// data: the caller may retry it.
func TestDecompressFromSourceError(t *testing.T) {
	src := textData(300<<10, 11)
	broken := errors.New("connection reset by peer")
	for _, name := range append([]string{"none"}, compressingNames...) {
		c, _ := ForMetadata(name)
		comp := src
		if name != "none" {
			comp = compressed(t, name, src)
		}
		r := io.MultiReader(bytes.NewReader(comp[:len(comp)/2]), iotest.ErrReader(broken))
		_, err := DecompressFrom(c, nil, r, len(src))
		require.ErrorIs(t, err, broken, name)
		assert.NotErrorIs(t, err, ErrCorrupt, name)
	}
}

// A bomb read as a stream: output and allocation stay bounded by the
// declared size, and the decoder stops reading soon after it.
func TestDecompressFromBomb(t *testing.T) {
	const claimed = 1 << 20
	zeros := make([]byte, 64<<20)
	for _, name := range compressingNames {
		c, _ := New(name, Options{DisableSampling: true})
		comp, _, err := c.Compress(nil, zeros)
		require.NoError(t, err)
		_, _ = DecompressFrom(c, nil, bytes.NewReader(comp), len(zeros)) // warm the pools
		var read countingReader
		read.r = bytes.NewReader(comp)
		alloc := measureAlloc(func() {
			_, err = DecompressFrom(c, nil, &read, claimed)
		})
		assert.ErrorIs(t, err, ErrCorrupt, name)
		assert.Less(t, alloc, uint64(24<<20), "%s: allocated %d bytes", name, alloc)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// DecompressFrom accepts and rejects exactly what Decompress does.
func FuzzDecompressFrom(f *testing.F) {
	names := append([]string{"none"}, compressingNames...)
	for i, name := range names {
		c, _ := New(name, Options{DisableSampling: true})
		for _, s := range [][]byte{[]byte("hello, hello, hello, hello"), make([]byte, 300), textData(5000, 30)} {
			out, smaller, _ := c.Compress(nil, s)
			if !smaller {
				out = s
			}
			f.Add(uint8(i), out, uint32(len(s)))
			f.Add(uint8(i), out[:len(out)/2], uint32(len(s)))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, src []byte, size uint32) {
		c, err := ForMetadata(names[int(which)%len(names)])
		require.NoError(t, err)
		_, _ = decodeBoth(t, c, src, int(size%(fuzzMaxSize+1)))
	})
}
