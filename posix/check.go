package posix

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: the root directory still exists at its
// path, is still the directory the target opened (not a share mounted, or
// unmounted, over it since), and the user may read, write and search it
// (checked with the effective uid, as the file system will). It writes
// nothing.
func (t *Target) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("posix: check: %w", err)
	}
	now, err := os.Stat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("posix: check: the backup root directory %s no longer exists (deleted, or the share it was on unmounted): create or mount it again, and open the target again: %w",
			t.path, target.ErrNotFound)
	case err != nil:
		return classify("check", t.path, t.path, err)
	}
	opened, err := t.root.Stat(".")
	if err != nil {
		return classify("check", t.path, t.path, err)
	}
	if !os.SameFile(now, opened) {
		return fmt.Errorf("posix: check: %s is no longer the directory the target opened (a share was mounted or unmounted over it, or the directory was replaced): open the target again: %w",
			t.path, target.ErrPermanent)
	}
	if err := accessible(t.path); err != nil {
		return classify("check", t.path, t.path, &fs.PathError{Op: "access", Path: t.path, Err: err})
	}
	return nil
}
