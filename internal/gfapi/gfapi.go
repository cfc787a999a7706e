//go:build gluster

package gfapi

/*
#cgo pkg-config: glusterfs-api
#include <stdlib.h>
#include <errno.h>
#include <dirent.h>
#include <sys/stat.h>
#include <glusterfs/api/glfs.h>

// libgfapi fills a struct dirent whose name may be longer than the
// system's: glfs.h asks callers for 512 bytes beyond the struct.
static size_t gfapi_dirent_size(void) { return sizeof(struct dirent) + 512; }
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Log levels of SetLogging, as libgfapi numbers them (gf_loglevel_t).
const (
	LogNone     = 0
	LogCritical = 3
	LogError    = 4
	LogWarning  = 5
	LogInfo     = 7
	LogDebug    = 8
	LogTrace    = 9
)

// ErrClosed is wrapped (with syscall.EBADF) in the error of a call made on
// an FS, File or Dir after it was closed.
var ErrClosed = errors.New("gfapi: handle is closed")

var errClosed = fmt.Errorf("%w: %w", ErrClosed, syscall.EBADF)

// guard counts the C calls in flight on a handle, so that closing it waits
// for them instead of freeing memory they use. Its mutex is held only to
// update the count, never across a C call.
type guard struct {
	mu      sync.Mutex
	n       int
	closed  bool
	drained chan struct{} // closed when n drops to 0 after close began
}

// enter registers a call; it reports false if the handle is closed.
func (g *guard) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *guard) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
}

// close marks the handle closed and waits until no call is in flight. It
// reports false if the handle was already closed.
func (g *guard) close() bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	var wait chan struct{}
	if g.n > 0 {
		wait = make(chan struct{})
		g.drained = wait
	}
	g.mu.Unlock()
	if wait != nil {
		<-wait
	}
	return true
}

// errnoOr returns the errno cgo captured, or EIO if libgfapi failed without
// setting one.
func errnoOr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EIO
}

func pathErr(op, path string, err error) error {
	return &os.PathError{Op: op, Path: path, Err: err}
}

// FS is a virtual mount of one volume: a glfs_t. Configure it with
// SetVolfileServer and SetLogging, then call Init once; after that it is
// safe for concurrent use. Fini releases it.
type FS struct {
	g      guard
	fs     *C.glfs_t
	volume string
}

// New creates a virtual mount of the named volume. It does not connect:
// Init does.
func New(volume string) (*FS, error) {
	cv := C.CString(volume)
	defer C.free(unsafe.Pointer(cv))
	fs, err := C.glfs_new(cv)
	if fs == nil {
		return nil, pathErr("glfs_new", volume, errnoOr(err))
	}
	return &FS{fs: fs, volume: volume}, nil
}

// Volume returns the name of the volume given to New.
func (f *FS) Volume() string { return f.volume }

// SetVolfileServer adds a management server (glusterd) to fetch the
// volume's configuration from. transport is "tcp" (or "unix", host then
// being a socket path); port 0 means 24007.
func (f *FS) SetVolfileServer(transport, host string, port int) error {
	if !f.g.enter() {
		return pathErr("glfs_set_volfile_server", host, errClosed)
	}
	defer f.g.exit()
	ct, ch := C.CString(transport), C.CString(host)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(ch))
	if r, err := C.glfs_set_volfile_server(f.fs, ct, ch, C.int(port)); r != 0 {
		return pathErr("glfs_set_volfile_server", host, errnoOr(err))
	}
	return nil
}

// SetLogging sends libgfapi's own log to file ("" for its default
// directory; libgfapi's default without this call is /dev/null) at level
// (LogNone ... LogTrace).
func (f *FS) SetLogging(file string, level int) error {
	if !f.g.enter() {
		return pathErr("glfs_set_logging", file, errClosed)
	}
	defer f.g.exit()
	var cf *C.char
	if file != "" {
		cf = C.CString(file)
		defer C.free(unsafe.Pointer(cf))
	}
	if r, err := C.glfs_set_logging(f.fs, cf, C.int(level)); r != 0 {
		return pathErr("glfs_set_logging", file, errnoOr(err))
	}
	return nil
}

// Init connects to the management server, fetches the volume's
// configuration and connects to its bricks. It blocks until that is done or
// has failed; it cannot be interrupted (callers that need a timeout run it
// in a goroutine and call Fini once it has returned).
func (f *FS) Init() error {
	if !f.g.enter() {
		return pathErr("glfs_init", f.volume, errClosed)
	}
	defer f.g.exit()
	if r, err := C.glfs_init(f.fs); r != 0 {
		return pathErr("glfs_init", f.volume, errnoOr(err))
	}
	return nil
}

// Fini waits for the calls in flight on f and on its files and directories,
// then releases the virtual mount: the files and directories still open
// are released with it. It takes about 10 seconds (libgfapi winds down its
// threads and timers). Later calls fail with ErrClosed.
func (f *FS) Fini() error {
	if !f.g.close() {
		return nil
	}
	if r, err := C.glfs_fini(f.fs); r != 0 {
		return pathErr("glfs_fini", f.volume, errnoOr(err))
	}
	return nil
}

// pathCall runs one path-based call with f entered and path as a C string.
func (f *FS) pathCall(op, path string, call func(cp *C.char) (C.int, error)) error {
	if !f.g.enter() {
		return pathErr(op, path, errClosed)
	}
	defer f.g.exit()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if r, err := call(cp); r != 0 {
		return pathErr(op, path, errnoOr(err))
	}
	return nil
}

// Stat describes a file (a struct stat).
type Stat struct {
	Mode    uint32 // st_mode: type (S_IFMT bits) and permissions
	Size    int64
	Dev     uint64
	Ino     uint64
	Nlink   uint64
	ModTime time.Time
}

// IsDir reports whether the file is a directory.
func (s Stat) IsDir() bool { return s.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// IsRegular reports whether the file is a regular file.
func (s Stat) IsRegular() bool { return s.Mode&syscall.S_IFMT == syscall.S_IFREG }

// SameFile reports whether s and o describe the same file.
func (s Stat) SameFile(o Stat) bool { return s.Dev == o.Dev && s.Ino == o.Ino }

func statFromC(st *C.struct_stat) Stat {
	return Stat{
		Mode:    uint32(st.st_mode),
		Size:    int64(st.st_size),
		Dev:     uint64(st.st_dev),
		Ino:     uint64(st.st_ino),
		Nlink:   uint64(st.st_nlink),
		ModTime: time.Unix(int64(st.st_mtim.tv_sec), int64(st.st_mtim.tv_nsec)),
	}
}

// Stat describes the file at path, following symbolic links.
func (f *FS) Stat(path string) (Stat, error) {
	var st C.struct_stat
	err := f.pathCall("glfs_stat", path, func(cp *C.char) (C.int, error) {
		r, err := C.glfs_stat(f.fs, cp, &st)
		return r, err
	})
	if err != nil {
		return Stat{}, err
	}
	return statFromC(&st), nil
}

// Lstat describes the file at path without following a final symbolic link.
func (f *FS) Lstat(path string) (Stat, error) {
	var st C.struct_stat
	err := f.pathCall("glfs_lstat", path, func(cp *C.char) (C.int, error) {
		r, err := C.glfs_lstat(f.fs, cp, &st)
		return r, err
	})
	if err != nil {
		return Stat{}, err
	}
	return statFromC(&st), nil
}

// Mkdir creates the directory path with mode (less the umask the bricks
// apply).
func (f *FS) Mkdir(path string, mode uint32) error {
	return f.pathCall("glfs_mkdir", path, func(cp *C.char) (C.int, error) {
		r, err := C.glfs_mkdir(f.fs, cp, C.mode_t(mode))
		return r, err
	})
}

// Chmod sets the permission bits of path.
func (f *FS) Chmod(path string, mode uint32) error {
	return f.pathCall("glfs_chmod", path, func(cp *C.char) (C.int, error) {
		r, err := C.glfs_chmod(f.fs, cp, C.mode_t(mode))
		return r, err
	})
}

// Unlink removes the file (not directory) path.
func (f *FS) Unlink(path string) error {
	return f.pathCall("glfs_unlink", path, func(cp *C.char) (C.int, error) {
		r, err := C.glfs_unlink(f.fs, cp)
		return r, err
	})
}

// Rmdir removes the empty directory path.
func (f *FS) Rmdir(path string) error {
	return f.pathCall("glfs_rmdir", path, func(cp *C.char) (C.int, error) {
		r, err := C.glfs_rmdir(f.fs, cp)
		return r, err
	})
}

// twoPathCall runs a call that takes two paths.
func (f *FS) twoPathCall(op, from, to string, call func(cf, ct *C.char) (C.int, error)) error {
	if !f.g.enter() {
		return &os.LinkError{Op: op, Old: from, New: to, Err: errClosed}
	}
	defer f.g.exit()
	cf, ct := C.CString(from), C.CString(to)
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(ct))
	if r, err := call(cf, ct); r != 0 {
		return &os.LinkError{Op: op, Old: from, New: to, Err: errnoOr(err)}
	}
	return nil
}

// Rename renames from to to, atomically replacing a file at to.
func (f *FS) Rename(from, to string) error {
	return f.twoPathCall("glfs_rename", from, to, func(cf, ct *C.char) (C.int, error) {
		r, err := C.glfs_rename(f.fs, cf, ct)
		return r, err
	})
}

// Link makes to a hard link of from; it fails with EEXIST if to exists.
func (f *FS) Link(from, to string) error {
	return f.twoPathCall("glfs_link", from, to, func(cf, ct *C.char) (C.int, error) {
		r, err := C.glfs_link(f.fs, cf, ct)
		return r, err
	})
}

// File is an open file: a glfs_fd_t.
type File struct {
	fs   *FS
	g    guard
	fd   *C.glfs_fd_t
	path string
}

// Open opens the existing file path with flags (os.O_RDONLY, os.O_RDWR, ...).
//
// path must not be a directory (use OpenDir): libgfapi opens one, but
// closing it leaves a call frame behind that makes Fini wait its full 10
// seconds and fail.
func (f *FS) Open(path string, flags int) (*File, error) {
	return f.open("glfs_open", path, func(cp *C.char) (*C.glfs_fd_t, error) {
		fd, err := C.glfs_open(f.fs, cp, C.int(flags))
		return fd, err
	})
}

// Creat creates and opens the file path with flags and mode; with
// os.O_EXCL in flags it fails with EEXIST if path exists.
func (f *FS) Creat(path string, flags int, mode uint32) (*File, error) {
	return f.open("glfs_creat", path, func(cp *C.char) (*C.glfs_fd_t, error) {
		fd, err := C.glfs_creat(f.fs, cp, C.int(flags), C.mode_t(mode))
		return fd, err
	})
}

func (f *FS) open(op, path string, call func(cp *C.char) (*C.glfs_fd_t, error)) (*File, error) {
	if !f.g.enter() {
		return nil, pathErr(op, path, errClosed)
	}
	defer f.g.exit()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	fd, err := call(cp)
	if fd == nil {
		return nil, pathErr(op, path, errnoOr(err))
	}
	return &File{fs: f, fd: fd, path: path}, nil
}

// Name returns the path the file was opened with.
func (fl *File) Name() string { return fl.path }

// enter registers a call on the file and on its FS.
func (fl *File) enter() bool {
	if !fl.fs.g.enter() {
		return false
	}
	if !fl.g.enter() {
		fl.fs.g.exit()
		return false
	}
	return true
}

func (fl *File) exit() {
	fl.g.exit()
	fl.fs.g.exit()
}

// ReadAt reads len(p) bytes at offset off, as io.ReaderAt: fewer bytes
// only at the end of the file, with io.EOF.
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	if !fl.enter() {
		return 0, pathErr("glfs_pread", fl.path, errClosed)
	}
	defer fl.exit()
	done := 0
	for done < len(p) {
		n, err := C.glfs_pread(fl.fd, unsafe.Pointer(&p[done]), C.size_t(len(p)-done), C.off_t(off+int64(done)), 0, nil)
		switch {
		case n < 0:
			return done, pathErr("glfs_pread", fl.path, errnoOr(err))
		case n == 0:
			return done, io.EOF
		}
		done += int(n)
	}
	return done, nil
}

// WriteAt writes p at offset off.
func (fl *File) WriteAt(p []byte, off int64) (int, error) {
	if !fl.enter() {
		return 0, pathErr("glfs_pwrite", fl.path, errClosed)
	}
	defer fl.exit()
	done := 0
	for done < len(p) {
		n, err := C.glfs_pwrite(fl.fd, unsafe.Pointer(&p[done]), C.size_t(len(p)-done), C.off_t(off+int64(done)), 0, nil, nil)
		switch {
		case n < 0:
			return done, pathErr("glfs_pwrite", fl.path, errnoOr(err))
		case n == 0:
			return done, pathErr("glfs_pwrite", fl.path, io.ErrShortWrite)
		}
		done += int(n)
	}
	return done, nil
}

// fdCall runs one call on the file descriptor.
func (fl *File) fdCall(op string, call func() (C.int, error)) error {
	if !fl.enter() {
		return pathErr(op, fl.path, errClosed)
	}
	defer fl.exit()
	if r, err := call(); r != 0 {
		return pathErr(op, fl.path, errnoOr(err))
	}
	return nil
}

// Sync flushes the file's data and metadata to the bricks' disks (fsync).
func (fl *File) Sync() error {
	return fl.fdCall("glfs_fsync", func() (C.int, error) {
		r, err := C.glfs_fsync(fl.fd, nil, nil)
		return r, err
	})
}

// Truncate sets the file's size.
func (fl *File) Truncate(size int64) error {
	return fl.fdCall("glfs_ftruncate", func() (C.int, error) {
		r, err := C.glfs_ftruncate(fl.fd, C.off_t(size), nil, nil)
		return r, err
	})
}

// Chmod sets the file's permission bits.
func (fl *File) Chmod(mode uint32) error {
	return fl.fdCall("glfs_fchmod", func() (C.int, error) {
		r, err := C.glfs_fchmod(fl.fd, C.mode_t(mode))
		return r, err
	})
}

// Stat describes the open file.
func (fl *File) Stat() (Stat, error) {
	var st C.struct_stat
	if err := fl.fdCall("glfs_fstat", func() (C.int, error) {
		r, err := C.glfs_fstat(fl.fd, &st)
		return r, err
	}); err != nil {
		return Stat{}, err
	}
	return statFromC(&st), nil
}

// Close waits for the calls in flight on the file and closes it. Closing a
// file whose FS was released by Fini does nothing: Fini released it.
func (fl *File) Close() error {
	if !fl.fs.g.enter() {
		fl.g.close()
		return nil
	}
	defer fl.fs.g.exit()
	if !fl.g.close() {
		return nil
	}
	if r, err := C.glfs_close(fl.fd); r != 0 {
		return pathErr("glfs_close", fl.path, errnoOr(err))
	}
	return nil
}

// Dir is an open directory. Next is for one goroutine at a time.
type Dir struct {
	fs   *FS
	g    guard
	fd   *C.glfs_fd_t
	ent  *C.struct_dirent // C memory: libgfapi writes the entry here
	path string
}

// DirEntry is one entry of a directory, with the attributes
// glfs_readdirplus returned for it.
type DirEntry struct {
	Name string
	// Stat is the entry's stat; HasStat is false when libgfapi returned
	// none (then use FS.Lstat).
	Stat    Stat
	HasStat bool
}

// OpenDir opens the directory path for reading.
func (f *FS) OpenDir(path string) (*Dir, error) {
	if !f.g.enter() {
		return nil, pathErr("glfs_opendir", path, errClosed)
	}
	defer f.g.exit()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	fd, err := C.glfs_opendir(f.fs, cp)
	if fd == nil {
		return nil, pathErr("glfs_opendir", path, errnoOr(err))
	}
	ent := (*C.struct_dirent)(C.calloc(1, C.gfapi_dirent_size()))
	return &Dir{fs: f, fd: fd, ent: ent, path: path}, nil
}

// Next returns the next entry ("." and ".." included), or io.EOF after the
// last.
func (d *Dir) Next() (DirEntry, error) {
	if !d.fs.g.enter() {
		return DirEntry{}, pathErr("glfs_readdirplus_r", d.path, errClosed)
	}
	defer d.fs.g.exit()
	if !d.g.enter() {
		return DirEntry{}, pathErr("glfs_readdirplus_r", d.path, errClosed)
	}
	defer d.g.exit()
	var st C.struct_stat
	var res *C.struct_dirent
	r, err := C.glfs_readdirplus_r(d.fd, &st, d.ent, &res)
	if r != 0 {
		// It returns an errno, or -1 with errno set.
		if r > 0 {
			err = syscall.Errno(r)
		}
		return DirEntry{}, pathErr("glfs_readdirplus_r", d.path, errnoOr(err))
	}
	if res == nil {
		return DirEntry{}, io.EOF
	}
	e := DirEntry{Name: C.GoString(&res.d_name[0])}
	if st.st_mode != 0 {
		e.Stat, e.HasStat = statFromC(&st), true
	}
	return e, nil
}

// Close waits for a Next in flight and closes the directory.
func (d *Dir) Close() error {
	if !d.fs.g.enter() {
		if d.g.close() {
			C.free(unsafe.Pointer(d.ent))
		}
		return nil
	}
	defer d.fs.g.exit()
	if !d.g.close() {
		return nil
	}
	defer C.free(unsafe.Pointer(d.ent))
	if r, err := C.glfs_closedir(d.fd); r != 0 {
		return pathErr("glfs_closedir", d.path, errnoOr(err))
	}
	return nil
}
