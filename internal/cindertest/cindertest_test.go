package cindertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shared sample (see ../shared/cinder-sample/README.md).
const (
	sampleVolumeID = "11111111-1111-4111-8111-111111111111"
	sampleFullID   = "5a5a5a5a-0000-4000-8000-000000000001"
	sampleIncrID   = "5a5a5a5a-0000-4000-8000-000000000002"
	restoreVolID   = "22222222-2222-4222-8222-222222222222"
)

func sample(t testing.TB) string {
	t.Helper()
	dir, err := SampleDir()
	require.NoError(t, err)
	return dir
}

func sampleSums(t testing.TB, _ string) map[string]string {
	t.Helper()
	sums, err := SampleSums()
	require.NoError(t, err)
	return sums
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func containerOf(id string) string { return filepath.Join(id[0:2], id[2:4], id) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestSampleDir(t *testing.T) {
	dir := sample(t)
	assert.True(t, filepath.IsAbs(dir), dir)
	assert.FileExists(t, filepath.Join(dir, "volume-original.img"))
}

// Acceptance 1: real Cinder restores both sample backups bit for bit.
func TestRestoreSample(t *testing.T) {
	Require(t)
	dir := sample(t)
	sums := sampleSums(t, dir)
	for _, tc := range []struct{ name, id, want string }{
		{"full", sampleFullID, "volume-original.img"},
		{"incremental", sampleIncrID, "volume-modified.img"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "restored.img")
			require.NoError(t, Restore(testCtx(t), filepath.Join(dir, "backups"), restoreVolID, tc.id, out))
			assert.Equal(t, sums[tc.want], fileSHA256(t, out), "restored %s != %s", tc.id, tc.want)
		})
	}
}

var tsRe = regexp.MustCompile(`_[0-9]{14}_backup_`)

// normName removes the UTC timestamp from an object name.
func normName(s string) string { return tsRe.ReplaceAllString(s, "_TIMESTAMP_backup_") }

