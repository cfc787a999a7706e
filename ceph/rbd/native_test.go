//go:build ceph

package rbd

import (
	"context"
	"testing"

	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
)

func (cl *cluster) native(tb testing.TB, cfg NativeConfig) *Native {
	tb.Helper()
	if cfg.Pool == "" {
		cfg.Pool = cl.backupPool
	}
	n, err := NewNative(cl.c, cfg)
	require.NoError(tb, err)
	return n
}

// restoreNative restores a native backup into a new image and into old (an
// existing image holding other data), and checks both.
func (cl *cluster) restoreNative(t *testing.T, n *Native, id string, old *mirror, want []byte) {
	t.Helper()
	ctx := context.Background()
	fresh := ImageRef{Pool: cl.pool, Image: uniqueName(t, "restored")}
	t.Cleanup(func() { cl.removeImage(t, fresh) })
	rr, err := n.Restore(ctx, id, DestinationOptions{Image: fresh, Create: true})
	require.NoError(t, err)
	require.True(t, rr.Created)
	cl.requireImage(t, fresh, want, "native restore into a new image")
	if old == nil {
		return
	}
	rr, err = n.Restore(ctx, id, DestinationOptions{Image: old.ref})
	require.NoError(t, err)
	require.False(t, rr.Created)
	got := cl.readImage(t, old.ref)
	require.Equal(t, want, got[:len(want)], "native restore into an existing image")
	require.Equal(t, make([]byte, len(got)-len(want)), got[len(want):], "the excess bytes are discarded")
}

