package targeturl

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/nfs"
	"github.com/chunkback/chunkback/target"
)

func TestNFSConfigFromURL(t *testing.T) {
	u32 := func(n uint32) *uint32 { return &n }
	for raw, want := range map[string]nfs.Config{
		"nfs://srv/export":                       {Share: "srv:/export"},
		"nfs://srv:12049/export/ci?mount_port=9": {Share: "srv:/export", Subdirectory: "ci", NFSPort: 12049, MountPort: 9},
		"nfs://10.0.0.1/export/a/b?uid=1000&gid=1001": {
			Share: "10.0.0.1:/export", Subdirectory: "a/b", UID: u32(1000), GID: u32(1001),
		},
		"nfs://[::1]:2049/export/x":                     {Share: "[::1]:/export", Subdirectory: "x", NFSPort: 2049},
		"nfs://srv/srv/nfs/backups/vol?export=/srv/nfs": {Share: "srv:/srv/nfs", Subdirectory: "backups/vol"},
		"nfs://srv/srv/nfs?export=/srv/nfs/":            {Share: "srv:/srv/nfs"},
		"nfs://srv/e?timeout=5s&connections=2&mount_attempts=1&privileged_port=true": {
			Share: "srv:/e", Timeout: 5 * time.Second, Connections: 2, MountAttempts: 1, PrivilegedPort: true,
		},
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		got, err := nfsConfig(u)
		require.NoError(t, err, raw)
		assert.Equal(t, want, got, raw)
	}
}

func TestNFSConfigFromBadURL(t *testing.T) {
	for raw, wantMsg := range map[string]string{
		"nfs:///export":                       "no host",
		"nfs://srv":                           "no export path",
		"nfs://srv/":                          "no export path",
		"nfs://user:secret@srv/export":        "no user or password",
		"nfs://srv/export?bogus=1":            `unknown parameter "bogus"`,
		"nfs://srv/export?mount_port=x":       "mount_port",
		"nfs://srv/export?uid=-1":             "uid",
		"nfs://srv/export?gid=root":           "gid",
		"nfs://srv/export?timeout=soon":       "timeout",
		"nfs://srv/export?privileged_port=ok": "privileged_port",
		"nfs://srv/a/b?export=/c":             "does not start with the export /c",
		"nfs://srv/ab?export=/a":              "does not start with the export /a",
		"nfs://srv/e/../x":                    "Subdirectory",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = nfsConfig(u)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), wantMsg, raw)
		assert.NotContains(t, err.Error(), "secret", raw)
	}
}

// TestNFSOpen opens the URL each NFS server's start script wrote, against
// the real server, and stores and reads an object through it.
func TestNFSOpen(t *testing.T) {
	for _, server := range []string{"ganesha", "gonfs"} {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			var rnd [6]byte
			_, _ = rand.Read(rnd[:])
			sub := "targeturl-" + hex.EncodeToString(rnd[:])
			t.Cleanup(func() { os.RemoveAll(filepath.Join(env.Get(t, "EXPORT_DIR"), "ci", sub)) })
			u, err := url.Parse(env.Get(t, "URL_NFS"))
			require.NoError(t, err)
			u.Path += "/" + sub

			_, err = Open(t.Context(), u.String(), Options{})
			require.ErrorIs(t, err, target.ErrNotFound, "a missing directory without Options.Create")
			assert.Contains(t, err.Error(), "CreateSubdirectory")

			o, err := Open(t.Context(), u.String(), Options{Create: true})
			require.NoError(t, err)
			defer o.Close()
			assert.Equal(t, "nfs", o.Scheme)
			layout, ok := target.As[target.LayoutTarget](o)
			require.True(t, ok)
			assert.Equal(t, target.LayoutPosix, layout.CinderLayout())

			data := []byte("hello over NFS")
			require.NoError(t, o.Put(t.Context(), "a/b/obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
			rc, err := o.Get(t.Context(), "a/b/obj", 0, -1)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			assert.Equal(t, data, got)
			onDisk, err := os.ReadFile(filepath.Join(env.Get(t, "EXPORT_DIR"), "ci", sub, "a", "b", "obj"))
			require.NoError(t, err)
			assert.Equal(t, data, onDisk, "the file on the server's disk")
			require.NoError(t, o.Delete(t.Context(), "a/b/obj"))
		})
	}
}
