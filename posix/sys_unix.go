//go:build unix

package posix

import (
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// rmdir removes dir if it is an empty directory, and never anything else:
// unlinkat with AT_REMOVEDIR, relative to the parent opened in the root.
func (t *Target) rmdir(dir string) error {
	parent, err := t.root.Open(path.Dir(dir))
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := unix.Unlinkat(int(parent.Fd()), path.Base(dir), unix.AT_REMOVEDIR); err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}
