package posix

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestCheck(t *testing.T) {
	tg, _ := newTarget(t, Options{})
	targettest.CheckProbe(t, tg, 9<<20)
}

func TestCheckRootGone(t *testing.T) {
	tg, root := newTarget(t, Options{})
	require.NoError(t, os.RemoveAll(root))
	err := tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, root+" no longer exists")
}

func TestCheckRootReplaced(t *testing.T) {
	tg, root := newTarget(t, Options{})
	require.NoError(t, os.Rename(root, root+".old"))
	t.Cleanup(func() { os.RemoveAll(root + ".old") })
	require.NoError(t, os.Mkdir(root, 0o700))
	err := tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrPermanent)
	require.ErrorContains(t, err, "no longer the directory the target opened")
}

func TestCheckPermissionDenied(t *testing.T) {
	tg, root := newTarget(t, Options{})
	makeUnwritable(t, root, "")
	err := tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "needs read, write and search")

	r, err := target.Probe(t.Context(), tg, target.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, r.OK)
	check, _ := r.Step(target.StepCheck)
	require.Equal(t, "permission", check.Kind)
}
