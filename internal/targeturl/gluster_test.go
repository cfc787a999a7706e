//go:build gluster

package targeturl

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gluster"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

func TestGlusterConfigFromURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want gluster.Config
	}{
		{"gluster://g1.example.com/backups", gluster.Config{Host: "g1.example.com", Volume: "backups"}},
		{"gluster://192.0.2.7:24008/backups/cinder/ci/", gluster.Config{Host: "192.0.2.7", Port: 24008, Volume: "backups", Path: "cinder/ci"}},
		{"gluster://[2001:db8::1]/vol", gluster.Config{Host: "2001:db8::1", Volume: "vol"}},
		{
			"gluster://h/vol/p?log_file=/tmp/gfapi.log&log_level=debug&connect_timeout=5&max_attempts=2&nosync=true",
			gluster.Config{Host: "h", Volume: "vol", Path: "p", LogFile: "/tmp/gfapi.log", LogLevel: "debug",
				ConnectTimeout: 5 * time.Second, MaxAttempts: 2, NoSync: true},
		},
		{"gluster://h/vol?connect_timeout=1m30s", gluster.Config{Host: "h", Volume: "vol", ConnectTimeout: 90 * time.Second}},
	} {
		u, err := url.Parse(tc.raw)
		require.NoError(t, err)
		got, err := glusterConfig(u)
		require.NoError(t, err, tc.raw)
		assert.Equal(t, tc.want, got, tc.raw)
	}
	for raw, want := range map[string]string{
		"gluster:///vol":                       "no host",
		"gluster://h":                          "no volume",
		"gluster://h/":                         "no volume",
		"gluster://user:secret@h/vol":          "no credentials",
		"gluster://h/vol?volume=x":             `unknown parameter "volume"`,
		"gluster://h/vol?connect_timeout=soon": "connect_timeout",
		"gluster://h/vol?connect_timeout=-1":   "Config.ConnectTimeout",
		"gluster://h/vol?max_attempts=many":    "max_attempts",
		"gluster://h/vol?log_level=loud":       "Config.LogLevel",
		"gluster://h/vol?nosync=maybe":         "nosync",
		"gluster://h/vol/a/../b":               "Config.Path",
		"gluster://h:99999/vol":                "Config.Port",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = glusterConfig(u)
		require.ErrorContains(t, err, want, raw)
		require.NotContains(t, err.Error(), "secret", raw)
	}
}

// TestGlusterURL opens the URL the start script wrote against the real
// glusterd and does a Put and a Get through the decorators.
func TestGlusterURL(t *testing.T) {
	env := servertest.Require(t, "gluster")
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	raw := env.Get(t, "URL_GLUSTER") + "/targeturl-" + hex.EncodeToString(rnd[:])
	ctx := t.Context()

	_, err := Open(ctx, raw, Options{})
	require.ErrorIs(t, err, target.ErrNotFound, "a missing directory without Create")
	require.ErrorContains(t, err, "CreatePath")

	o, err := Open(ctx, raw, Options{Create: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, o.Close()) }() // about 10 s: glfs_fini
	assert.Equal(t, "gluster", o.Scheme)
	lt, ok := target.As[target.LayoutTarget](o)
	require.True(t, ok)
	assert.Equal(t, target.LayoutPosix, lt.CinderLayout())

	data := []byte("a chunk through gluster://")
	require.NoError(t, o.Put(ctx, "ab/cd/obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	rc, err := o.Get(ctx, "ab/cd/obj", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, data, got)
	require.NoError(t, o.Delete(ctx, "ab/cd/obj"))
	var names []string
	require.NoError(t, o.List(ctx, "", func(i target.Info) error { names = append(names, i.Name); return nil }))
	assert.Empty(t, names)
}
