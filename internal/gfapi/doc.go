// Package gfapi is a minimal cgo binding to libgfapi, the GlusterFS client
// library (Debian libglusterfs-dev, `pkg-config glusterfs-api`). It holds
// only what the gluster target needs: a virtual mount (FS) and files and
// directories on it, with path-based calls for the rest. It is our own: the
// module proxy refuses github.com/gluster/gogfapi.
//
// The code is built only with the build tag `gluster` (and cgo); without it
// the package is this documentation alone, so the rest of the module builds
// where the C library is missing.
//
// # Errors
//
// A failed call returns an *os.PathError (or *os.LinkError for Rename and
// Link) whose Err is the syscall.Errno libgfapi set, so callers classify
// failures with errors.Is(err, fs.ErrNotExist), errors.Is(err,
// syscall.ENOTDIR) and the like. A call on a closed FS, File or Dir returns
// ErrClosed-wrapped syscall.EBADF.
//
// # Threads and blocking
//
// libgfapi does its network I/O on threads of its own; every call here
// blocks the calling thread until the reply comes (Go hands the P of a
// goroutine blocked in C to others, so other goroutines run on). No Go lock
// is held while a C call runs: each handle counts its calls in flight under
// a mutex taken only around the count, and Close waits for that count to
// drop to zero before it frees the C handle, so Close never frees memory a
// call is still using.
//
// A glfs_t (FS) is safe for concurrent use by many threads once Init has
// returned: libgfapi serialises what it must internally, and qemu and Samba
// drive one glfs_t from many threads. Init must be called once, before any
// other call; Fini after every other call has returned (FS.Fini waits for
// calls in flight and makes later calls fail). A glfs_fd_t (File) may be
// used by several goroutines at once with the offset-taking calls (ReadAt,
// WriteAt); the dirent buffer of a Dir makes it for one goroutine at a time.
//
// glfs_fini is slow: it waits about 10 seconds for libgfapi's threads and
// timers to wind down, so a process should keep one FS per volume for its
// whole life rather than open one per operation.
package gfapi
