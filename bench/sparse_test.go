package bench

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkBackupSparse compares a full backup (zlib) of a dense source
// with one of a sparse file 64 times larger that holds the same data in 64
// pieces spread over it, holes between them. The holes, found with
// SEEK_DATA/SEEK_HOLE, are never read, so both should take about the same
// time; MB/s counts the data bytes in both cases.
func BenchmarkBackupSparse(b *testing.B) {
	dense := source(b, 0)
	size := benchSize(b)
	sparse := filepath.Join(b.TempDir(), "sparse.img")
	makeSparse(b, dense, sparse, size, 64)
	for _, c := range []struct{ name, path string }{{"dense", dense}, {"sparse=64x", sparse}} {
		b.Run("source="+c.name, func(b *testing.B) {
			store := b.TempDir()
			measure(b, func() Spec {
				s := spec(KindBackup, store)
				s.Source, s.Compression = c.path, "zlib"
				return s
			}, deleteBackup(b))
		})
	}
}

// makeSparse writes dst, a sparse file of factor x size bytes holding src's
// size bytes as factor pieces, piece k at offset k x size.
func makeSparse(b *testing.B, src, dst string, size int64, factor int64) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(size * factor); err != nil {
		b.Fatal(err)
	}
	piece := size / factor
	for k := range factor {
		n := piece
		if k == factor-1 {
			n = size - piece*k
		}
		if _, err := io.Copy(io.NewOffsetWriter(out, k*size), io.NewSectionReader(in, k*piece, n)); err != nil {
			b.Fatal(err)
		}
	}
}
