// Package posix is a target.Target that stores objects as files below a root
// directory, laid out like OpenStack Cinder's posix backup driver (and the nfs
// and glusterfs drivers, which are the posix driver on a mount point).
//
// An object name maps to the file of that path below the root: "a/b/c" is
// the file c in the directory a/b, created on demand. Compared with Cinder's
// driver, which opens the final file and writes into it, Put is atomic and
// durable:
//
//   - Put writes a temporary file in the destination directory (named
//     target.ReservedPrefix followed by random hex), fsyncs it, and renames
//     it onto the name, so a reader sees
//     the old or the new object and never a partial one. With IfNotExists
//     the rename refuses to replace (renameat2 RENAME_NOREPLACE, or link(2)
//     where the file system lacks it), so the check is atomic too. On any
//     failure, cancellation included, the temporary file is removed; one
//     left by a crash is invisible to List, Get and Stat and does not match
//     Cinder's object prefixes, and may be deleted by hand.
//   - After the rename the directory is fsynced, and so are the parents of
//     directories Put created, unless Options.NoSync is set.
//   - Files get mode Options.FileMode (0660) and directories Put creates get
//     Options.DirMode (0770), set with chmod so the umask does not change
//     them, as Cinder does for its container directory.
//   - Delete removes the file and then every parent directory that became
//     empty, up to but not including the root, so that a deleted backup
//     leaves no directories behind (Cinder leaves its container directory)
//     and a name once used as a directory can become an object again.
//
// All access goes through os.Root: no operation resolves a path outside the
// root, whatever the name or the symbolic links below the root: a symbolic
// link that leads out of the root makes the operation fail with
// target.ErrPermission. Only regular files are objects: List skips symbolic
// links (it does not descend into them), other non-regular files, and files
// whose names are not valid object names (see target.CheckName).
package posix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chunkback/chunkback/internal/bodycopy"
	"github.com/chunkback/chunkback/internal/treelist"
	"github.com/chunkback/chunkback/target"
)

// Defaults of Options.
const (
	DefaultFileMode fs.FileMode = 0o660
	DefaultDirMode  fs.FileMode = 0o770
)

// Options configures a posix Target. The zero value is the recommended
// configuration: durable writes, Cinder's file and directory modes, and an
// error if the root does not exist.
type Options struct {
	// NoSync turns off fsync. By default Put fsyncs the file and the
	// directories it changed before it returns, so that an object reported
	// stored survives a crash or power loss: a backup tool must not lose
	// acknowledged backups. Cinder's driver never fsyncs; NoSync gives that
	// speed (see the package benchmarks) where durability is handled
	// otherwise, or does not matter (tmpfs, tests).
	NoSync bool
	// FileMode is the permission of object files (default DefaultFileMode,
	// 0660 as in Cinder). It must include owner read and write.
	FileMode fs.FileMode
	// DirMode is the permission of the directories Put creates (default
	// DefaultDirMode, 0770 as Cinder's container directory). It must
	// include owner read, write and search.
	DirMode fs.FileMode
	// CreateRoot makes New create the root directory (and its parents, with
	// DirMode less the umask) when it does not exist. By default a missing
	// root is an error, so that a typo or an unmounted share is not silently
	// filled.
	CreateRoot bool
}

