package posix

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameat2NoReplace renames old to new in the directory d unless new
// exists (EEXIST), in one atomic step.
func renameat2NoReplace(d *os.File, old, new string) error {
	err := unix.Renameat2(int(d.Fd()), old, int(d.Fd()), new, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		// The file system (NFS, FUSE, older kernels) does not support the flag.
		return errNoReplaceUnsupported
	}
	return &os.LinkError{Op: "renameat2", Old: old, New: new, Err: err}
}
