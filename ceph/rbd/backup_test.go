//go:build ceph

package rbd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/ceph"
	"github.com/chunkback/chunkback/target"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{User: "client.admin"}, `without the "client." prefix`},
		{Config{User: "a b"}, "spaces"},
		{Config{ConnectTimeout: -1}, "ConnectTimeout"},
		{Config{OpTimeout: -time.Second}, "OpTimeout"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument)
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, Config{}.Validate())
	for _, tc := range []struct {
		cfg  NativeConfig
		want string
	}{
		{NativeConfig{Pool: "a/b"}, "Pool"},
		{NativeConfig{StripeUnit: 3000}, "StripeUnit"},
		{NativeConfig{StripeUnit: 8 << 20}, "StripeUnit"},
		{NativeConfig{MaxSnapshots: -1}, "MaxSnapshots"},
		{NativeConfig{Workers: -1}, "Workers"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument)
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, NativeConfig{StripeUnit: 1 << 20, StripeCount: 4}.Validate())
}

func TestParseImageRef(t *testing.T) {
	r, err := ParseImageRef("rbd/vol-1@snap.2")
	require.NoError(t, err)
	require.Equal(t, ImageRef{Pool: "rbd", Image: "vol-1", Snapshot: "snap.2"}, r)
	require.Equal(t, "rbd/vol-1@snap.2", r.String())
	for _, bad := range []string{"novolume", "/img", "pool/", "pool/img@", "pool/a/b"} {
		_, err := ParseImageRef(bad)
		require.ErrorIs(t, err, target.ErrInvalidArgument, bad)
	}
}

func TestConnectWrongCredentials(t *testing.T) {
	cfg, _ := testConfig(t)
	// A keyring with a key the cluster does not know.
	bad := filepath.Join(t.TempDir(), "wrong.keyring")
	require.NoError(t, os.WriteFile(bad, []byte("[client.admin]\n\tkey = AQBcD1BmAAAAABAAs5q+5kSIa0dJ0Yf6N8Gk0g==\n"), 0o600))
	wrongKey := cfg
	wrongKey.Keyring = bad
	wrongKey.ConnectTimeout = 10 * time.Second
	start := time.Now()
	_, err := Connect(context.Background(), wrongKey)
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "client.admin")
	require.NotContains(t, err.Error(), "AQBcD1Bm", "the key must not appear in errors")
	require.Less(t, time.Since(start), 9*time.Second, "a refused key fails at once, not by timeout")

	wrongUser := cfg
	wrongUser.User = "nobody-here"
	wrongUser.ConnectTimeout = 10 * time.Second
	_, err = Connect(context.Background(), wrongUser)
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "client.nobody-here")

	missingConf := cfg
	missingConf.Conf = filepath.Join(t.TempDir(), "none.conf")
	_, err = Connect(context.Background(), missingConf)
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.ErrorContains(t, err, "ceph.conf")
}

func TestMissingPoolAndImage(t *testing.T) {
	cl := newCluster(t)
	_, err := cl.c.OpenSource(context.Background(), ImageRef{Pool: "no-such-pool", Image: "x"})
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, "no-such-pool")
	_, err = cl.c.OpenSource(context.Background(), ImageRef{Pool: cl.pool, Image: "no-such-image"})
	require.ErrorIs(t, err, target.ErrNotFound)
	_, err = cl.c.OpenDestination(context.Background(), DestinationOptions{Image: ImageRef{Pool: cl.pool, Image: "no-such-image"}, Size: 1 << 20})
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, "Create")
}