// Validate reports whether the options are usable. Zero modes stand for the
// defaults.
func (o Options) Validate() error {
	if o.FileMode&^fs.ModePerm != 0 || o.DirMode&^fs.ModePerm != 0 {
		return fmt.Errorf("posix: FileMode %v and DirMode %v must hold only permission bits: %w", o.FileMode, o.DirMode, target.ErrInvalidArgument)
	}
	if o.FileMode != 0 && o.FileMode&0o600 != 0o600 {
		return fmt.Errorf("posix: FileMode %#o must give the owner read and write permission (0600): %w", uint32(o.FileMode), target.ErrInvalidArgument)
	}
	if o.DirMode != 0 && o.DirMode&0o700 != 0o700 {
		return fmt.Errorf("posix: DirMode %#o must give the owner read, write and search permission (0700): %w", uint32(o.DirMode), target.ErrInvalidArgument)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.FileMode == 0 {
		o.FileMode = DefaultFileMode
	}
	if o.DirMode == 0 {
		o.DirMode = DefaultDirMode
	}
	return o
}

// Target stores objects as files below a root directory. It is safe for
// concurrent use. Close releases the root directory.
type Target struct {
	root   *os.Root
	path   string // absolute path of the root, for messages
	opts   Options
	copier *bodycopy.Copier
}

var (
	_ target.Target       = (*Target)(nil)
	_ target.LayoutTarget = (*Target)(nil)
	_ target.Closer       = (*Target)(nil)
)

// New opens the directory root as a target. The root must exist unless
// opts.CreateRoot is set.
func New(root string, opts Options) (*Target, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if root == "" {
		return nil, fmt.Errorf("posix: empty root directory: %w", target.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("posix: root %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) && opts.CreateRoot {
		if err = os.MkdirAll(abs, opts.DirMode); err == nil {
			fi, err = os.Stat(abs)
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("posix: backup root directory %s does not exist: create it (mkdir -p %s, writable by the user running the backup), mount the share there, or set Options.CreateRoot: %w",
			abs, abs, target.ErrNotFound)
	case err != nil:
		return nil, classify("open root", abs, abs, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("posix: backup root %s is not a directory: %w", abs, target.ErrInvalidArgument)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, classify("open root", abs, abs, err)
	}
	return &Target{root: r, path: abs, opts: opts, copier: bodycopy.New()}, nil
}

// Close releases the root directory. The target must not be used afterwards.
func (t *Target) Close() error { return t.root.Close() }

// CinderLayout implements target.LayoutTarget: objects are laid out as
// Cinder's posix driver lays them out.
func (t *Target) CinderLayout() target.Layout { return target.LayoutPosix }

// String describes the target for messages.
func (t *Target) String() string { return "posix:" + t.path }

// Put implements target.Target; see the package documentation for how.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) (err error) {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("posix: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("posix: put %q: %w", name, err)
	}
	dir := path.Dir(name)
	created, tmp, f, err := t.createTemp(dir)
	if err != nil {
		for _, d := range slices.Backward(created) {
			_ = t.rmdir(d)
		}
		return t.fail("put", name, dir, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			// Whatever the context: the file must go even when the Put was
			// cancelled, and so must the directories made for it.
			_ = t.root.Remove(tmp)
			for _, d := range slices.Backward(created) {
				_ = t.rmdir(d)
			}
		}
	}()
	if err := f.Chmod(t.opts.FileMode); err != nil {
		return t.fail("put", name, tmp, err)
	}
	if err := t.copier.Copy(ctx, f, body, size); err != nil {
		return t.fail("put", name, tmp, err)
	}
	if !t.opts.NoSync {
		if err := f.Sync(); err != nil {
			return t.fail("put", name, tmp, err)
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return t.fail("put", name, tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("posix: put %q: %w", name, err)
	}
	if opts.IfNotExists {
		err = t.renameNoReplace(dir, tmp, name)
	} else {
		err = t.existsError(name, t.root.Rename(tmp, name))
	}
	if err != nil {
		return t.fail("put", name, name, err)
	}
	if !t.opts.NoSync {
		// The object is in place: failing now would tell the caller it is
		// not, so a sync error is still reported (the data may not be
		// durable) but the temporary file is gone either way.
		dirs := []string{dir}
		for _, d := range created {
			dirs = append(dirs, path.Dir(d))
		}
		slices.Sort(dirs)
		for _, d := range slices.Compact(dirs) {
			if err := t.syncDir(d); err != nil {
				return t.fail("put", name, d, err)
			}
		}
	}
	return nil
}

// createTemp creates the directory dir as needed and a new temporary file in
// it. It returns the directories it created.
func (t *Target) createTemp(dir string) (created []string, tmp string, f *os.File, err error) {
	// A concurrent Delete may remove a directory that has just become empty
	// between our mkdir and our create; then we start over.
	for range 10 {
		var c []string
		c, err = t.mkdirs(dir)
		created = append(created, c...)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return created, "", nil, err
		}
		for {
			var rnd [12]byte
			_, _ = rand.Read(rnd[:])
			tmp = path.Join(dir, target.ReservedPrefix+hex.EncodeToString(rnd[:]))
			f, err = t.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if !errors.Is(err, fs.ErrExist) {
				break
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return created, tmp, f, err
		}
	}
	return created, tmp, nil, err
}

// mkdirs creates dir and its missing parents with DirMode and returns the
// ones it created.
func (t *Target) mkdirs(dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	if fi, err := t.root.Stat(dir); err == nil && fi.IsDir() {
		return nil, nil
	}
	var created []string
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		d := dir[:i]
		err := t.root.Mkdir(d, t.opts.DirMode)
		if errors.Is(err, fs.ErrExist) {
			continue // a file in the way fails at the next step, ENOTDIR
		}
		if err != nil {
			return created, err
		}
		created = append(created, d)
		if err := t.chmod(d, t.opts.DirMode); err != nil {
			return created, err
		}
	}
	return created, nil
}

// chmod sets the mode through a file descriptor, so a symlink swapped in
// meanwhile cannot redirect it.
func (t *Target) chmod(name string, mode fs.FileMode) error {
	f, err := t.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(mode)
}

func (t *Target) syncDir(dir string) error {
	d, err := t.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// renameNoReplace renames tmp to name unless name exists.
func (t *Target) renameNoReplace(dir, tmp, name string) error {
	d, err := t.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = renameat2(d, path.Base(tmp), path.Base(name))
	if !errors.Is(err, errNoReplaceUnsupported) {
		return t.existsError(name, err)
	}
	// link(2) fails atomically if name exists and is on every POSIX file
	// system we expect (NFS included).
	err = t.root.Link(tmp, name)
	if errors.Is(err, fs.ErrExist) {
		// NFS may answer a retransmitted LINK that did succeed with EEXIST.
		a, errA := t.root.Lstat(tmp)
		b, errB := t.root.Lstat(name)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			err = nil
		}
	}
	if err != nil {
		return t.existsError(name, err)
	}
	return t.root.Remove(tmp)
}

// existsError turns EEXIST for a directory into an invalid-argument error:
// no object can be stored where a directory is.
func (t *Target) existsError(name string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := t.root.Lstat(name); serr == nil && fi.IsDir() {
			return syscall.EISDIR
		}
	}
	return err
}

// Get implements target.Target. The reader holds the file open: an object
// replaced meanwhile is read whole as it was.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("posix: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("posix: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("posix: get %q: %w", name, err)
	}
	// O_NONBLOCK so that a FIFO someone left below the root does not block
	// the open; it changes nothing for regular files.
	f, err := t.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, t.fail("get", name, name, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, t.fail("get", name, name, err)
	}
	size := fi.Size()
	if offset > size {
		f.Close()
		return nil, fmt.Errorf("posix: get %q: offset %d beyond size %d: %w", name, offset, size, target.ErrInvalidRange)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, t.fail("get", name, name, err)
		}
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return &reader{ctx: ctx, f: f, r: io.LimitReader(f, n)}, nil
}

// reader reads an object and stops once its context is done.
type reader struct {
	ctx context.Context
	f   *os.File
	r   io.Reader
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *reader) Close() error { return r.f.Close() }

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("posix: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return target.Info{}, fmt.Errorf("posix: stat %q: %w", name, err)
	}
	fi, err := t.root.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return target.Info{}, t.fail("stat", name, name, err)
	}
	return target.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List implements target.Target. It reads only the directory that holds the