func TestNativeRoundTripWithRetention(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	const size = 40 << 20
	m := cl.newMirror(t, size, 11)
	m.write(t, 0, 3<<20)
	m.write(t, 17<<20, 1<<20+5)
	m.write(t, 24<<20, 16<<20) // data in every object after 24 MiB
	volume := m.ref.Image
	t.Cleanup(func() { cl.removeNativeImages(t, volume) })
	n := cl.native(t, NativeConfig{MaxSnapshots: 2})
	old := cl.newMirror(t, size+3<<20, 12)
	old.write(t, 0, int64(len(old.data)))

	var ids []string
	var wants [][]byte
	for round := range 4 {
		o := NativeBackupOptions{Source: m.ref}
		if round > 0 {
			m.scatter(t, 15, 3)
			o.Incremental = true
		}
		res, err := n.Backup(ctx, o)
		require.NoError(t, err, "round %d", round)
		require.Equal(t, round == 0, res.Full)
		if round == 0 {
			require.Equal(t, "volume-"+volume+".backup."+res.Backup.ID, res.Backup.Image.Image)
			// librbd lists an object from its start to its data's end.
			require.EqualValues(t, 3<<20+(2<<20+5)+16<<20, res.BytesRead, "a full backup reads only the allocated extents")
		} else {
			require.Equal(t, "volume-"+volume+".backup."+ids[0], res.Backup.Image.Image, "incrementals go into the full backup's image")
			require.LessOrEqual(t, res.BytesRead, res.ChangedBytes)
			require.LessOrEqual(t, res.BytesWritten+res.BytesDiscarded, res.ChangedBytes)
			t.Logf("round %d: diff %d bytes in %d extents; read %d, wrote %d, discarded %d", round, res.ChangedBytes, res.ChangedExtents, res.BytesRead, res.BytesWritten, res.BytesDiscarded)
		}
		ids = append(ids, res.Backup.ID)
		wants = append(wants, append([]byte(nil), m.data...))
		cl.requireImage(t, res.Backup.Image, m.data, "the backup image's snapshot")
	}

	// Retention: the source keeps the newest two backup snapshots; the
	// backup image keeps all four backups.
	snaps, err := cl.c.BackupSnapshots(ctx, m.ref)
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	require.Equal(t, ids[2], snaps[0].BackupID)
	require.Equal(t, ids[3], snaps[1].BackupID)
	all, err := n.List(ctx, volume)
	require.NoError(t, err)
	require.Len(t, all, 4)
	for i, b := range all {
		require.Equal(t, ids[i], b.ID)
	}
	for i, id := range ids {
		cl.restoreNative(t, n, id, old, wants[i])
	}

	// The chain goes on after pruning: an incremental on the latest, which
	// reads exactly the write (its objects existed before).
	m.write(t, 30<<20, 70000)
	res, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref, Incremental: true})
	require.NoError(t, err)
	require.False(t, res.Full)
	require.EqualValues(t, 70000, res.ChangedBytes)
	require.EqualValues(t, 70000, res.BytesRead)
	require.EqualValues(t, 70000, res.BytesWritten)
	ids, wants = append(ids, res.Backup.ID), append(wants, append([]byte(nil), m.data...))

	// Deleting a backup in the middle leaves the others restorable.
	require.NoError(t, n.Delete(ctx, ids[1]))
	_, err = n.Restore(ctx, ids[1], DestinationOptions{Image: old.ref})
	require.ErrorIs(t, err, backup.ErrNotFound)
	cl.restoreNative(t, n, ids[2], nil, wants[2])

	// Deleting the latest, then an incremental on the one before it: the
	// backup image's head is brought back to that snapshot first.
	require.NoError(t, n.Delete(ctx, ids[4]))
	m.write(t, 35<<20, 5000)
	res, err = n.Backup(ctx, NativeBackupOptions{Source: m.ref, ParentID: ids[3]})
	require.NoError(t, err)
	require.False(t, res.Full)
	require.EqualValues(t, 75000, res.ChangedBytes, "both writes since ids[3]")
	onOlder := res.Backup.ID
	cl.restoreNative(t, n, onOlder, nil, m.data)
	cl.restoreNative(t, n, ids[3], nil, wants[3])

	// An incremental on a backup whose source snapshot was pruned: an
	// error, or a full backup into a new image, as the caller chooses.
	_, err = n.Backup(ctx, NativeBackupOptions{Source: m.ref, ParentID: ids[0]})
	require.ErrorIs(t, err, backup.ErrParentUnusable)
	require.ErrorIs(t, err, ErrSnapshotMissing)
	res, err = n.Backup(ctx, NativeBackupOptions{Source: m.ref, ParentID: ids[0], FallbackToFull: true})
	require.NoError(t, err)
	require.True(t, res.Full)
	require.Contains(t, res.FallbackReason, "no longer on")
	require.Equal(t, "volume-"+volume+".backup."+res.Backup.ID, res.Backup.Image.Image)
	cl.restoreNative(t, n, res.Backup.ID, nil, m.data)

	// Deleting every backup of a chain removes its image.
	for _, id := range []string{ids[0], ids[2], ids[3]} {
		require.NoError(t, n.Delete(ctx, id))
	}
	require.NoError(t, n.Delete(ctx, res.Backup.ID))
	left, err := n.List(ctx, volume)
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, onOlder, left[0].ID)
	io, err := cl.c.ioctx(cl.backupPool)
	require.NoError(t, err)
	names, err := librbd.GetImageNames(io)
	require.NoError(t, err)
	require.NotContains(t, names, res.Backup.Image.Image, "the image of a chain without backups is removed")
}

