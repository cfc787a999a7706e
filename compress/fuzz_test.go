package compress

import (
	"errors"
	"testing"
)

// fuzzMaxSize bounds the expected length the fuzzer may claim.
const fuzzMaxSize = 1 << 20

// FuzzDecompress feeds arbitrary input and expected lengths to every codec's
// Decompress: it must not panic, must fail with ErrCorrupt or return exactly
// size bytes, and must not grow dst beyond size.
func FuzzDecompress(f *testing.F) { fuzzDecompress(f, "zlib", "bz2", "zstd", "none") }

// FuzzDecompressZlib is FuzzDecompress for zlib only.
func FuzzDecompressZlib(f *testing.F) { fuzzDecompress(f, "zlib") }

// FuzzDecompressBz2 is FuzzDecompress for bz2 only.
func FuzzDecompressBz2(f *testing.F) { fuzzDecompress(f, "bz2") }

// FuzzDecompressZstd is FuzzDecompress for zstd only.
func FuzzDecompressZstd(f *testing.F) { fuzzDecompress(f, "zstd") }

func fuzzDecompress(f *testing.F, fuzzCodecs ...string) {
	seeds := [][]byte{
		[]byte("hello, hello, hello, hello"),
		make([]byte, 300),
		textData(5000, 30),
	}
	for ci, name := range fuzzCodecs {
		f.Add(uint8(ci), []byte{}, uint32(0))
		for _, s := range seeds {
			c, _ := New(name, Options{DisableSampling: true})
			out, smaller, err := c.Compress(nil, s)
			if err != nil {
				f.Fatal(err)
			}
			if !smaller {
				out = s
			}
			f.Add(uint8(ci), out, uint32(len(s)))
			f.Add(uint8(ci), out, uint32(len(s)+1))
			f.Add(uint8(ci), out[:len(out)/2], uint32(len(s)))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, src []byte, size uint32) {
		name := fuzzCodecs[int(which)%len(fuzzCodecs)]
		c, err := ForMetadata(name)
		if err != nil {
			t.Fatal(err)
		}
		n := int(size % (fuzzMaxSize + 1))
		dst := make([]byte, 0, 16)
		out, err := c.Decompress(dst, src, n)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: error does not wrap ErrCorrupt: %v", name, err)
			}
			return
		}
		if len(out) != n {
			t.Fatalf("%s: got %d bytes, expected %d", name, len(out), n)
		}
		if cap(out) > max(n, cap(dst)) {
			t.Fatalf("%s: output capacity %d beyond size %d", name, cap(out), n)
		}
		// Decoding again into a large buffer gives the same bytes.
		again, err := c.Decompress(make([]byte, 0, n+100), src, n)
		if err != nil || string(again) != string(out) {
			t.Fatalf("%s: second decode differs: %v", name, err)
		}
	})
}