// roundTrip backs an image up into e (a full backup and three incrementals
// with scattered writes and discards in between) and restores every backup
// into a new image and into an existing, larger image full of old data,
// comparing bit for bit.
func roundTrip(t *testing.T, cl *cluster, e *backup.Engine) {
	ctx := context.Background()
	const size = 32 << 20
	m := cl.newMirror(t, size, 1)
	m.write(t, 0, 5<<20)
	m.write(t, 20<<20, 3<<20+123)
	m.write(t, size-70000, 70000)
	volume := m.ref.Image
	bo := backup.BackupOptions{VolumeID: volume, ObjectSize: 4 << 20, Compression: "zstd"}

	// An existing destination, larger than the source, full of old data.
	old := cl.newMirror(t, size+5<<20+777, 2)
	old.write(t, 0, int64(len(old.data)))

	var ids []string
	var wants [][]byte
	for round := range 4 {
		o := BackupOptions{Image: m.ref, Backup: bo}
		touched := int64(0)
		if round > 0 {
			touched = m.scatter(t, 20, 3)
			o.Backup.Incremental = true
		}
		res, err := Backup(ctx, e, cl.c, o)
		require.NoError(t, err, "round %d", round)
		require.Equal(t, round == 0, res.Full)
		require.Regexp(t, `^backup\.`+res.Info.ID+`\.snap\.\d+\.\d{6}$`, res.Snapshot)
		cl.requireImage(t, ImageRef{Pool: m.ref.Pool, Image: m.ref.Image, Snapshot: res.Snapshot}, m.data, "the snapshot")
		if round == 0 {
			require.EqualValues(t, size, res.ImageBytesRead)
		} else {
			require.Equal(t, ids[round-1], res.Info.ParentID)
			require.NotEmpty(t, res.ParentSnapshot)
			// librbd's diff is at least what changed, and the engine reads
			// only whole 32 KiB blocks of it (plus the last block).
			require.GreaterOrEqual(t, res.ChangedBytes, touched/2)
			require.LessOrEqual(t, res.ImageBytesRead, res.ChangedBytes+int64(res.ChangedExtents+1)*2*32768)
			require.Less(t, res.ImageBytesRead, int64(size)/2, "an incremental read most of the image")
			t.Logf("round %d: touched %d bytes, librbd diff %d bytes in %d extents, read %d bytes", round, touched, res.ChangedBytes, res.ChangedExtents, res.ImageBytesRead)
		}
		ids = append(ids, res.Info.ID)
		wants = append(wants, append([]byte(nil), m.data...))
	}

	for i, id := range ids {
		fresh := ImageRef{Pool: cl.pool, Image: uniqueName(t, "restored")}
		t.Cleanup(func() { cl.removeImage(t, fresh) })
		rr, err := Restore(ctx, e, cl.c, id, RestoreOptions{Image: fresh, Create: true})
		require.NoError(t, err)
		require.True(t, rr.Created)
		require.Zero(t, rr.BytesDiscarded, "a new image needs no discards")
		cl.requireImage(t, fresh, wants[i], "restore into a new image")

		rr, err = Restore(ctx, e, cl.c, id, RestoreOptions{Image: old.ref})
		require.NoError(t, err)
		require.False(t, rr.Created)
		require.Positive(t, rr.BytesDiscarded)
		got := cl.readImage(t, old.ref)
		require.Len(t, got, len(old.data), "the destination keeps its size")
		require.Equal(t, wants[i], got[:size], "restore %d into an existing image", i)
		require.Equal(t, make([]byte, len(got)-size), got[size:], "the excess bytes are discarded")
	}
	deleted, err := e.Delete(ctx, ids[0], backup.DeleteOptions{Chain: true})
	require.NoError(t, err)
	require.Len(t, deleted, len(ids))
}

func TestRoundTripPosix(t *testing.T) {
	roundTrip(t, newCluster(t), posixEngine(t))
}

// TestRoundTripRADOS: RBD image -> RADOS target -> RBD image, on the same
// cluster.
func TestRoundTripRADOS(t *testing.T) {
	cl := newCluster(t)
	cfg, env := testConfig(t)
	tg, err := ceph.New(context.Background(), ceph.Config{
		Conf: cfg.Conf, User: cfg.User, Keyring: cfg.Keyring,
		Pool: env.Get(t, "POOL"), Prefix: uniqueName(t, "prefix"),
	})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	e, err := backup.New(tg, backup.Config{Workers: 2})
	require.NoError(t, err)
	roundTrip(t, cl, e)
}