var (
	createdAtLine = regexp.MustCompile(`(?m)^  "created_at": "[^"]*",$`)
	nameLine      = regexp.MustCompile(`(?m)^  "backup_(name|description)": (null|"[^"\n]*"),$`)
	volMetaLine   = regexp.MustCompile(`(?m)^  "volume_meta": (null|".*")$`)
	createdAtRe   = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00$`)
)

// normJSON blanks what legitimately differs between two runs (timestamps,
// names given to the backup, volume_meta) and keeps every other byte.
func normJSON(b []byte) string {
	s := normName(string(b))
	s = createdAtLine.ReplaceAllString(s, `  "created_at": "X",`)
	s = nameLine.ReplaceAllString(s, `  "backup_$1": X,`)
	s = volMetaLine.ReplaceAllString(s, `  "volume_meta": X`)
	return s
}

type backupFiles struct {
	dir     string
	objects map[string]string // normalised name -> real name
}

func listContainer(t *testing.T, dir string) backupFiles {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	bf := backupFiles{dir: dir, objects: map[string]string{}}
	for _, e := range ents {
		bf.objects[normName(e.Name())] = e.Name()
	}
	return bf
}

func (b backupFiles) names() []string {
	var n []string
	for k := range b.objects {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (b backupFiles) read(t *testing.T, norm string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, b.objects[norm]))
	require.NoError(t, err)
	return data
}

func (b backupFiles) suffix(t *testing.T, suf string) string {
	t.Helper()
	for k := range b.objects {
		if strings.HasSuffix(k, suf) {
			return k
		}
	}
	t.Fatalf("no *%s in %s", suf, b.dir)
	return ""
}

// orderedKeys returns the keys of a JSON object in document order.
func orderedKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// Acceptance 2: real Cinder backs the sample volumes up exactly like the
// sample (same objects, bytes, JSON layout, sha256 lists), and restores them.
func TestBackupMatchesSample(t *testing.T) {
	Require(t)
	dir := sample(t)
	sums := sampleSums(t, dir)
	store := t.TempDir()
	ctx := testCtx(t)

	opts := BackupOptions{VolumeID: sampleVolumeID, BackupID: sampleFullID,
		ObjectSize: 1 << 20, BlockSize: 32768, Compression: "zlib"}
	require.NoError(t, Backup(ctx, store, filepath.Join(dir, "volume-original.img"), opts))
	opts.BackupID, opts.ParentID = sampleIncrID, sampleFullID
	require.NoError(t, Backup(ctx, store, filepath.Join(dir, "volume-modified.img"), opts))

	for _, id := range []string{sampleFullID, sampleIncrID} {
		t.Run(id, func(t *testing.T) {
			want := listContainer(t, filepath.Join(dir, "backups", containerOf(id)))
			got := listContainer(t, filepath.Join(store, containerOf(id)))
			require.Equal(t, want.names(), got.names(), "object names (timestamp removed)")

			// Container 0770, objects 0660 (posix driver's chmod).
			st, err := os.Stat(got.dir)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o770), st.Mode().Perm(), "container mode")

			for _, n := range got.names() {
				fi, err := os.Stat(filepath.Join(got.dir, got.objects[n]))
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "mode of %s", n)
				if strings.HasSuffix(n, "_metadata") || strings.HasSuffix(n, "_sha256file") {
					continue
				}
				// Data objects: identical stored (compressed) bytes.
				assert.True(t, bytes.Equal(want.read(t, n), got.read(t, n)), "stored bytes of %s differ", n)
			}

			for _, suf := range []string{"_metadata", "_sha256file"} {
				n := got.suffix(t, suf)
				wb, gb := want.read(t, n), got.read(t, n)
				// Byte-identical JSON apart from timestamps/names/volume_meta.
				assert.Equal(t, normJSON(wb), normJSON(gb), "%s layout", suf)
				assert.False(t, bytes.HasSuffix(gb, []byte("\n")), "%s has a trailing newline", suf)
				var w, g map[string]any
				require.NoError(t, json.Unmarshal(wb, &w))
				require.NoError(t, json.Unmarshal(gb, &g))
				assert.Equal(t, orderedKeys(t, wb), orderedKeys(t, gb), "%s keys", suf)
				assert.Regexp(t, createdAtRe, g["created_at"])
				if suf == "_sha256file" {
					assert.Equal(t, w["sha256s"], g["sha256s"])
					assert.Equal(t, w["chunk_size"], g["chunk_size"])
					continue
				}
				for _, k := range []string{"backup_id", "volume_id", "parent_id", "version"} {
					assert.Equal(t, w[k], g[k], k)
				}
				wo, _ := json.Marshal(w["objects"])
				goj, _ := json.Marshal(g["objects"])
				assert.Equal(t, normName(string(wo)), normName(string(goj)), "objects (offset/length/compression/md5)")

				// volume_meta: a JSON string with the same structure.
				ws, ok1 := w["volume_meta"].(string)
				gs, ok2 := g["volume_meta"].(string)
				require.True(t, ok1 && ok2, "volume_meta must be a string")
				var wm, gm map[string]json.RawMessage
				require.NoError(t, json.Unmarshal([]byte(ws), &wm))
				require.NoError(t, json.Unmarshal([]byte(gs), &gm))
				assert.Equal(t, "2", string(gm["version"]))
				assert.Equal(t, orderedKeys(t, wm["volume-base-metadata"]), orderedKeys(t, gm["volume-base-metadata"]),
					"volume-base-metadata keys")
			}
		})
	}

	for _, tc := range []struct{ id, want string }{
		{sampleFullID, "volume-original.img"},
		{sampleIncrID, "volume-modified.img"},
	} {
		out := filepath.Join(t.TempDir(), "restored.img")
		require.NoError(t, Restore(ctx, store, restoreVolID, tc.id, out))
		assert.Equal(t, sums[tc.want], fileSHA256(t, out), "restore of %s", tc.id)
	}
}

// Cinder on a zero-length volume: no data objects, empty sha256 list, and
// the restore yields an empty file.
func TestZeroLengthVolume(t *testing.T) {
	Require(t)
	store, work := t.TempDir(), t.TempDir()
	vol := filepath.Join(work, "empty.img")
	require.NoError(t, os.WriteFile(vol, nil, 0o644))
	id := "7a7a7a7a-0000-4000-8000-000000000001"
	require.NoError(t, Backup(testCtx(t), store, vol, BackupOptions{VolumeID: sampleVolumeID, BackupID: id}))
	bf := listContainer(t, filepath.Join(store, containerOf(id)))
	require.Len(t, bf.names(), 2, "only _sha256file and _metadata: %v", bf.names())
	var md struct{ Objects []any }
	require.NoError(t, json.Unmarshal(bf.read(t, bf.suffix(t, "_metadata")), &md))
	assert.NotNil(t, md.Objects)
	assert.Empty(t, md.Objects)
	var sf struct{ Sha256s []string }
	require.NoError(t, json.Unmarshal(bf.read(t, bf.suffix(t, "_sha256file")), &sf))
	assert.Empty(t, sf.Sha256s)

	out := filepath.Join(work, "restored.img")
	require.NoError(t, os.WriteFile(out, []byte("old content"), 0o644))
	require.NoError(t, Restore(testCtx(t), store, restoreVolID, id, out))
	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "the target is opened 'wb' (truncated)")
}

// Errors carry the harness's stderr.
func TestErrorsIncludeStderr(t *testing.T) {
	Require(t)
	store := t.TempDir()
	err := Restore(testCtx(t), store, restoreVolID, "deadbeef-0000-4000-8000-000000000000",
		filepath.Join(store, "out.img"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no *_metadata object")

	// A stray object with the backup's prefix breaks Cinder's restore
	// (object-list check).
	dir := sample(t)
	src := filepath.Join(dir, "backups", containerOf(sampleFullID))
	dst := filepath.Join(store, containerOf(sampleFullID))
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644))
	}
	prefix := strings.TrimSuffix(listContainer(t, dst).objects[normName(
		listContainer(t, dst).suffix(t, "_metadata"))], "_metadata")
	require.NoError(t, os.WriteFile(filepath.Join(dst, prefix+"-00009"), []byte("x"), 0o644))
	err = Restore(testCtx(t), store, restoreVolID, sampleFullID, filepath.Join(store, "out.img"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "actual object list does not match object list stored in metadata")
}

// writeSemiCompressible writes n bytes alternating 1 MiB of random data and
// 1 MiB of pseudo-English text (deterministic).
func writeSemiCompressible(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewChaCha8([32]byte{'c', 'i', 'n', 'd', 'e', 'r'}))
	words := strings.Fields(`the of and to in is was that for on with as by at from
		volume backup cinder object chunk block restore incremental parent metadata
		compression zlib storage container offset length driver snapshot service
		a an it be are this which or have has not but all were when we there can
		data file system disk image node cluster write read sync flush cache page`)
	piece := make([]byte, 1<<20)
	for off, i := int64(0), 0; off < n; off, i = off+int64(len(piece)), i+1 {
		if i%2 == 0 {
			for j := 0; j < len(piece); j += 8 {
				v := rng.Uint64()
				for k := 0; k < 8 && j+k < len(piece); k++ {
					piece[j+k] = byte(v >> (8 * k))
				}
			}
		} else {
			p := piece[:0]
			for len(p) < len(piece) {
				p = append(p, words[rng.IntN(len(words))]...)
				if rng.IntN(12) == 0 {
					p = append(p, ".\n"...)
				} else {
					p = append(p, ' ')
				}
			}
			copy(piece, p)
		}
		m := int64(len(piece))
		if n-off < m {
			m = n - off
		}
		_, err := w.Write(piece[:m])
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
}

// BenchmarkCinder measures real Cinder (including ~2.5 s of Python start-up
// per call): full zlib backup and restore of 256 MiB semi-compressible data,
// 50 MiB objects, 32 KiB blocks.
func BenchmarkCinder(b *testing.B) {
	Require(b)
	const size = 256 << 20
	work := b.TempDir()
	vol := filepath.Join(work, "volume.img")
	writeSemiCompressible(b, vol, size)
	ctx := context.Background()
	opts := BackupOptions{VolumeID: sampleVolumeID, ObjectSize: 50 << 20, BlockSize: 32 << 10, Compression: "zlib"}
	store := filepath.Join(work, "store")
	var last string
	b.Run("backup", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			opts.BackupID = fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", i)
			require.NoError(b, os.RemoveAll(store))
			require.NoError(b, Backup(ctx, store, vol, opts))
			last = opts.BackupID
		}
	})
	if last == "" {
		return
	}
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(size)
		out := filepath.Join(work, "restored.img")
		for i := 0; i < b.N; i++ {
			require.NoError(b, Restore(ctx, store, restoreVolID, last, out))
		}
		b.StopTimer()
		require.Equal(b, fileSHA256(b, vol), fileSHA256(b, out))
	})
}
