package compress

import (
	"testing"
)

const benchSize = 4 << 20

func BenchmarkCompress(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
		opts Options
	}{
		{"text", textData(benchSize, 100), Options{}},
		{"random", randomData(benchSize, 101), Options{}},
		{"random-nosampling", randomData(benchSize, 101), Options{DisableSampling: true}},
	}
	for _, name := range []string{"zlib", "bz2", "zstd"} {
		for _, in := range inputs {
			c, err := New(name, in.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(name+"/"+in.name, func(b *testing.B) {
				dst := make([]byte, 0, len(in.data))
				var n int
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				for b.Loop() {
					out, _, err := c.Compress(dst, in.data)
					if err != nil {
						b.Fatal(err)
					}
					n = len(out)
				}
				b.ReportMetric(float64(n)/float64(len(in.data)), "ratio")
			})
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"text", textData(benchSize, 100)},
		{"mixed", mixedData(benchSize, 102)},
	}
	for _, name := range []string{"zlib", "bz2", "zstd"} {
		for _, in := range inputs {
			comp := compressed(b, name, in.data)
			c, _ := ForMetadata(name)
			b.Run(name+"/"+in.name, func(b *testing.B) {
				dst := make([]byte, 0, len(in.data))
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Decompress(dst, comp, len(in.data)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("none/random", func(b *testing.B) {
		src := randomData(benchSize, 103)
		c, _ := ForMetadata("none")
		dst := make([]byte, 0, len(src))
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, err := c.Decompress(dst, src, len(src)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
