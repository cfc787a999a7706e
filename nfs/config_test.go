package nfs

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestNFSParseShare(t *testing.T) {
	for share, want := range map[string][2]string{
		"nfs.example.com:/srv/backup": {"nfs.example.com", "/srv/backup"},
		"srv:/":                       {"srv", "/"},
		"10.0.0.7:/export":            {"10.0.0.7", "/export"},
		"[::1]:/export/x":             {"::1", "/export/x"},
		"[fe80::1%eth0]:/e":           {"fe80::1%eth0", "/e"},
		"srv:/a//b/":                  {"srv", "/a/b"},
		"srv:/with:colon":             {"srv", "/with:colon"},
	} {
		host, export, err := ParseShare(share)
		require.NoError(t, err, share)
		assert.Equal(t, want, [2]string{host, export}, share)
	}
	for share, why := range map[string]string{
		"":                  "no ':'",
		"srv":               "no ':'",
		"srv:export":        "does not start with '/'",
		":/export":          "no host",
		"fe80::1:/export":   "IPv6 address without brackets",
		"[::1:/export":      "no ']'",
		"[::1]/export":      "no ':' after",
		"[10.0.0.1]:/e":     "not an IPv6 address",
		"[nfs]:/e":          "not an IPv6 address",
		"user@srv:/export":  "not a host name",
		"srv:/nul\x00":      "NUL",
		"nfs://srv/export":  "looks like a URL",
		"srv with space:/e": "not a host name",
	} {
		_, _, err := ParseShare(share)
		require.ErrorIs(t, err, target.ErrInvalidArgument, share)
		assert.Contains(t, err.Error(), why, share)
		assert.Contains(t, err.Error(), "[ipv6addr]:/path", "the error shows the forms")
	}
}

func TestNFSConfigValidate(t *testing.T) {
	ok := Config{Share: "srv:/export"}
	require.NoError(t, ok.Validate())
	require.NoError(t, Config{MountPoint: "/mnt/backup"}.Validate())
	for field, c := range map[string]Config{
		"Share is empty":     {},
		"both set":           {Share: "srv:/e", MountPoint: "/mnt"},
		"Config.Share":       {Share: "srv"},
		"MountPoint":         {MountPoint: "relative/dir"},
		"Subdirectory":       {Share: "srv:/e", Subdirectory: "a/../b"},
		"NFSPort":            {Share: "srv:/e", NFSPort: 70000},
		"MountPort":          {Share: "srv:/e", MountPort: -1},
		"MountAttempts":      {Share: "srv:/e", MountAttempts: -1},
		"MountRetryDelay":    {Share: "srv:/e", MountRetryDelay: -time.Second},
		"DialTimeout":        {Share: "srv:/e", DialTimeout: -1},
		"Config.Timeout":     {Share: "srv:/e", Timeout: -1},
		"Connections":        {Share: "srv:/e", Connections: -2},
		"IOSize":             {Share: "srv:/e", IOSize: 4 << 20},
		"MachineName":        {Share: "srv:/e", MachineName: string(make([]byte, 256))},
		"FileMode":           {Share: "srv:/e", FileMode: 0o440},
		"Config.Retry":       {Share: "srv:/e", Retry: target.RetryPolicy{MaxAttempts: -1}},
		"IOSize is 100; use": {Share: "srv:/e", IOSize: 100},
	} {
		err := c.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument, field)
		assert.Contains(t, err.Error(), field)
		_, err = New(t.Context(), c)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "New validates: %s", field)
	}
}

func TestNFSConfigDefaults(t *testing.T) {
	c := Config{Share: "srv:/e", Subdirectory: "/a/b/"}.withDefaults()
	assert.Equal(t, 2049, c.NFSPort)
	assert.Equal(t, 20048, c.MountPort)
	assert.Equal(t, 3, c.MountAttempts, "Cinder's backup_mount_attempts")
	assert.Equal(t, time.Second, c.MountRetryDelay)
	assert.Equal(t, 60*time.Second, c.Timeout)
	assert.Equal(t, 1<<20, c.IOSize)
	assert.Equal(t, os.FileMode(0o660), c.FileMode)
	assert.Equal(t, os.FileMode(0o770), c.DirMode)
	assert.Equal(t, "a/b", c.Subdirectory)
	assert.Equal(t, target.RetryPolicy{MaxAttempts: 2}, Config{Retry: target.RetryPolicy{MaxAttempts: 2}}.RetryPolicy())
}

// shmDir returns a fresh directory name below /dev/shm, a tmpfs mount point
// on Linux, which stands in for a kernel-mounted share (the kernel here has
// no NFS client).
func shmDir(t *testing.T) string {
	t.Helper()
	if ok, err := isMountPoint("/dev/shm"); err != nil || !ok {
		t.Skipf("/dev/shm is not a mount point here (%v)", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	sub := "chunkback-nfs-test-" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/dev/shm", sub)) })
	return sub
}

func TestNFSMountPointConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) target.Target {
		tg := newTarget(t, Config{MountPoint: "/dev/shm", Subdirectory: shmDir(t), CreateSubdirectory: true})
		require.Equal(t, target.LayoutPosix, tg.CinderLayout())
		return tg
	})
}

func TestNFSMountPointRefusesUnmountedDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := New(t.Context(), Config{MountPoint: dir})
	require.ErrorIs(t, err, target.ErrNotFound)
	assert.Contains(t, err.Error(), "is not a mount point")
	assert.Contains(t, err.Error(), "AllowUnmounted")

	tg := newTarget(t, Config{MountPoint: dir, AllowUnmounted: true, Subdirectory: "backups", CreateSubdirectory: true})
	data := []byte("local")
	require.NoError(t, tg.Put(t.Context(), "x/y", bytesReader(data), int64(len(data)), target.PutOptions{}))
	got, err := os.ReadFile(filepath.Join(dir, "backups", "x", "y"))
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.True(t, tg.AtomicIfNotExists())

	_, err = New(t.Context(), Config{MountPoint: filepath.Join(dir, "missing")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.MountPoint")
}
