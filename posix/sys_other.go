//go:build !unix

package posix

import "errors"

// rmdir removes dir if it is an empty directory. Without unlinkat a file
// that replaced the directory meanwhile could be removed instead; this is
// only a fallback for platforms Cinder does not run on.
func (t *Target) rmdir(dir string) error {
	fi, err := t.root.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	return t.root.Remove(dir)
}