func TestRestoreDestinationTooSmall(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	e := posixEngine(t)
	m := cl.newMirror(t, 8<<20, 3)
	m.write(t, 1<<20, 100000)
	res, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref})
	require.NoError(t, err)
	small := cl.newImage(t, cl.pool, 4<<20)
	_, err = Restore(ctx, e, cl.c, res.Info.ID, RestoreOptions{Image: small})
	require.ErrorIs(t, err, backup.ErrDestination)
	require.ErrorContains(t, err, "holds 4194304 bytes but the backup needs 8388608")

	// KeepExcessBytes leaves a larger image's tail alone.
	big := cl.newMirror(t, 12<<20, 4)
	big.write(t, 0, 12<<20)
	_, err = Restore(ctx, e, cl.c, res.Info.ID, RestoreOptions{Image: big.ref, KeepExcessBytes: true})
	require.NoError(t, err)
	want := append(append([]byte(nil), m.data...), big.data[8<<20:]...)
	cl.requireImage(t, big.ref, want, "restore keeping the excess bytes")
}

func TestIncrementalReadsOnlyChanged(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	e := posixEngine(t)
	const size = 256 << 20
	m := cl.newMirror(t, size, 5)
	m.write(t, 0, 4<<20)
	full, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{Compression: "none"}})
	require.NoError(t, err)
	require.EqualValues(t, size, full.ImageBytesRead)

	// 8 MiB changed: 32 writes of 256 KiB across the image, each at the
	// start of a 4 MiB RBD object. (Where a write makes a new object, librbd's
	// diff reports the object from its start to the write's end.)
	for i := range 32 {
		m.write(t, int64(i)*(size/32), 256<<10)
	}
	inc, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{Compression: "none", Incremental: true}})
	require.NoError(t, err)
	require.False(t, inc.Full)
	require.EqualValues(t, 8<<20, inc.ChangedBytes)
	// The 8 MiB, and the last block, which an incremental always hashes.
	require.EqualValues(t, 8<<20+32768, inc.ImageBytesRead)
	require.EqualValues(t, inc.ImageBytesRead, inc.BytesRead)
	require.EqualValues(t, 8<<20, inc.BytesChanged)
	t.Logf("full: read %d bytes in %v; incremental: read %d bytes in %v", full.ImageBytesRead, full.Duration, inc.ImageBytesRead, inc.Duration)

	// Nothing changed: only the last block is read.
	none, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{Incremental: true}})
	require.NoError(t, err)
	require.Zero(t, none.ChangedBytes)
	require.EqualValues(t, 32768, none.ImageBytesRead)
	require.Zero(t, none.Objects)

	dst := ImageRef{Pool: cl.pool, Image: uniqueName(t, "restored")}
	t.Cleanup(func() { cl.removeImage(t, dst) })
	_, err = Restore(ctx, e, cl.c, none.Info.ID, RestoreOptions{Image: dst, Create: true})
	require.NoError(t, err)
	cl.requireImage(t, dst, m.data, "restore of the chain")
}

func TestDeletedParentSnapshot(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	e := posixEngine(t)
	m := cl.newMirror(t, 16<<20, 6)
	m.write(t, 0, 1<<20)
	full, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref})
	require.NoError(t, err)
	require.NoError(t, cl.c.RemoveSnapshot(ctx, ImageRef{Pool: m.ref.Pool, Image: m.ref.Image, Snapshot: full.Snapshot}))
	m.write(t, 5<<20, 1000)

	// The caller's choice: a clear error...
	_, err = Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{ParentID: full.Info.ID}})
	require.ErrorIs(t, err, backup.ErrParentUnusable)
	require.ErrorIs(t, err, ErrSnapshotMissing)
	require.ErrorContains(t, err, full.Info.ID)
	require.ErrorContains(t, err, "FallbackToFull")
	snaps, err := cl.c.BackupSnapshots(ctx, m.ref)
	require.NoError(t, err)
	require.Empty(t, snaps, "a refused backup leaves no snapshot behind")

	// ...or a full backup.
	res, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{Incremental: true, FallbackToFull: true}})
	require.NoError(t, err)
	require.True(t, res.Full)
	require.Contains(t, res.FallbackReason, "snapshot")
	require.EqualValues(t, 16<<20, res.ImageBytesRead)
	dst := ImageRef{Pool: cl.pool, Image: uniqueName(t, "restored")}
	t.Cleanup(func() { cl.removeImage(t, dst) })
	_, err = Restore(ctx, e, cl.c, res.Info.ID, RestoreOptions{Image: dst, Create: true})
	require.NoError(t, err)
	cl.requireImage(t, dst, m.data, "restore of the fallback full backup")
}