// prefix's last '/' and the directories below it, one directory at a time,
// sorted so that the names come out in lexical order of the full names.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	dir, filter, ok, err := treelist.Split(ctx, "posix", prefix)
	if !ok || err != nil {
		return err
	}
	return treelist.Walk(ctx, "posix", dir, nil, filter, t.readDir, fn)
}

// readDir returns the subdirectories and regular files of dir ("" for the
// root); files are stat'ed only when listed.
func (t *Target) readDir(_ context.Context, dir string, _ any, _ string) ([]treelist.Entry, error) {
	d, err := t.root.Open(cmp(dir, "."))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, err // gone meanwhile, or a file: no objects below it
		}
		return nil, t.fail("list", dir, cmp(dir, "."), err)
	}
	des, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, err
		}
		return nil, t.fail("list", dir, cmp(dir, "."), err)
	}
	entries := make([]treelist.Entry, 0, len(des))
	for _, de := range des {
		switch {
		case de.IsDir():
			entries = append(entries, treelist.Entry{Name: de.Name(), Dir: true})
		case de.Type().IsRegular():
			name := path.Join(dir, de.Name())
			entries = append(entries, treelist.Entry{Name: de.Name(), Stat: func() (int64, time.Time, error) {
				fi, err := de.Info()
				if errors.Is(err, fs.ErrNotExist) {
					return 0, time.Time{}, err // deleted meanwhile
				}
				if err != nil {
					return 0, time.Time{}, t.fail("list", name, name, err)
				}
				return fi.Size(), fi.ModTime(), nil
			}})
		}
	}
	return entries, nil
}

