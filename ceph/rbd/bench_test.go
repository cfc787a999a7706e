//go:build ceph

package rbd

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
)

// BenchmarkRBDIncremental64MiBOf4GiB backs up a 4 GiB thin image in full,
// and incrementally after 64 MiB of changes (256 writes of 256 KiB spread
// over the image, each at the start of a 4 MiB RBD object), and reports the
// bytes read from RBD per backup next to the time:
//
//	go test -tags ceph,pacific -run '^$' -bench RBDIncremental -benchtime 3x ./ceph/rbd/
//
// The incremental reads the 64 MiB (plus the image's last block), not the
// 4 GiB. (Where a write creates an RBD object, librbd's diff covers the
// object from its start to the write's end, so writes deep into new
// objects read more than they changed.)
func BenchmarkRBDIncremental64MiBOf4GiB(b *testing.B) {
	const (
		size    = 4 << 30
		writes  = 256
		each    = 256 << 10
		changed = writes * each
	)
	ctx := context.Background()
	cl := newCluster(b)
	m := &mirror{cl: cl, ref: cl.newImage(b, cl.pool, size)}
	img := m.open(b)
	buf := make([]byte, each)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9)
	}
	_, err := img.WriteAt(buf, 0)
	require.NoError(b, err)
	img.Close()
	e := posixEngine(b)
	opts := backup.BackupOptions{Compression: "none"}
	base, err := Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: opts})
	require.NoError(b, err)

	img = m.open(b)
	for i := range writes {
		buf[0] = byte(i)
		_, err := img.WriteAt(buf, int64(i)*(size/writes))
		require.NoError(b, err)
	}
	img.Close()

	b.Run("full", func(b *testing.B) {
		var res *BackupResult
		for b.Loop() {
			res, err = Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: opts})
			require.NoError(b, err)
			require.True(b, res.Full)
		}
		b.ReportMetric(float64(res.ImageBytesRead), "rbd-bytes-read/op")
		b.ReportMetric(float64(res.ImageBytesRead)/res.Duration.Seconds()/(1<<20), "rbd-MiB/s")
	})
	b.Run("incremental", func(b *testing.B) {
		var res *BackupResult
		for b.Loop() {
			o := opts
			o.ParentID = base.Info.ID
			res, err = Backup(ctx, e, cl.c, BackupOptions{Image: m.ref, Backup: o})
			require.NoError(b, err)
			require.False(b, res.Full)
		}
		require.EqualValues(b, changed, res.ChangedBytes)
		require.EqualValues(b, changed+32768, res.ImageBytesRead)
		b.ReportMetric(float64(res.ImageBytesRead), "rbd-bytes-read/op")
		b.ReportMetric(float64(res.ChangedBytes), "changed-bytes/op")
	})
}
