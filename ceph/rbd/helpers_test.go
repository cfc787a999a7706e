//go:build ceph

package rbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/posix"
)

// cluster is the real Ceph cluster scripts/servers/ceph.sh runs.
type cluster struct {
	c                *Conn
	env              servertest.Env
	pool, backupPool string
}

func testConfig(tb testing.TB) (Config, servertest.Env) {
	tb.Helper()
	env := servertest.Require(tb, "ceph")
	return Config{Conf: env.Get(tb, "CONF"), User: env.Get(tb, "CLIENT_ID"), Keyring: env.Get(tb, "KEYRING"), ConnectTimeout: 20 * time.Second}, env
}

func newCluster(tb testing.TB) *cluster {
	tb.Helper()
	cfg, env := testConfig(tb)
	c, err := Connect(context.Background(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	return &cluster{c: c, env: env, pool: env.Get(tb, "RBD_POOL"), backupPool: env.Get(tb, "RBD_BACKUP_POOL")}
}

var nameSeq atomic.Int64

// uniqueName returns an image name no other test uses.
func uniqueName(tb testing.TB, what string) string {
	base := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(tb.Name(), "-")
	return fmt.Sprintf("t-%s-%s-%d-%d", strings.ToLower(base), what, time.Now().UnixNano()%1e9, nameSeq.Add(1))
}

// newImage creates a thin image of size bytes, removed (with its
// snapshots) when the test ends.
func (cl *cluster) newImage(tb testing.TB, pool string, size int64) ImageRef {
	tb.Helper()
	ref := ImageRef{Pool: pool, Image: uniqueName(tb, "img")}
	io, err := cl.c.ioctx(pool)
	require.NoError(tb, err)
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	require.NoError(tb, librbd.CreateImage(io, ref.Image, uint64(size), opts))
	tb.Cleanup(func() { cl.removeImage(tb, ref) })
	return ref
}

// removeImage removes an image and its snapshots, if it exists.
func (cl *cluster) removeImage(tb testing.TB, ref ImageRef) {
	io, err := cl.c.ioctx(ref.Pool)
	if err != nil {
		return
	}
	img, err := librbd.OpenImage(io, ref.Image, librbd.NoSnapshot)
	if err != nil {
		return
	}
	snaps, _ := img.GetSnapshotNames()
	for _, s := range snaps {
		if err := img.GetSnapshot(s.Name).Remove(); err != nil {
			tb.Logf("removing %s@%s: %v", ref, s.Name, err)
		}
	}
	img.Close()
	if err := librbd.RemoveImage(io, ref.Image); err != nil {
		tb.Logf("removing %s: %v", ref, err)
	}
}

// removeNativeImages removes the backup images of a volume (cleanup).
func (cl *cluster) removeNativeImages(tb testing.TB, volumeID string) {
	io, err := cl.c.ioctx(cl.backupPool)
	if err != nil {
		return
	}
	names, _ := librbd.GetImageNames(io)
	for _, n := range names {
		if strings.HasPrefix(n, "volume-"+volumeID+".backup.") {
			cl.removeImage(tb, ImageRef{Pool: cl.backupPool, Image: n})
		}
	}
}

// mirror is an image and the bytes it should hold.
type mirror struct {
	cl   *cluster
	ref  ImageRef
	data []byte
	rng  *rand.Rand
}

func (cl *cluster) newMirror(tb testing.TB, size int64, seed uint64) *mirror {
	return &mirror{cl: cl, ref: cl.newImage(tb, cl.pool, size), data: make([]byte, size), rng: rand.New(rand.NewPCG(seed, 7))}
}

func (m *mirror) open(tb testing.TB) *librbd.Image {
	tb.Helper()
	img, err := m.cl.c.openImage(context.Background(), m.ref, false)
	require.NoError(tb, err)
	return img
}

// write writes random bytes at off.
func (m *mirror) write(tb testing.TB, off, n int64) {
	tb.Helper()
	img := m.open(tb)
	defer img.Close()
	buf := make([]byte, (n+7)/8*8)
	for i := 0; i < len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], m.rng.Uint64())
	}
	buf = buf[:n]
	_, err := img.WriteAt(buf, off)
	require.NoError(tb, err)
	copy(m.data[off:], buf)
}

// discard discards n bytes at off (unaligned ranges too).
func (m *mirror) discard(tb testing.TB, off, n int64) {
	tb.Helper()
	img := m.open(tb)
	defer img.Close()
	_, err := img.Discard(uint64(off), uint64(n))
	require.NoError(tb, err)
	clear(m.data[off : off+n])
}

// scatter makes scattered writes and discards across the image, and
// returns how many bytes they touched.
func (m *mirror) scatter(tb testing.TB, writes, discards int) int64 {
	tb.Helper()
	size := int64(len(m.data))
	var touched int64
	for range writes {
		n := 1 + m.rng.Int64N(256<<10)
		off := m.rng.Int64N(size - n)
		m.write(tb, off, n)
		touched += n
	}
	for range discards {
		n := 1 + m.rng.Int64N(3<<20)
		off := m.rng.Int64N(size - n)
		m.discard(tb, off, n)
		touched += n
	}
	return touched
}

// readImage reads a whole image (at ref.Snapshot when set).
func (cl *cluster) readImage(tb testing.TB, ref ImageRef) []byte {
	tb.Helper()
	src, err := cl.c.OpenSource(context.Background(), ref)
	require.NoError(tb, err)
	defer src.Close()
	buf := make([]byte, src.Size())
	_, err = src.ReadAt(buf, 0)
	require.NoError(tb, err)
	return buf
}

// requireImage fails unless the image holds exactly want.
func (cl *cluster) requireImage(tb testing.TB, ref ImageRef, want []byte, what string) {
	tb.Helper()
	got := cl.readImage(tb, ref)
	require.Equal(tb, len(want), len(got), "%s: size", what)
	if !bytes.Equal(want, got) {
		for i := range want {
			if want[i] != got[i] {
				tb.Fatalf("%s: %s differs first at byte %d (want %#x, got %#x)", what, ref, i, want[i], got[i])
			}
		}
	}
}

// posixEngine returns an engine on a posix target in a temporary directory.
func posixEngine(tb testing.TB) *backup.Engine {
	tb.Helper()
	t, err := posix.New(tb.TempDir(), posix.Options{NoSync: true})
	require.NoError(tb, err)
	tb.Cleanup(func() { t.Close() })
	e, err := backup.New(t, backup.Config{Workers: 2})
	require.NoError(tb, err)
	return e
}