func cmp(s, ifEmpty string) string {
	if s == "" {
		return ifEmpty
	}
	return s
}

// Delete implements target.Target. It then removes the parent directories
// that became empty, up to the root.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("posix: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("posix: delete %q: %w", name, err)
	}
	fi, err := t.root.Lstat(name)
	if err == nil && fi.IsDir() {
		return nil // a directory is not an object
	}
	if err == nil {
		err = t.root.Remove(name)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return t.fail("delete", name, name, err)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if t.rmdir(dir) != nil {
			break // not empty (or no longer there): leave it and its parents
		}
	}
	return nil
}

// fail wraps a file system error of op on the object name, classifying it
// with the target package's sentinel errors. rel is the path (relative to
// the root) the failing call was about.
func (t *Target) fail(op, name, rel string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("posix: %s %q: %w", op, name, err)
	}
	if (op == "get" || op == "stat") && errors.Is(err, syscall.ENOTDIR) {
		err = fmt.Errorf("%w: %w", fs.ErrNotExist, err) // a file where a directory of the path should be
	}
	return classify(op+" "+fmt.Sprintf("%q", name), t.path, filepath.Join(t.path, filepath.FromSlash(rel)), err)
}

// classify wraps err with what happened and the sentinel error it maps to.
func classify(what, root, host string, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch {
	case errors.Is(err, target.ErrInvalidArgument) || errors.Is(err, target.ErrExists) || errors.Is(err, target.ErrNotFound):
		return fmt.Errorf("posix: %s: %w", what, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("posix: %s: %w: %w", what, target.ErrNotFound, err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("posix: %s: %w: %w", what, target.ErrExists, err)
	case strings.Contains(err.Error(), "path escapes from parent"):
		// os.Root's error for a symbolic link leading out of the root; the
		// os package does not export it.
		return fmt.Errorf("posix: %s: refusing to follow a symbolic link out of the root %s on the way to %s: %w: %w", what, root, host, target.ErrPermission, err)
	case errno == syscall.EROFS:
		return fmt.Errorf("posix: %s: the file system holding %s is read-only: %w: %w", what, root, target.ErrPermission, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("posix: %s: permission denied on %s: the user running the backup (uid %d) needs read, write and search (x) permission on the directories below %s and read and write permission on their files: %w: %w",
			what, host, os.Geteuid(), root, target.ErrPermission, err)
	case errno == syscall.ENOSPC || errno == syscall.EDQUOT:
		return fmt.Errorf("posix: %s: no space left (or quota exceeded) on the file system holding %s: free space or use another root: %w: %w", what, root, target.ErrPermanent, err)
	case errno == syscall.EISDIR:
		return fmt.Errorf("posix: %s: a directory of that name exists below %s (a name cannot be both an object and a prefix ending in '/' of other objects): %w: %w", what, root, target.ErrInvalidArgument, err)
	case errno == syscall.ENOTDIR:
		return fmt.Errorf("posix: %s: an element of the path %s is a file (a name cannot be both an object and a prefix ending in '/' of other objects): %w: %w", what, host, target.ErrInvalidArgument, err)
	case errno == syscall.ENAMETOOLONG:
		return fmt.Errorf("posix: %s: name too long for the file system: %w: %w", what, target.ErrInvalidArgument, err)
	}
	return fmt.Errorf("posix: %s (%s): %w", what, host, err)
}

// errNoReplaceUnsupported reports that the file system cannot rename without
// replacing; Put then uses link(2).
var errNoReplaceUnsupported = errors.New("rename without replace not supported")

// renameat2 is renameat2NoReplace, replaceable by tests of the link(2) path.
var renameat2 = renameat2NoReplace
