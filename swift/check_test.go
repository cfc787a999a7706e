package swift

import (
	"crypto/rand"
	"errors"
	"net/http"
	"testing"

	goswift "github.com/ncw/swift/v2"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// unauthenticated makes a target for cfg as New does, without
// authenticating or looking at the container, so that Check is the first
// request it sends.
func unauthenticated(t *testing.T, cfg Config) *Target {
	t.Helper()
	require.NoError(t, cfg.Validate())
	cfg = cfg.withDefaults()
	tr, err := cfg.transport()
	require.NoError(t, err)
	t.Cleanup(tr.CloseIdleConnections)
	conn := &goswift.Connection{
		UserAgent: "chunkback", Retries: -1, ConnectTimeout: cfg.ConnectTimeout, Timeout: cfg.Timeout,
		Transport: recorder{base: tr}, AuthUrl: cfg.AuthURL, AuthVersion: cfg.AuthVersion, UserName: cfg.User, ApiKey: cfg.Key,
	}
	return &Target{cfg: cfg, conn: conn, tr: tr}
}

func TestCheck(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		cfg := s.config(t)
		cfg.SegmentSize = 4 << 20 // the probe's large object goes up in segments
		tg := open(t, cfg)
		targettest.CheckProbe(t, tg, 9<<20)
		require.NoError(t, unauthenticated(t, cfg).Check(t.Context()), "Check authenticates by itself")

		t.Run("wrong key", func(t *testing.T) {
			bad := cfg
			bad.Key = "wrong-key-0123456789"
			err := unauthenticated(t, bad).Check(t.Context())
			require.ErrorIs(t, err, target.ErrPermission)
			require.Contains(t, err.Error(), "Config.Key")
			require.NotContains(t, err.Error(), bad.Key)
			require.NotContains(t, err.Error(), s.key)
		})
		t.Run("missing container", func(t *testing.T) {
			missing := cfg
			missing.Container = "chunkback-missing-" + rand.Text()
			err := unauthenticated(t, missing).Check(t.Context())
			require.ErrorIs(t, err, target.ErrNotFound)
			require.Contains(t, err.Error(), "container \""+missing.Container+"\" does not exist")
			require.Contains(t, err.Error(), "create it")
		})
		if s.readerUser != "" {
			t.Run("user without access", func(t *testing.T) {
				other := cfg
				other.User, other.Key = s.readerUser, s.readerKey
				err := unauthenticated(t, other).Check(t.Context())
				require.ErrorIs(t, err, target.ErrPermission)
				var se *target.StatusError
				require.True(t, errors.As(err, &se))
				require.Equal(t, http.StatusForbidden, se.Code)
				require.NotContains(t, err.Error(), s.readerKey)
			})
		}
	})
}
