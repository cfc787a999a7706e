package compress

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompressWithin wipes every prefix it is told is released, as a
// backup gives those pages back to the OS: the output must still decompress
// to the original, so the encoder never reads released input again.
func TestCompressWithin(t *testing.T) {
	codecs := []string{"zlib", "bz2", "zstd"}
	if raceEnabled {
		codecs = []string{"zlib", "zstd"} // bzip2 under the race detector takes minutes
	}
	inputs := map[string][]byte{
		"text":              textData(4<<20, 1),
		"random head":       append(randomData(1<<20, 2), textData(3<<20, 3)...),
		"mostly random":     append(textData(1<<20, 4), randomData(3<<20, 5)...),
		"random":            randomData(3<<20, 6),
		"small":             textData(100<<10, 7),
		"under zstd small":  textData(200, 8),
		"zeros then random": append(make([]byte, 2<<20), randomData(2<<20, 9)...),
	}
	for _, name := range codecs {
		c, err := New(name, Options{DisableSampling: true})
		require.NoError(t, err)
		for label, in := range inputs {
			for _, extra := range []int{0, 1 << 20, len(in)} {
				src := bytes.Clone(in)
				released, calls := 0, 0
				out, smaller, err := CompressWithin(c, nil, src, extra, func(n int) {
					require.Greater(t, n, released, "%s/%s: release must grow", name, label)
					clear(src[released:n])
					released, calls = n, calls+1
				})
				require.NoError(t, err, "%s/%s", name, label)
				plain, plainSmaller, err := c.Compress(nil, in)
				require.NoError(t, err)
				if extra >= len(in) {
					assert.Zero(t, calls, "%s/%s: released input while the output was within extra", name, label)
					assert.Equal(t, plainSmaller, smaller, "%s/%s", name, label)
				}
				if !smaller {
					assert.Zero(t, calls, "%s/%s: released input of an object stored raw", name, label)
					assert.Equal(t, in, src, "%s/%s: input of an object stored raw is untouched", name, label)
					continue
				}
				got, err := c.Decompress(nil, out, len(in))
				require.NoError(t, err, "%s/%s", name, label)
				require.True(t, bytes.Equal(in, got), "%s/%s: output differs after releasing input", name, label)
				assert.Equal(t, plain, out, "%s/%s: releasing must not change the output", name, label)
				if calls > 0 {
					assert.Equal(t, len(in), released, "%s/%s: once releasing, all input is released", name, label)
				}
				t.Logf("%s/%s extra %d: ratio %.2f, released in %d calls", name, label, extra, float64(len(out))/float64(len(in)), calls)
			}
		}
	}
	// Input that compresses well is released as it goes, with little extra
	// room (a bzip2 block holds back up to 900 kB before any output).
	for _, name := range codecs {
		c, _ := New(name, Options{})
		src := textData(8<<20, 11)
		released := 0
		_, smaller, err := CompressWithin(c, nil, src, 1<<20, func(n int) { released = n })
		require.NoError(t, err)
		require.True(t, smaller)
		assert.Equal(t, len(src), released, name)
	}
	// Input whose gain is not yet certain when the output passes extra is
	// stored raw, and never released.
	for _, name := range codecs {
		c, _ := New(name, Options{DisableSampling: true})
		in := append(randomData(4<<20, 12), textData(4<<20, 13)...)
		_, smaller, err := CompressWithin(c, nil, in, 1<<20, func(int) { t.Fatalf("%s released input it gave up on", name) })
		require.NoError(t, err)
		assert.False(t, smaller, name)
	}
	// Codec none stores everything raw.
	none, _ := New("none", Options{})
	_, smaller, err := CompressWithin(none, nil, textData(1<<20, 13), 0, func(int) { t.Fatal("none released input") })
	require.NoError(t, err)
	assert.False(t, smaller)
}

func TestCertainlySmaller(t *testing.T) {
	const n = 50 << 20
	assert.False(t, certainlySmaller(0, 0, n, 0), "nothing consumed: the rest may not compress")
	assert.True(t, certainlySmaller(1<<20, 4<<20, n, 256<<10), "3 MiB saved covers the rest's worst case")
	assert.False(t, certainlySmaller(4<<20, 4<<20, n, 256<<10), "nothing saved yet")
	assert.False(t, certainlySmaller(n-1000, n, n, 0), "the trailer margin")
	assert.True(t, certainlySmaller(n/2, n, n, 0))
}