func TestNamedSnapshotsAndPruning(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	e := posixEngine(t)
	m := cl.newMirror(t, 16<<20, 7)
	m.write(t, 0, 2<<20)
	s1 := ImageRef{Pool: m.ref.Pool, Image: m.ref.Image, Snapshot: "nightly-1"}
	require.NoError(t, cl.c.CreateSnapshot(ctx, s1))
	m.write(t, 8<<20, 40000) // after the snapshot: not in the backup
	res1, err := Backup(ctx, e, cl.c, BackupOptions{Image: s1})
	require.NoError(t, err)
	require.Equal(t, "nightly-1", res1.Snapshot)
	require.Contains(t, *res1.Info.Metadata.VolumeMeta, `"snapshot":"nightly-1"`)

	s2 := s1
	s2.Snapshot = "nightly-2"
	require.NoError(t, cl.c.CreateSnapshot(ctx, s2))
	res2, err := Backup(ctx, e, cl.c, BackupOptions{Image: s2, Backup: backup.BackupOptions{Incremental: true}})
	require.NoError(t, err)
	require.False(t, res2.Full)
	require.Equal(t, "nightly-1", res2.ParentSnapshot, "found through the parent's volume_meta")
	require.EqualValues(t, 40000, res2.ChangedBytes)

	// Backups taking their own snapshots, keeping the newest two; named
	// snapshots are never pruned.
	var last *BackupResult
	for range 3 {
		m.write(t, 12<<20, 5000)
		last, err = Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{Incremental: true}, MaxSnapshots: 2})
		require.NoError(t, err)
		require.False(t, last.Full)
	}
	require.Len(t, last.PrunedSnapshots, 1)
	snaps, err := cl.c.BackupSnapshots(ctx, m.ref)
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	require.Equal(t, last.Snapshot, snaps[1].Name)
	img := m.open(t)
	ok1, _ := hasSnapshot(img, "nightly-1")
	ok2, _ := hasSnapshot(img, "nightly-2")
	img.Close()
	require.True(t, ok1 && ok2)

	dst := ImageRef{Pool: cl.pool, Image: uniqueName(t, "restored")}
	t.Cleanup(func() { cl.removeImage(t, dst) })
	_, err = Restore(ctx, e, cl.c, last.Info.ID, RestoreOptions{Image: dst, Create: true})
	require.NoError(t, err)
	cl.requireImage(t, dst, m.data, "restore of a chain across named and own snapshots")
}

func TestBackupOptionErrors(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	e := posixEngine(t)
	m := cl.newMirror(t, 1<<20, 8)
	_, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: backup.BackupOptions{BackupID: "has.dots"}})
	require.ErrorIs(t, err, backup.ErrInvalidOptions)
	require.ErrorContains(t, err, "letters, digits")
	_, err = Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, MaxSnapshots: -1})
	require.ErrorIs(t, err, backup.ErrInvalidOptions)
	_, err = Backup(ctx, e, cl.c, BackupOptions{Image: ImageRef{Pool: cl.pool}})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	_, err = Backup(ctx, e, cl.c, BackupOptions{Image: ImageRef{Pool: cl.pool, Image: "no-such-image"}})
	require.ErrorIs(t, err, target.ErrNotFound)
}

// TestCancelledBackupLeavesNothing: a backup whose context ends leaves no
// backup on the target and no snapshot on the image.
func TestCancelledBackupLeavesNothing(t *testing.T) {
	cl := newCluster(t)
	e := posixEngine(t)
	m := cl.newMirror(t, 64<<20, 9)
	m.write(t, 0, 64<<20)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := PrepareBackup(ctx, e, cl.c, BackupOptions{Image: m.ref})
	require.NoError(t, err)
	snaps, err := cl.c.BackupSnapshots(context.Background(), m.ref)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	p.Options.Progress = func(backup.Progress) { cancel() }
	p.Options.ProgressInterval = time.Millisecond
	res, err := e.Backup(ctx, p.Source, p.Options)
	_, err = p.Finish(ctx, res, err)
	require.ErrorIs(t, err, context.Canceled)
	list, err := e.List(context.Background(), "")
	require.NoError(t, err)
	require.Empty(t, list)
	snaps, err = cl.c.BackupSnapshots(context.Background(), m.ref)
	require.NoError(t, err)
	require.Empty(t, snaps)
}
