package backup

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestMutableName(t *testing.T) {
	for name, want := range map[string]bool{
		"volume_v/20261122100001/az_nova_backup_b1-00001":                         false,
		"volume_v/20261122100001/az_nova_backup_b1-100000":                        false,
		"volume_v/20261122100001/az_nova_backup_b1_metadata":                      false,
		"volume_v/20261122100001/az_nova_backup_b1_sha256file":                    false,
		"ab/cd/abcd-1/volume_v_20261122100001_backup_abcd-1-00003":                false,
		"ab/cd/abcd-1/volume_v_20261122100001_backup_abcd-1_metadata":             false,
		"volume_v/20261122100001/az_nova_backup_b1_journal":                       true,
		"volume_v/20261122100001/az_nova_backup_b1-00001.part":                    true,
		"volume_v/chunkback.lock":                                                 true,
		"volume_v/20261122100001/az_nova_backup_b1-":                              true,
		"volume_v/20261122100001/az_nova_backup__metadata":                        true,
		"volume_v/20261122100001/az_nova_backup_b1/x-00001":                       true,
		"ab/cd/abcd/volume_v_20261122100001_backup_abcd_metadata.chunkback-state": true,
	} {
		require.Equal(t, want, mutableName(name), name)
	}
}

func TestImmutabilityValidate(t *testing.T) {
	for _, im := range []Immutability{{}, {Window: time.Millisecond}, {Window: time.Hour, Mode: "forever"}} {
		_, err := New(targettest.NewMemory(), Config{Immutability: &im})
		require.ErrorIs(t, err, ErrInvalidOptions, "%+v", im)
		require.ErrorContains(t, err, "immutability")
	}
	e, err := New(targettest.NewMemory(), Config{Immutability: &Immutability{Window: time.Hour, Mode: target.RetentionCompliance}})
	require.NoError(t, err)
	w, enforced := e.Immutable()
	require.Equal(t, time.Hour, w)
	require.False(t, enforced, "memory cannot enforce retention")
	e, err = New(targettest.NewMemory(), Config{})
	require.NoError(t, err)
	w, _ = e.Immutable()
	require.Zero(t, w)
}

// offsetClock is the real time plus an offset the test moves forward.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestWriteOnceEngine: in write-once mode, on a real directory and in
// memory, a chain inside the window is refused whole and nothing is
// deleted, nothing can be overwritten, restore works, and once the window
// has passed the chain is deleted.
func TestWriteOnceEngine(t *testing.T) {
	for _, kind := range []string{"posix", "memory"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var tg target.Target = targettest.NewMemory()
			if kind == "posix" {
				p, err := posix.New(t.TempDir(), posix.Options{NoSync: true})
				require.NoError(t, err)
				defer p.Close()
				tg = p
			}
			var clock offsetClock
			e, err := New(tg, Config{Workers: 2, Now: clock.now, Immutability: &Immutability{Window: 24 * time.Hour}})
			require.NoError(t, err)

			data := genSource(1, 3<<20)
			full, err := e.Backup(ctx, bytes.NewReader(data), BackupOptions{VolumeID: "vol", ObjectSize: 1 << 20})
			require.NoError(t, err)
			mutate(2, data, 10)
			inc, err := e.Backup(ctx, bytes.NewReader(data), BackupOptions{VolumeID: "vol", ObjectSize: 1 << 20, Incremental: true})
			require.NoError(t, err)
			before := objectNames(t, tg, "")

			for _, id := range []string{inc.Info.ID, full.Info.ID} {
				deleted, err := e.Delete(ctx, id, DeleteOptions{Chain: true})
				require.ErrorIs(t, err, target.ErrImmutable)
				require.ErrorContains(t, err, "nothing was deleted")
				require.ErrorContains(t, err, "may be deleted after")
				require.Empty(t, deleted)
				require.Equal(t, before, objectNames(t, tg, ""), "objects changed by a refused delete")
			}
			requireSameData(t, data, restoreToFile(t, e, inc.Info.ID), "restore in write-once mode")
			// An engine without write-once mode honours the window the
			// backups recorded.
			plain, err := New(tg, Config{Now: clock.now})
			require.NoError(t, err)
			_, err = plain.Delete(ctx, full.Info.ID, DeleteOptions{Chain: true})
			require.ErrorIs(t, err, target.ErrImmutable)
			require.ErrorContains(t, err, "is write-once: it may be deleted after")
			require.Equal(t, before, objectNames(t, tg, ""), "objects changed by a refused delete")

			// No object of a backup can be replaced, even through the engine's target.
			meta := inc.Info.loc.metadataName()
			err = e.t.Put(ctx, meta, bytes.NewReader([]byte("{}")), 2, target.PutOptions{})
			require.ErrorIs(t, err, target.ErrImmutable)
			require.ErrorIs(t, e.t.Delete(ctx, meta), target.ErrImmutable)
			// Other names stay mutable (a lock, a journal).
			require.NoError(t, e.t.Put(ctx, "volume_vol/chunkback.lock", bytes.NewReader([]byte("a")), 1, target.PutOptions{}))
			require.NoError(t, e.t.Put(ctx, "volume_vol/chunkback.lock", bytes.NewReader([]byte("b")), 1, target.PutOptions{}))
			require.NoError(t, e.t.Delete(ctx, "volume_vol/chunkback.lock"))

			clock.advance(25 * time.Hour)
			deleted, err := e.Delete(ctx, full.Info.ID, DeleteOptions{Chain: true})
			require.NoError(t, err)
			require.Equal(t, []string{inc.Info.ID, full.Info.ID}, deleted)
			require.Empty(t, objectNames(t, tg, "_backup_"))
		})
	}
}

