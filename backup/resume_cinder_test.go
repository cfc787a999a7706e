package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/cindertest"
	"github.com/chunkback/chunkback/target/targettest"
)

// TestCinderRestoresAResumedBackupWithALeftoverJournal: REAL Cinder restores
// a backup that was interrupted, resumed, and whose journal was left next to
// it (its delete failed): the journal does not carry the backup's prefix,
// which Cinder's restore would reject as a stray object.
func TestCinderRestoresAResumedBackupWithALeftoverJournal(t *testing.T) {
	cindertest.Require(t)
	ctx := context.Background()
	r := newRig(t, 2)
	data := volumeData()
	o := BackupOptions{VolumeID: sampleVolume, BackupID: resumeID, ObjectSize: 1 << 20, BlockSize: 32768, Resumable: true}
	r.failDataPutsAfter(2)
	_, err := r.e.Backup(ctx, bytes.NewReader(data), o)
	requirePartial(t, err, resumeID, -1)
	r.faulty.Reset()
	r.faulty.Add(targettest.Fault{Op: targettest.OpDelete, Match: func(n string) bool { return strings.Contains(n, journalMarker) }})
	o.Resume = true
	res, err := r.e.Backup(ctx, bytes.NewReader(data), o)
	require.NoError(t, err)
	require.True(t, res.Resumed)
	require.Len(t, objectNames(t, r.posix, journalMarker), 1, "the journal is left behind")

	out := t.TempDir() + "/cinder-restored.img"
	require.NoError(t, cindertest.Restore(ctx, r.dir, sampleVolume, resumeID, out))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "Cinder's restore of a resumed backup")
}
