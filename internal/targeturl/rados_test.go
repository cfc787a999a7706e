//go:build ceph

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

	"github.com/chunkback/chunkback/ceph"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

func TestRADOSConfigFromURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want ceph.Config
	}{
		{"rados://backups", ceph.Config{Pool: "backups"}},
		{"rados://backups/ci/nightly/", ceph.Config{Pool: "backups", Prefix: "ci/nightly"}},
		{
			"rados://backups/ci?conf=/etc/ceph/ceph.conf&id=cinder-backup&keyring=/etc/ceph/k&namespace=ns" +
				"&chunk_size=4194304&connect_timeout=10&op_timeout=1m&max_attempts=2&retry_interval=250ms",
			ceph.Config{
				Pool: "backups", Prefix: "ci", Conf: "/etc/ceph/ceph.conf", User: "cinder-backup", Keyring: "/etc/ceph/k",
				Namespace: "ns", ChunkSize: 4 << 20, ConnectTimeout: 10 * time.Second, OpTimeout: time.Minute,
				MaxAttempts: 2, RetryInterval: 250 * time.Millisecond,
			},
		},
	} {
		u, err := url.Parse(tc.raw)
		require.NoError(t, err)
		got, err := radosConfig(u)
		require.NoError(t, err, tc.raw)
		assert.Equal(t, tc.want, got, tc.raw)
	}
	for raw, want := range map[string]string{
		"rados:///prefix":                   "no pool",
		"rados://user:secret@backups":       "credentials do not belong in the URL",
		"rados://backups?pool=x":            `unknown parameter "pool"`,
		"rados://backups?chunk_size=big":    "chunk_size",
		"rados://backups?op_timeout=-1":     "op_timeout",
		"rados://backups?id=client.cinder":  "Config.User",
		"rados://backups?max_attempts=-2":   "max_attempts",
		"rados://backups?connect_timeout=x": "connect_timeout",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = radosConfig(u)
		require.ErrorContains(t, err, want, raw)
		require.NotContains(t, err.Error(), "secret", raw)
	}
}

func TestRADOSOpenURL(t *testing.T) {
	env := servertest.Require(t, "ceph")
	raw := env.Get(t, "URL_RADOS")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	raw += "&namespace=targeturl-" + hex.EncodeToString(b)
	ctx := t.Context()
	o, err := Open(ctx, raw, Options{})
	require.NoError(t, err)
	defer o.Close()
	require.Equal(t, "rados", o.Scheme)
	lt, ok := target.As[target.LayoutTarget](o)
	require.True(t, ok)
	require.Equal(t, target.LayoutObject, lt.CinderLayout())

	data := []byte("hello, rados")
	require.NoError(t, o.Put(ctx, "a/b", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	rc, err := o.Get(ctx, "a/b", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, data, got)
	require.NoError(t, o.Delete(ctx, "a/b"))

	// A missing pool is an error naming it, unless Options.Create.
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.Host = "chunkback-no-such-pool"
	_, err = Open(ctx, u.String(), Options{})
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, `pool "chunkback-no-such-pool"`)
}