// TestWriteOnceFailedBackupLeavesNoBackup: a backup that fails in
// write-once mode cannot delete what it stored, but no _metadata exists, so
// nothing looks like a backup.
func TestWriteOnceFailedBackupLeavesNoBackup(t *testing.T) {
	ctx := context.Background()
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e, err := New(faulty, Config{Workers: 1, Immutability: &Immutability{Window: time.Hour}})
	require.NoError(t, err)
	faulty.Add(targettest.Fault{Op: targettest.OpPut, Match: func(n string) bool { return strings.HasSuffix(n, "_sha256file") }, Err: errors.New("injected")})
	_, err = e.Backup(ctx, bytes.NewReader(genSource(3, 1<<20)), BackupOptions{VolumeID: "vol", ObjectSize: 1 << 19})
	require.Error(t, err)
	list, err := e.List(ctx, "")
	require.NoError(t, err)
	require.Empty(t, list)
	require.Empty(t, objectNames(t, mem, "_metadata"))
	require.NotEmpty(t, objectNames(t, mem, "-0000"), "write-once mode must not have deleted the data objects")
}

// TestWriteOnceRetriedPut: a store that did the work but lost the reply
// makes the retry find the object already there; write-once mode takes the
// same bytes for success, so the backup completes.
func TestWriteOnceRetriedPut(t *testing.T) {
	ctx := context.Background()
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	retried, err := target.NewRetry(faulty, target.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	require.NoError(t, err)
	e, err := New(retried, Config{Workers: 2, Immutability: &Immutability{Window: time.Hour}})
	require.NoError(t, err)
	faulty.Add(targettest.Fault{Op: targettest.OpPut, Times: 3, After: true, Err: target.ErrUnavailable,
		Match: func(n string) bool { return !strings.HasSuffix(n, "_metadata") }})
	data := genSource(4, 2<<20)
	res, err := e.Backup(ctx, bytes.NewReader(data), BackupOptions{VolumeID: "vol", ObjectSize: 1 << 19})
	require.NoError(t, err)
	require.Equal(t, 3, faulty.Injected(targettest.OpPut))
	requireSameData(t, data, restoreToFile(t, e, res.Info.ID), "restore after lost replies")
}
