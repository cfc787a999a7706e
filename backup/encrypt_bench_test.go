package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/posix"
)

// BenchmarkEncryption compares plain and encrypted full backups and restores
// of a 256 MiB source into a POSIX directory, per codec.
func BenchmarkEncryption(b *testing.B) {
	const size = 256 << 20
	src := genSource(42, size)
	key, err := crypt.StaticKey("", bytes.Repeat([]byte{9}, crypt.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	for _, codec := range []string{"none", "zlib"} {
		for _, mode := range []string{"plain", "encrypted"} {
			var keys crypt.KeyProvider
			if mode == "encrypted" {
				keys = key
			}
			newEngine := func(b *testing.B) *Engine {
				p, err := posix.New(b.TempDir(), posix.Options{NoSync: true})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { p.Close() })
				e, err := New(p, Config{Keys: keys})
				if err != nil {
					b.Fatal(err)
				}
				return e
			}
			opts := BackupOptions{VolumeID: "bench", Compression: codec}
			b.Run(fmt.Sprintf("backup/%s/%s", codec, mode), func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					b.StopTimer()
					e := newEngine(b)
					b.StartTimer()
					if _, err := e.Backup(context.Background(), bytes.NewReader(src), opts); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("restore/%s/%s", codec, mode), func(b *testing.B) {
				e := newEngine(b)
				res, err := e.Backup(context.Background(), bytes.NewReader(src), opts)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				for b.Loop() {
					b.StopTimer()
					f, err := os.Create(filepath.Join(b.TempDir(), "restored.img"))
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := e.Restore(context.Background(), res.Info.ID, f, RestoreOptions{}); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					f.Close()
					os.Remove(f.Name())
					b.StartTimer()
				}
			})
		}
	}
}
