package backup

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/cindertest"
	"github.com/chunkback/chunkback/posix"
)

// These tests run REAL OpenStack Cinder 21.3.1 (Debian python3-cinder,
// through internal/cindertest) against backups chunkback writes, and the
// other way round, on a POSIX target: Cinder's backup_posix_path.

type realCinder struct {
	dir    string
	engine *Engine
}

func newRealCinder(t *testing.T) *realCinder {
	cindertest.Require(t)
	dir := t.TempDir()
	p, err := posix.New(dir, posix.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	e, err := New(p, Config{})
	require.NoError(t, err)
	return &realCinder{dir: dir, engine: e}
}

func writeFile(t *testing.T, data []byte) string {
	path := filepath.Join(t.TempDir(), "volume.img")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func (rc *realCinder) cinderRestore(t *testing.T, id string) []byte {
	out := filepath.Join(t.TempDir(), "cinder-restored.img")
	require.NoError(t, cindertest.Restore(context.Background(), rc.dir, sampleVolume, id, out))
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	return data
}

func (rc *realCinder) backupFile(t *testing.T, data []byte, o BackupOptions) *Result {
	f, err := os.Open(writeFile(t, data))
	require.NoError(t, err)
	defer f.Close()
	o.VolumeID = sampleVolume
	res, err := rc.engine.Backup(context.Background(), f, o)
	require.NoError(t, err)
	return res
}

// volumeData is a 6 MiB volume with data, text and a zero region, ending in
// zeros (the case where Cinder's restore depends on the last block being
// stored).
func volumeData() []byte {
	data := genSource(42, 6<<20)
	clear(data[2<<20 : 3<<20])
	clear(data[5<<20:])
	return data
}

// TestCinderRestoresChunkbackBackups: every codec, a full with zero
// extents skipped and an incremental on top, restored by Cinder itself.
func TestCinderRestoresChunkbackBackups(t *testing.T) {
	for _, codec := range []string{"zlib", "bz2", "zstd", "none", "gzip"} {
		t.Run(codec, func(t *testing.T) {
			rc := newRealCinder(t)
			data := volumeData()
			full := rc.backupFile(t, data, BackupOptions{Compression: codec, ObjectSize: 1 << 20, BlockSize: 32768})
			require.Equal(t, sha256.Sum256(data), sha256.Sum256(rc.cinderRestore(t, full.Info.ID)), "Cinder's restore of chunkback's full backup")

			mod := append([]byte{}, data...)
			mutate(5, mod, 6)
			copy(mod[2<<20+4096:], "text written into the zero region")
			inc := rc.backupFile(t, mod, BackupOptions{Compression: codec, ObjectSize: 1 << 20, BlockSize: 32768, ParentID: full.Info.ID})
			require.Equal(t, sha256.Sum256(mod), sha256.Sum256(rc.cinderRestore(t, inc.Info.ID)), "Cinder's restore of chunkback's incremental")
		})
	}
}

// TestMixedChains: a Cinder full with a chunkback incremental on top, and a
// chunkback full with a Cinder incremental on top; both restored by both.
func TestMixedChains(t *testing.T) {
	ctx := context.Background()
	data := volumeData()
	mod := append([]byte{}, data...)
	mutate(9, mod, 5)
	opts := cindertest.BackupOptions{VolumeID: sampleVolume, ObjectSize: 1 << 20, BlockSize: 32768, Compression: "zlib"}

	t.Run("cinder full, chunkback incremental", func(t *testing.T) {
		rc := newRealCinder(t)
		o := opts
		o.BackupID = "c1c1c1c1-0000-4000-8000-000000000001"
		require.NoError(t, cindertest.Backup(ctx, rc.dir, writeFile(t, data), o))
		inc := rc.backupFile(t, mod, BackupOptions{Incremental: true, ObjectSize: 1 << 20, BlockSize: 32768})
		require.Equal(t, o.BackupID, inc.Info.ParentID)
		require.Equal(t, sha256.Sum256(mod), sha256.Sum256(restoreToFile(t, rc.engine, inc.Info.ID)), "chunkback's restore")
		require.Equal(t, sha256.Sum256(mod), sha256.Sum256(rc.cinderRestore(t, inc.Info.ID)), "Cinder's restore")
	})
	t.Run("chunkback full, cinder incremental", func(t *testing.T) {
		rc := newRealCinder(t)
		full := rc.backupFile(t, data, BackupOptions{ObjectSize: 1 << 20, BlockSize: 32768})
		o := opts
		o.BackupID = "c2c2c2c2-0000-4000-8000-000000000002"
		o.ParentID = full.Info.ID
		require.NoError(t, cindertest.Backup(ctx, rc.dir, writeFile(t, mod), o))
		require.Equal(t, sha256.Sum256(mod), sha256.Sum256(restoreToFile(t, rc.engine, o.BackupID)), "chunkback's restore")
		require.Equal(t, sha256.Sum256(mod), sha256.Sum256(rc.cinderRestore(t, o.BackupID)), "Cinder's restore")
		rep, err := rc.engine.Verify(ctx, o.BackupID, VerifyOptions{Chain: true})
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Faults)
	})
}
