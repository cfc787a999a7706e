//go:build ceph

package ceph

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// checkConfig is the test cluster's Config in a namespace of its own.
func checkConfig(t *testing.T) Config {
	env := servertest.Require(t, "ceph")
	return Config{
		Conf: env.Get(t, "CONF"), User: env.Get(t, "CLIENT_ID"), Keyring: env.Get(t, "KEYRING"), Pool: env.Get(t, "POOL"),
		Namespace: "check-" + rand.Text(), ConnectTimeout: 20 * time.Second, OpTimeout: 30 * time.Second,
	}
}

func openForCheck(t *testing.T, cfg Config) *Target {
	t.Helper()
	tg, err := New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestCheck(t *testing.T) {
	tg := openForCheck(t, checkConfig(t))
	targettest.CheckProbe(t, tg, 9<<20)

	t.Run("missing pool", func(t *testing.T) {
		// The same connection, asked about a pool the cluster does not have.
		missing := &Target{cfg: tg.cfg, conn: tg.conn, ioctx: tg.ioctx, objPrefix: tg.objPrefix, index: tg.index}
		missing.cfg.Pool = "chunkback-missing-" + rand.Text()
		err := missing.Check(t.Context())
		require.ErrorIs(t, err, target.ErrNotFound)
		require.ErrorContains(t, err, "pool \""+missing.cfg.Pool+"\" no longer exists")
	})
	t.Run("closed", func(t *testing.T) {
		other := openForCheck(t, checkConfig(t))
		require.NoError(t, other.Close())
		require.ErrorIs(t, other.Check(t.Context()), target.ErrPermanent)
	})
}

// TestProbeReadOnlyUser: client.readonly (osd 'allow r pool=backups', made
// by ceph.sh) passes the check, and the probe reports read-only
// credentials.
func TestProbeReadOnlyUser(t *testing.T) {
	cfg := checkConfig(t)
	cfg.User = "readonly"
	cfg.Keyring = filepath.Join(filepath.Dir(cfg.Keyring), "client.readonly.keyring")
	tg := openForCheck(t, cfg)
	require.NoError(t, tg.Check(t.Context()))
	_, put := targettest.ProbeReadOnly(t, tg)
	require.Contains(t, put.Error, "client.readonly")
}
