package nfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestCheck(t *testing.T) {
	for _, name := range []string{"ganesha", "gonfs"} {
		t.Run(name, func(t *testing.T) {
			s := requireServer(t, name)
			cfg := s.config(t)
			tg := newTarget(t, cfg)
			targettest.CheckProbe(t, tg, 9<<20)

			t.Run("missing subdirectory", func(t *testing.T) {
				// Removed through NFS, so that nfs-ganesha's cache sees it:
				// the target on the parent deletes the one object, and with
				// it the directory that became empty.
				require.NoError(t, tg.Put(t.Context(), "x", strings.NewReader("x"), 1, target.PutOptions{}))
				parent := cfg
				parent.Subdirectory = path.Dir(cfg.Subdirectory)
				require.NoError(t, newTarget(t, parent).Delete(t.Context(), path.Base(cfg.Subdirectory)+"/x"))
				_, err := os.Stat(s.dir(cfg))
				require.ErrorIs(t, err, fs.ErrNotExist)
				err = tg.Check(t.Context())
				require.ErrorIs(t, err, target.ErrNotFound)
				require.ErrorContains(t, err, cfg.Subdirectory+" no longer exists")
			})
			t.Run("missing export", func(t *testing.T) {
				bad := &Target{cfg: tg.cfg, host: tg.host, export: "/no-such-export", uid: tg.uid, gid: tg.gid, c: tg.c}
				err := bad.Check(t.Context())
				// nfs-ganesha refuses an unknown path as it refuses a client.
				require.True(t, errors.Is(err, target.ErrNotFound) || errors.Is(err, target.ErrPermission), "%v", err)
				require.ErrorContains(t, err, "/no-such-export")
			})
		})
	}
}

// TestProbePermission: a uid that may not write in the subdirectory. The
// servers here answer ACCESS with every right whatever the uid (they check
// permissions when the operation runs), so Check passes and the probe's
// Put is refused: read-only credentials. (nfs-ganesha only: the go-nfs
// server checks no permissions at all.)
func TestProbePermission(t *testing.T) {
	s := requireServer(t, "ganesha")
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory another uid cannot write")
	}
	cfg := s.config(t)
	newTarget(t, cfg) // creates the subdirectory, owned by root
	require.NoError(t, os.Chmod(s.dir(cfg), 0o755))
	other := cfg
	uid, gid := uint32(54321), uint32(54321)
	other.UID, other.GID = &uid, &gid
	other.CreateSubdirectory = false
	tg := newTarget(t, other)
	r, put := targettest.ProbeReadOnly(t, tg)
	require.Contains(t, put.Error, "uid 54321 gid 54321")
	require.Contains(t, r.Problems[0], "read-only credentials")
}
