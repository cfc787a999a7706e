package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// genSource makes deterministic test data of n bytes: runs of random bytes,
// text and zeros, so codecs, zero skipping and diffs all have work.
func genSource(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	b := make([]byte, n)
	words := []string{"backup ", "volume ", "chunk ", "restore ", "cinder ", "object ", "block\n"}
	for off := 0; off < n; {
		run := min(n-off, 4096*(1+r.IntN(48)))
		switch r.IntN(3) {
		case 0:
			for i := off; i < off+run; i++ {
				b[i] = byte(r.Uint32())
			}
		case 1:
			for i := off; i < off+run; {
				w := words[r.IntN(len(words))]
				i += copy(b[i:off+run], w)
			}
		}
		off += run
	}
	return b
}

// mutate changes count scattered 4 KiB pieces of data, in place.
func mutate(seed uint64, data []byte, count int) {
	r := rand.New(rand.NewPCG(seed, 99))
	for range count {
		off := r.IntN(max(1, len(data)-4096))
		for i := off; i < min(off+4096, len(data)); i++ {
			data[i] = byte(r.Uint32())
		}
	}
}

// fixedNow returns a clock that advances one second per call, so backups made
// in quick succession get distinct, ordered timestamps.
func fixedNow() func() time.Time {
	t := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func newMemEngine(t *testing.T, layout target.Layout) (*Engine, *targettest.Memory) {
	t.Helper()
	mem := targettest.NewMemory()
	mem.SetLayout(layout)
	e, err := New(mem, Config{Now: fixedNow(), Workers: 3})
	require.NoError(t, err)
	return e, mem
}

// memFile is an in-memory io.WriterAt destination with a fixed size (like a
// block device).
type memFile struct {
	data []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m.data)) {
		return 0, io.ErrShortWrite
	}
	return copy(m.data[off:], p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return int64(len(m.data)) + off, nil
	}
	return off, nil
}

// restoreToFile restores into a new temporary file and returns its bytes.
func restoreToFile(t *testing.T, e *Engine, id string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restored.img")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = e.Restore(context.Background(), id, f, RestoreOptions{})
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func requireSameData(t *testing.T, want, got []byte, msg string) {
	t.Helper()
	if !bytes.Equal(want, got) {
		require.Equal(t, len(want), len(got), "%s: length", msg)
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("%s: first difference at byte %d (sha256 want %x got %x)", msg, i, sha256.Sum256(want), sha256.Sum256(got))
			}
		}
	}
}

// objectNames lists the target's names containing substr.
func objectNames(t *testing.T, tg target.Target, substr string) []string {
	t.Helper()
	var names []string
	require.NoError(t, tg.List(context.Background(), "", func(o target.Info) error {
		if strings.Contains(o.Name, substr) {
			names = append(names, o.Name)
		}
		return nil
	}))
	return names
}

// loadDir copies a directory tree into a target, names relative to dir.
func loadDir(t *testing.T, tg target.Target, dir string) {
	t.Helper()
	require.NoError(t, filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		rel, err := filepath.Rel(dir, path)
		require.NoError(t, err)
		return tg.Put(context.Background(), filepath.ToSlash(rel), bytes.NewReader(data), int64(len(data)), target.PutOptions{})
	}))
}