func TestNativeStripingAndJournals(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	m := cl.newMirror(t, 8<<20, 13)
	m.write(t, 100, 3<<20)
	t.Cleanup(func() { cl.removeNativeImages(t, m.ref.Image) })
	n := cl.native(t, NativeConfig{StripeUnit: 1 << 20, StripeCount: 4, ImageJournals: true})
	res, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref})
	require.NoError(t, err)
	img, err := cl.c.openImage(ctx, ImageRef{Pool: res.Backup.Image.Pool, Image: res.Backup.Image.Image}, true)
	require.NoError(t, err)
	unit, err := img.GetStripeUnit()
	require.NoError(t, err)
	count, err := img.GetStripeCount()
	require.NoError(t, err)
	features, err := img.GetFeatures()
	require.NoError(t, err)
	img.Close()
	require.EqualValues(t, 1<<20, unit)
	require.EqualValues(t, 4, count)
	for _, f := range []uint64{librbd.FeatureJournaling, librbd.FeatureExclusiveLock, librbd.FeatureStripingV2, librbd.FeatureFastDiff} {
		require.NotZero(t, features&f, "feature %#x", f)
	}
	m.scatter(t, 5, 1)
	inc, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref, Incremental: true})
	require.NoError(t, err)
	cl.restoreNative(t, n, inc.Backup.ID, nil, m.data)

	// Without the options: librbd's default striping, no journal.
	m2 := cl.newMirror(t, 4<<20, 14)
	m2.write(t, 0, 4096)
	t.Cleanup(func() { cl.removeNativeImages(t, m2.ref.Image) })
	res, err = cl.native(t, NativeConfig{}).Backup(ctx, NativeBackupOptions{Source: m2.ref})
	require.NoError(t, err)
	img, err = cl.c.openImage(ctx, ImageRef{Pool: res.Backup.Image.Pool, Image: res.Backup.Image.Image}, true)
	require.NoError(t, err)
	features, err = img.GetFeatures()
	require.NoError(t, err)
	img.Close()
	require.Zero(t, features&librbd.FeatureJournaling)
	require.NotZero(t, features&librbd.FeatureFastDiff)
}

func TestNativeErrors(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	m := cl.newMirror(t, 1<<20, 15)
	t.Cleanup(func() { cl.removeNativeImages(t, m.ref.Image) })
	n := cl.native(t, NativeConfig{})
	_, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref, Incremental: true})
	require.ErrorIs(t, err, backup.ErrParentUnusable)
	require.ErrorContains(t, err, "no native backup")
	res, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref, Incremental: true, FallbackToFull: true})
	require.NoError(t, err)
	require.True(t, res.Full)
	_, err = n.Backup(ctx, NativeBackupOptions{Source: m.ref, BackupID: res.Backup.ID})
	require.ErrorIs(t, err, backup.ErrExists)
	snap := m.ref
	snap.Snapshot = "x"
	_, err = n.Backup(ctx, NativeBackupOptions{Source: snap})
	require.ErrorIs(t, err, backup.ErrInvalidOptions)
	_, err = n.Restore(ctx, "no-such-backup", DestinationOptions{Image: m.ref})
	require.ErrorIs(t, err, backup.ErrNotFound)
	missing := cl.native(t, NativeConfig{Pool: "no-such-pool"})
	_, err = missing.Backup(ctx, NativeBackupOptions{Source: m.ref})
	require.ErrorContains(t, err, "no-such-pool")
}

// TestNativeRevertsHead: a backup that failed midway leaves writes in the
// backup image's head that no snapshot holds; the next incremental must
// bring the head back to the parent's snapshot before applying its diff.
func TestNativeRevertsHead(t *testing.T) {
	ctx := context.Background()
	cl := newCluster(t)
	m := cl.newMirror(t, 8<<20, 16)
	m.write(t, 0, 8<<20)
	t.Cleanup(func() { cl.removeNativeImages(t, m.ref.Image) })
	n := cl.native(t, NativeConfig{})
	full, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref})
	require.NoError(t, err)

	// What an interrupted import leaves: writes and a discard in the head.
	head, err := cl.c.openImage(ctx, ImageRef{Pool: full.Backup.Image.Pool, Image: full.Backup.Image.Image}, false)
	require.NoError(t, err)
	_, err = head.WriteAt(make([]byte, 200000), 3<<20)
	require.NoError(t, err)
	_, err = head.Discard(6<<20, 1<<20)
	require.NoError(t, err)
	require.NoError(t, head.Close())

	m.write(t, 1<<20, 4096)
	inc, err := n.Backup(ctx, NativeBackupOptions{Source: m.ref, Incremental: true})
	require.NoError(t, err)
	require.EqualValues(t, 4096, inc.ChangedBytes)
	cl.requireImage(t, inc.Backup.Image, m.data, "the incremental's snapshot")
	cl.restoreNative(t, n, inc.Backup.ID, nil, m.data)
}
