//go:build unix

package posix

import (
	"os"

	"golang.org/x/sys/unix"
)

// accessible reports whether the effective user may read, write and search
// the directory dir: EACCES, EROFS (a read-only file system) or EPERM (an
// immutable directory) if not.
func accessible(dir string) error {
	const mode = unix.R_OK | unix.W_OK | unix.X_OK
	if os.Geteuid() == os.Getuid() && os.Getegid() == os.Getgid() {
		// access(2) answers for the real ids, the same here; it sees the
		// immutable attribute, which the emulation of AT_EACCESS that
		// unix.Faccessat falls back to (faccessat2 may be filtered out)
		// does not.
		return unix.Access(dir, mode)
	}
	return unix.Faccessat(unix.AT_FDCWD, dir, mode, unix.AT_EACCESS)
}
