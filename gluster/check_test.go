//go:build gluster

package gluster

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestCheck(t *testing.T) {
	tg, dir := newTarget(t)
	targettest.CheckProbe(t, tg, 9<<20)

	removeAll(t, tg.fs, dir)
	err := tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, dir+"\" no longer exists")
	require.ErrorContains(t, err, "create it")
}
