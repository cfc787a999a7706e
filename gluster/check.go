//go:build gluster

package gluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: a stat of the target's root directory
// through libgfapi, which proves the bricks answer and the directory still
// exists (nothing is created, whatever Config.CreatePath says). GlusterFS
// has no credentials to check: a client that auth.allow refuses cannot
// connect at all (Connect fails with target.ErrPermission). A libgfapi
// call cannot be abandoned, so ctx is looked at before it.
func (t *Target) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gluster: check: %w", err)
	}
	root := t.dirPath(".")
	st, err := t.fs.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("gluster: check: the directory %q no longer exists in volume %q: create it, or open the target again with Config.CreatePath (--create): %w",
			root, t.cfg.Volume, target.ErrNotFound)
	case err != nil:
		return t.classify("check", root, err)
	case !st.IsDir():
		return fmt.Errorf("gluster: check: %q in volume %q is no longer a directory: %w", root, t.cfg.Volume, target.ErrInvalidArgument)
	}
	return nil
}
