package nfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// server is one of the real NFS servers the tests run against.
type server struct {
	name      string // servertest name
	env       servertest.Env
	exportDir string // the exported directory, as the server's host sees it
}

func requireServer(t testing.TB, name string) server {
	t.Helper()
	env := servertest.Require(t, name)
	return server{name: name, env: env, exportDir: env.Get(t, "EXPORT_DIR")}
}

// config returns a Config for the server's export, in a fresh subdirectory
// that the test removes when it ends.
func (s server) config(t testing.TB) Config {
	t.Helper()
	port := func(key string) int {
		p, err := strconv.Atoi(s.env.Get(t, key))
		require.NoError(t, err, key)
		return p
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	sub := "test/" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() { os.RemoveAll(filepath.Join(s.exportDir, filepath.FromSlash(sub))) })
	return Config{
		Share:              s.env.Get(t, "HOST") + ":" + s.env.Get(t, "EXPORT"),
		NFSPort:            port("NFS_PORT"),
		MountPort:          port("MOUNT_PORT"),
		Subdirectory:       sub,
		CreateSubdirectory: true,
	}
}

// dir is where the objects of cfg are on the server's host.
func (s server) dir(cfg Config) string {
	return filepath.Join(s.exportDir, filepath.FromSlash(cfg.Subdirectory))
}

func newTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestNFSConformanceGanesha(t *testing.T) {
	s := requireServer(t, "ganesha")
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		tg := newTarget(t, s.config(t))
		require.True(t, tg.AtomicIfNotExists(), "ganesha's VFS export supports hard links")
		return tg
	}, targettest.Options{})
}

func TestNFSConformanceGoNFS(t *testing.T) {
	s := requireServer(t, "gonfs")
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		return newTarget(t, s.config(t))
	}, targettest.Options{
		// go-nfs cannot make hard links (its LINK decodes the call as a
		// SYMLINK), so IfNotExists is a LOOKUP and a RENAME.
		NonAtomicIfNotExists: true,
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// TestNFSIfNotExistsMode checks which IfNotExists each server gets: hard
// links on ganesha, LOOKUP + RENAME on go-nfs, whose LINK does not work.
func TestNFSIfNotExistsMode(t *testing.T) {
	for name, atomic := range map[string]bool{"ganesha": true, "gonfs": false} {
		t.Run(name, func(t *testing.T) {
			s := requireServer(t, name)
			cfg := s.config(t)
			tg := newTarget(t, cfg)
			data := []byte("once")
			require.NoError(t, tg.Put(t.Context(), "x", bytesReader(data), 4, target.PutOptions{IfNotExists: true}))
			err := tg.Put(t.Context(), "x", bytesReader(data), 4, target.PutOptions{IfNotExists: true})
			require.ErrorIs(t, err, target.ErrExists)
			assert.Equal(t, atomic, tg.AtomicIfNotExists())
			entries, err := os.ReadDir(s.dir(cfg))
			require.NoError(t, err)
			require.Len(t, entries, 1, "the temporary file is gone")
			fi, err := os.Stat(filepath.Join(s.dir(cfg), "x"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "created with FileMode")
		})
	}
}

// TestNFSGoNFSRestart restarts a private go-nfs server, which forgets its
// file handles: the target mounts the export again by itself.
func TestNFSGoNFSRestart(t *testing.T) {
	requireServer(t, "gonfs")
	state := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	script := func(action string) {
		cmd := exec.Command("bash", "../scripts/servers/gonfs.sh", action)
		cmd.Env = append(os.Environ(), "CHUNKBACK_SERVERS_DIR="+state, "GONFS_PORT="+strconv.Itoa(port))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "gonfs.sh %s: %s", action, out)
	}
	script("start")
	t.Cleanup(func() { script("stop") })
	tg := newTarget(t, Config{Share: "127.0.0.1:/export", NFSPort: port, MountPort: port, Subdirectory: "a/b", CreateSubdirectory: true})
	data := []byte("before")
	require.NoError(t, tg.Put(t.Context(), "obj", bytesReader(data), int64(len(data)), target.PutOptions{}))

	script("stop")
	script("start")
	info, err := tg.Stat(t.Context(), "obj")
	require.NoError(t, err, "after the restart")
	assert.Equal(t, int64(len(data)), info.Size)
	require.NoError(t, tg.Put(t.Context(), "obj2", bytesReader(data), int64(len(data)), target.PutOptions{}))
}
