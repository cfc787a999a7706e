package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/cindertest"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

const (
	sampleVolume = "11111111-1111-4111-8111-111111111111"
	sampleFullID = "5a5a5a5a-0000-4000-8000-000000000001"
	sampleIncID  = "5a5a5a5a-0000-4000-8000-000000000002"
)

// sampleDir is the backup set real Cinder 21.3.1 wrote (shared/cinder-sample).
func sampleDir(t *testing.T) string {
	t.Helper()
	dir, err := cindertest.SampleDir()
	require.NoError(t, err)
	return dir
}

func sampleFile(t *testing.T, id, suffix string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(sampleDir(t), "backups", id[0:2], id[2:4], id, "*"+suffix))
	require.NoError(t, err)
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	return data
}

// TestRestoresCinderSample restores both backups real Cinder wrote, bit for
// bit, with no OpenStack code.
func TestRestoresCinderSample(t *testing.T) {
	dir := sampleDir(t)
	sums, err := cindertest.SampleSums()
	require.NoError(t, err)
	mem := targettest.NewMemory()
	mem.SetLayout(target.LayoutPosix)
	loadDir(t, mem, filepath.Join(dir, "backups"))
	e, err := New(mem, Config{})
	require.NoError(t, err)

	list, err := e.List(context.Background(), sampleVolume)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "cinder", list[0].Writer)
	require.EqualValues(t, 8<<20, list[0].Size)

	for id, file := range map[string]string{sampleFullID: "volume-original.img", sampleIncID: "volume-modified.img"} {
		got := restoreToFile(t, e, id)
		sum := sha256.Sum256(got)
		require.Equal(t, sums[file], hex.EncodeToString(sum[:]), "restore of %s must equal %s", id, file)
		rep, err := e.Verify(context.Background(), id, VerifyOptions{Chain: true})
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Faults)
	}
}

// TestWritesCinderFormatByteForByte backs the sample volumes up with the
// sample's settings, IDs and times, and compares what it stores with what
// real Cinder stored: the _sha256file must be identical, and so must the
// _metadata but for chunkback's extra_metadata.
func TestWritesCinderFormatByteForByte(t *testing.T) {
	dir := sampleDir(t)
	mem := targettest.NewMemory()
	mem.SetLayout(target.LayoutPosix)
	times := []time.Time{
		time.Date(2026, 11, 22, 2, 32, 21, 532401000, time.UTC),
		time.Date(2026, 11, 22, 2, 32, 26, 432055000, time.UTC),
	}
	e, err := New(mem, Config{Now: func() time.Time { t := times[0]; times = times[1:]; return t }})
	require.NoError(t, err)
	volumeMeta := func(id string) *string {
		m, err := ParseMetadata(sampleFile(t, id, "_metadata"))
		require.NoError(t, err)
		return m.VolumeMeta
	}
	steps := []struct {
		id, parent, file, name, desc string
	}{
		{sampleFullID, "", "volume-original.img", "sample-full", "full backup, zlib, 1 MiB objects"},
		{sampleIncID, sampleFullID, "volume-modified.img", "sample-incr", "incremental on top of sample-full"},
	}
	extra := regexp.MustCompile(`(?s)\n  "extra_metadata": \{.*?\n  \},`)
	for _, s := range steps {
		src, err := os.Open(filepath.Join(dir, s.file))
		require.NoError(t, err)
		res, err := e.Backup(context.Background(), src, BackupOptions{
			VolumeID: sampleVolume, BackupID: s.id, ParentID: s.parent, Name: s.name, Description: s.desc,
			Compression: "zlib", ObjectSize: 1 << 20, BlockSize: 32768, StoreZeros: true, VolumeMeta: volumeMeta(s.id),
		})
		src.Close()
		require.NoError(t, err)
		ours := func(suffix string) []byte {
			names := objectNames(t, mem, s.id+suffix)
			require.Len(t, names, 1)
			rc, err := mem.Get(context.Background(), names[0], 0, -1)
			require.NoError(t, err)
			defer rc.Close()
			var buf bytes.Buffer
			_, err = buf.ReadFrom(rc)
			require.NoError(t, err)
			return buf.Bytes()
		}
		require.Equal(t, string(sampleFile(t, s.id, "_sha256file")), string(ours("_sha256file")), "%s _sha256file", s.id)
		meta := ours("_metadata")
		require.Regexp(t, extra, string(meta))
		require.Equal(t, string(sampleFile(t, s.id, "_metadata")), extra.ReplaceAllString(string(meta), ""), "%s _metadata", s.id)
		require.Equal(t, 8, res.Objects)
	}
}
