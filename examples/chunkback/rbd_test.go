//go:build ceph

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
)

// rbdImage is a test image on the real cluster, removed with its snapshots
// when the test ends.
type rbdImage struct {
	io   *rados.IOContext
	pool string
	name string
}

func newRBDImage(t *testing.T, io *rados.IOContext, pool, name string, size uint64) *rbdImage {
	t.Helper()
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	require.NoError(t, librbd.CreateImage(io, name, size, opts))
	img := &rbdImage{io: io, pool: pool, name: name}
	t.Cleanup(img.remove)
	return img
}

func (i *rbdImage) remove() {
	if img, err := librbd.OpenImage(i.io, i.name, librbd.NoSnapshot); err == nil {
		snaps, _ := img.GetSnapshotNames()
		for _, s := range snaps {
			_ = img.GetSnapshot(s.Name).Remove()
		}
		img.Close()
	}
	_ = librbd.RemoveImage(i.io, i.name)
}

func (i *rbdImage) writeAt(t *testing.T, data []byte, off int64) {
	t.Helper()
	img, err := librbd.OpenImage(i.io, i.name, librbd.NoSnapshot)
	require.NoError(t, err)
	defer img.Close()
	_, err = img.WriteAt(data, off)
	require.NoError(t, err)
}

func (i *rbdImage) read(t *testing.T) []byte {
	t.Helper()
	img, err := librbd.OpenImageReadOnly(i.io, i.name, librbd.NoSnapshot)
	require.NoError(t, err)
	defer img.Close()
	size, err := img.GetSize()
	require.NoError(t, err)
	buf := make([]byte, size)
	_, err = img.ReadAt(buf, 0)
	require.NoError(t, err)
	return buf
}

// TestRBDSourceAndDestination runs the CLI with rbd:// as the source of a
// full and an incremental backup and as the destination of restores, the
// cluster options given in the URL's query, then through CEPH_CONF and
// CEPH_ARGS.
func TestRBDSourceAndDestination(t *testing.T) {
	env := servertest.Require(t, "ceph")
	radosURL, err := url.Parse(env.Get(t, "URL_RADOS"))
	require.NoError(t, err)
	radosURL.Path = fmt.Sprintf("/rbd-cli-%d", time.Now().UnixNano())
	for name, store := range map[string]string{"posix": "file://" + t.TempDir(), "rados": radosURL.String()} {
		t.Run(name, func(t *testing.T) { rbdCLI(t, env, store) })
	}
}

func rbdCLI(t *testing.T, env servertest.Env, store string) {
	conf, id, keyring, pool := env.Get(t, "CONF"), env.Get(t, "CLIENT_ID"), env.Get(t, "KEYRING"), env.Get(t, "RBD_POOL")
	conn, err := rados.NewConnWithUser(id)
	require.NoError(t, err)
	require.NoError(t, conn.ReadConfigFile(conf))
	require.NoError(t, conn.SetConfigOption("keyring", keyring))
	require.NoError(t, conn.Connect())
	t.Cleanup(conn.Shutdown)
	io, err := conn.OpenIOContext(pool)
	require.NoError(t, err)
	t.Cleanup(io.Destroy)

	const size = 32 << 20
	stamp := time.Now().UnixNano()
	src := newRBDImage(t, io, pool, fmt.Sprintf("t-cli-src-%d", stamp), size)
	want := make([]byte, size)
	r := rand.New(rand.NewPCG(9, 9))
	for _, off := range []int64{0, 9 << 20, size - 100000} {
		n := min(int64(3<<20), size-off)
		chunk := make([]byte, n)
		for i := range chunk {
			chunk[i] = byte(r.Uint32())
		}
		src.writeAt(t, chunk, off)
		copy(want[off:], chunk)
	}
	query := fmt.Sprintf("?conf=%s&id=%s&keyring=%s", conf, id, keyring)
	srcURL := "rbd://" + pool + "/" + src.name + query

	code, out, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--progress", "none", "--json", srcURL)
	require.Equal(t, 0, code, errOut)
	full := jsonOut(t, out)
	require.Equal(t, true, full["full"])
	require.EqualValues(t, size, full["bytes_read"])

	// 100 KiB changed, in objects that held data: the incremental reads
	// about that, not the image.
	patch := bytes.Repeat([]byte{0xab}, 100<<10)
	src.writeAt(t, patch, 10<<20)
	copy(want[10<<20:], patch)
	code, out, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--incremental", "--progress", "none", "--json", srcURL)
	require.Equal(t, 0, code, errOut)
	inc := jsonOut(t, out)
	require.Equal(t, false, inc["full"])
	require.Equal(t, full["backup_id"], inc["parent_id"])
	require.LessOrEqual(t, inc["bytes_read"].(float64), float64(100<<10+2*32768))

	// Restore into a new image (created), an existing one, and a file.
	dest := fmt.Sprintf("t-cli-dst-%d", stamp)
	destImg := &rbdImage{io: io, pool: pool, name: dest}
	t.Cleanup(destImg.remove)
	code, out, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", inc["backup_id"].(string), "--progress", "none", "--json", "rbd://"+pool+"/"+dest+query)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, true, jsonOut(t, out)["verified"])
	require.True(t, bytes.Equal(want, destImg.read(t)), "restored image differs")

	// Through the environment: CEPH_CONF and CEPH_ARGS, as the ceph tools.
	t.Setenv("CEPH_CONF", conf)
	t.Setenv("CEPH_ARGS", "--id "+id+" --keyring="+keyring)
	destImg.writeAt(t, bytes.Repeat([]byte{1}, 1<<20), 20<<20) // old data to replace
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", full["backup_id"].(string), "--progress", "none", "rbd://"+pool+"/"+dest+"?create=false")
	require.Equal(t, 0, code, errOut)
	wantFull := destImg.read(t)
	require.Equal(t, byte(0), wantFull[20<<20], "old data discarded")
	require.False(t, bytes.Equal(want, wantFull), "the full backup predates the patch")
	require.Equal(t, want[:10<<20], wantFull[:10<<20])

	file := filepath.Join(t.TempDir(), "restored.img")
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", inc["backup_id"].(string), "--progress", "none", file)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "restored file differs")

	// Errors: an unknown option, a missing image without create, a
	// snapshot as destination, a wrong keyring.
	code, _, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--progress", "none", "rbd://"+pool+"/"+src.name+"?bogus=1")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `unknown option "bogus"`)
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", full["backup_id"].(string), "--progress", "none", "rbd://"+pool+"/no-such-image?create=false")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "does not exist")
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", full["backup_id"].(string), "--progress", "none", "rbd://"+pool+"/"+dest+"@snap")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "read-only")
	wrong := filepath.Join(t.TempDir(), "wrong.keyring")
	require.NoError(t, os.WriteFile(wrong, []byte("[client.admin]\n\tkey = AQBcD1BmAAAAABAAs5q+5kSIa0dJ0Yf6N8Gk0g==\n"), 0o600))
	code, _, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--progress", "none", "rbd://"+pool+"/"+src.name+"?keyring="+wrong)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "check the user")
	require.NotContains(t, errOut, "AQBcD1Bm")

	code, _, errOut = cli(t, nil, "delete", "--target", store, "--backup-id", full["backup_id"].(string), "--chain")
	require.Equal(t, 0, code, errOut)
}
