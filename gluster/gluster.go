//go:build gluster

package gluster

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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chunkback/chunkback/internal/bodycopy"
	"github.com/chunkback/chunkback/internal/gfapi"
	"github.com/chunkback/chunkback/internal/treelist"
	"github.com/chunkback/chunkback/target"
)

// Volume is a connection to one GlusterFS volume: a libgfapi virtual mount.
// It is safe for concurrent use and serves any number of targets (Open).
type Volume struct {
	fs        *gfapi.FS
	cfg       Config // with defaults
	closeOnce sync.Once
	closeErr  error
}

// Connect validates cfg and connects to its volume: it fetches the volume's
// configuration from glusterd at cfg.Host and connects to the bricks,
// within cfg.ConnectTimeout. Only the connection fields of cfg (Host, Port,
// Transport, Volume, LogFile, LogLevel, ConnectTimeout) matter here; the
// others are the defaults of the targets Open makes.
//
// libgfapi cannot abandon a connection attempt: when the timeout or ctx
// ends the wait, the attempt goes on in the background until libgfapi gives
// up, and its handle is released then.
func Connect(ctx context.Context, cfg Config) (*Volume, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gluster: connect to volume %q at %s: %w", cfg.Volume, cfg.server(), err)
	}
	f, err := gfapi.New(cfg.Volume)
	if err != nil {
		return nil, fmt.Errorf("gluster: volume %q: %w", cfg.Volume, err)
	}
	if err := f.SetVolfileServer(cfg.Transport, cfg.Host, cfg.Port); err != nil {
		_ = f.Fini()
		return nil, fmt.Errorf("gluster: Config.Host %q, Port %d, Transport %q: %w: %w", cfg.Host, cfg.Port, cfg.Transport, target.ErrInvalidArgument, err)
	}
	if err := f.SetLogging(cfg.LogFile, logLevels[cfg.LogLevel]); err != nil {
		_ = f.Fini()
		return nil, fmt.Errorf("gluster: Config.LogFile %q cannot be opened for libgfapi's log: %w: %w", cfg.LogFile, target.ErrInvalidArgument, err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Init() }()
	timer := time.NewTimer(cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		go finiWhenDone(f, done)
		return nil, fmt.Errorf("gluster: no answer from glusterd at %s for volume %q within Config.ConnectTimeout (%v): check Config.Host and Config.Port, "+
			"that glusterd runs, and that this host can reach it and the volume's bricks: %w", cfg.server(), cfg.Volume, cfg.ConnectTimeout, target.ErrUnavailable)
	case <-ctx.Done():
		go finiWhenDone(f, done)
		return nil, fmt.Errorf("gluster: connect to volume %q at %s: %w", cfg.Volume, cfg.server(), ctx.Err())
	}
	if err != nil {
		_ = f.Fini() // quick after a failed glfs_init
		return nil, initError(cfg, err)
	}
	return &Volume{fs: f, cfg: cfg}, nil
}

// finiWhenDone releases f once its abandoned glfs_init has returned.
func finiWhenDone(f *gfapi.FS, done <-chan error) {
	<-done
	_ = f.Fini()
}

// initError explains why glfs_init failed.
func initError(cfg Config, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch errno {
	case syscall.ENOENT:
		return fmt.Errorf("gluster: volume %q does not exist on glusterd at %s: check Config.Volume (the part after ':' of glusterfs_backup_share); "+
			"`gluster volume list` on the server lists the volumes: %w: %w", cfg.Volume, cfg.server(), target.ErrNotFound, err)
	case syscall.EACCES, syscall.EPERM:
		return fmt.Errorf("gluster: glusterd at %s or the bricks of volume %q refused this client: check the volume's auth.allow and auth.reject options "+
			"(and whether it requires TLS): %w: %w", cfg.server(), cfg.Volume, target.ErrPermission, err)
	}
	return fmt.Errorf("gluster: cannot connect to volume %q through glusterd at %s: check Config.Host and Config.Port, that glusterd runs "+
		"and that the volume is started (`gluster volume status %s`); Config.LogFile gets libgfapi's own log: %w: %w",
		cfg.Volume, cfg.server(), cfg.Volume, target.ErrUnavailable, err)
}

// Close releases the connection. It waits for the operations in flight and
// then for libgfapi to wind down, which takes about 10 seconds. The targets
// opened on v must not be used afterwards.
func (v *Volume) Close() error {
	v.closeOnce.Do(func() {
		if err := v.fs.Fini(); err != nil {
			v.closeErr = fmt.Errorf("gluster: close volume %q: %w", v.cfg.Volume, err)
		}
	})
	return v.closeErr
}

// Open returns a target whose root is the directory dir inside the volume
// ("" for the volume's root), sharing v's connection, with the NoSync,
// FileMode and DirMode of the Config v was made with. With create set, a
// missing dir is created (with its parents). Closing the target leaves v
// open.
func (v *Volume) Open(ctx context.Context, dir string, create bool) (*Target, error) {
	c := v.cfg
	c.Path = dir
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gluster: open %q in volume %q: %w", dir, v.cfg.Volume, err)
	}
	t := &Target{vol: v, fs: v.fs, cfg: v.cfg, copier: bodycopy.New()}
	if rel := strings.Trim(dir, "/"); rel != "" {
		t.root = "/" + rel
	}
	t.desc = "gluster://" + v.cfg.Host + "/" + v.cfg.Volume + t.root
	st, err := v.fs.Stat(t.dirPath("."))
	if errors.Is(err, fs.ErrNotExist) && create && t.root != "" {
		_, err = t.mkdirsFrom(strings.TrimPrefix(t.root, "/"), "")
		if err == nil {
			st, err = v.fs.Stat(t.dirPath("."))
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil, fmt.Errorf("gluster: directory %q does not exist in volume %q: create it, or set Config.CreatePath (--create): %w",
			t.dirPath("."), v.cfg.Volume, target.ErrNotFound)
	case err != nil:
		return nil, t.classify("open root", t.dirPath("."), err)
	case !st.IsDir():
		return nil, fmt.Errorf("gluster: %q in volume %q is not a directory: check Config.Path: %w", t.dirPath("."), v.cfg.Volume, target.ErrInvalidArgument)
	}
	return t, nil
}

// New connects to the volume of cfg (see Connect) and returns a target
// rooted at cfg.Path that owns the connection: its Close takes about 10
// seconds. When the connection succeeds but cfg.Path cannot be opened, New
// returns at once and releases the connection in the background. To open several targets, or one target many times, in a
// process, Connect once and Open each.
func New(ctx context.Context, cfg Config) (*Target, error) {
	v, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t, err := v.Open(ctx, cfg.Path, cfg.CreatePath)
	if err != nil {
		// Release the connection in the background: the caller should not
		// wait the 10 seconds of glfs_fini for an error.
		go func() { _ = v.Close() }()
		return nil, err
	}
	t.owner = true
	return t, nil
}

// Target stores objects as files below a directory of a GlusterFS volume.
// It is safe for concurrent use. Operations look at their context between
// libgfapi calls; a call under way is not interrupted.
type Target struct {
	vol    *Volume
	fs     *gfapi.FS
	cfg    Config
	root   string // "" (the volume's root) or "/dir/below"
	desc   string
	owner  bool // Close closes vol
	copier *bodycopy.Copier
}

var (
	_ target.Target       = (*Target)(nil)
	_ target.LayoutTarget = (*Target)(nil)
	_ target.Closer       = (*Target)(nil)
)

// Close releases the connection if New made it (about 10 seconds, see
// Volume.Close); a target from Volume.Open leaves its Volume open.
func (t *Target) Close() error {
	if t.owner {
		return t.vol.Close()
	}
	return nil
}

// CinderLayout implements target.LayoutTarget: Cinder's GlusterFS driver is
// its POSIX driver on a mount of the volume.
func (t *Target) CinderLayout() target.Layout { return target.LayoutPosix }

// String describes the target for messages: gluster://host/volume/dir.
func (t *Target) String() string { return t.desc }

// dirPath is the path in the volume of rel ("." or a name relative to the
// root).
func (t *Target) dirPath(rel string) string {
	if rel == "." || rel == "" {
		if t.root == "" {
			return "/"
		}
		return t.root
	}
	return t.root + "/" + rel
}

// copyChunk is the size of one write or read, and how much Put copies
// between two looks at the context.
const copyChunk = bodycopy.Chunk

// Put implements target.Target; see the package documentation for how.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) (err error) {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("gluster: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gluster: put %q: %w", name, err)
	}
	dir := path.Dir(name)
	created, tmp, f, err := t.createTemp(dir)
	if err != nil {
		t.removeDirs(created)
		return t.fail("put", name, err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			// Whatever the context: the file must go even when the Put was
			// cancelled, and so must the directories made for it.
			_ = t.fs.Unlink(tmp)
			t.removeDirs(created)
		}
	}()
	if err := f.Chmod(uint32(t.cfg.FileMode)); err != nil {
		return t.fail("put", name, err)
	}
	if err := t.copier.Copy(ctx, &fileWriter{f: f}, body, size); err != nil {
		return t.fail("put", name, err)
	}
	if !t.cfg.NoSync {
		if err := f.Sync(); err != nil {
			return t.fail("put", name, err)
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return t.fail("put", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gluster: put %q: %w", name, err)
	}
	full := t.dirPath(name)
	if opts.IfNotExists {
		// link(2) fails atomically if the name exists; rename would replace.
		if err := t.fs.Link(tmp, full); err != nil {
			return t.fail("put", name, t.existsError(full, err))
		}
		// The object is in place: a temporary name that cannot be removed
		// is invisible and harmless, while an error would make a retry
		// fail with ErrExists.
		_ = t.fs.Unlink(tmp)
		return nil
	}
	if err := t.fs.Rename(tmp, full); err != nil {
		return t.fail("put", name, t.existsError(full, err))
	}
	return nil
}

// createTemp creates the directory dir as needed and a new temporary file
// in it. It returns the directories it created and the temporary file's
// path in the volume.
func (t *Target) createTemp(dir string) (created []string, tmp string, f *gfapi.File, err error) {
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
			tmp = t.dirPath(path.Join(dir, target.ReservedPrefix+hex.EncodeToString(rnd[:])))
			f, err = t.fs.Creat(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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

// mkdirs creates dir (relative to the root) and its missing parents with
// DirMode and returns the ones it created.
func (t *Target) mkdirs(dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	if st, err := t.fs.Stat(t.dirPath(dir)); err == nil && st.IsDir() {
		return nil, nil
	}
	return t.mkdirsFrom(dir, t.root)
}

// mkdirsFrom creates the directory dir below base (a directory of the
// volume: "" for its root, or "/a/b") and dir's missing parents, returning
// the names relative to base of those it created.
func (t *Target) mkdirsFrom(dir, base string) ([]string, error) {
	base += "/"
	var created []string
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		d := dir[:i]
		err := t.fs.Mkdir(base+d, uint32(t.cfg.DirMode))
		if errors.Is(err, fs.ErrExist) {
			continue // a file in the way fails at the next step, ENOTDIR
		}
		if err != nil {
			return created, err
		}
		created = append(created, d)
		// chmod, so the bricks' umask does not change the mode.
		if err := t.fs.Chmod(base+d, uint32(t.cfg.DirMode)); err != nil {
			return created, err
		}
	}
	return created, nil
}

// removeDirs removes the directories (relative to the root) Put created,
// deepest first, if they are still empty.
func (t *Target) removeDirs(created []string) {
	for _, d := range slices.Backward(created) {
		_ = t.fs.Rmdir(t.dirPath(d))
	}
}

// fileWriter writes to a file at increasing offsets.
type fileWriter struct {
	f   *gfapi.File
	off int64
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}

// existsError turns EEXIST (and EISDIR) for a directory into EISDIR: no
// object can be stored where a directory is.
func (t *Target) existsError(full string, err error) error {
	if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.EISDIR) {
		if st, serr := t.fs.Lstat(full); serr == nil && st.IsDir() {
			return syscall.EISDIR
		}
	}
	return err
}

// Get implements target.Target. The reader holds the file open: an object
// replaced meanwhile is read whole as it was.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("gluster: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("gluster: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gluster: get %q: %w", name, err)
	}
	var f *gfapi.File
	full := t.dirPath(name)
	err := t.retryVanished(ctx, full, func() error {
		// Never glfs_open a directory: libgfapi leaks a call frame when
		// one is closed (see gfapi.FS.Open).
		st, err := t.fs.Stat(full)
		if err == nil && !st.IsRegular() {
			return fs.ErrNotExist
		}
		if err == nil {
			f, err = t.fs.Open(full, os.O_RDONLY)
		}
		return err
	})
	if err != nil {
		return nil, t.fail("get", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		_ = f.Close()
		return nil, t.fail("get", name, err)
	}
	if offset > st.Size {
		_ = f.Close()
		return nil, fmt.Errorf("gluster: get %q: offset %d beyond size %d: %w", name, offset, st.Size, target.ErrInvalidRange)
	}
	end := st.Size
	if length >= 0 && length < end-offset {
		end = offset + length
	}
	return &reader{t: t, ctx: ctx, name: name, f: f, off: offset, end: end}, nil
}

// maxVanished bounds the retries of retryVanished.
const maxVanished = 10

// retryVanished runs call, which looks the object at full up and then
// opens or stats what it found, again while it fails with ENOENT or ESTALE
// although the name exists. libgfapi looks a path up and then works on the
// file (gfid) it found: a rename that replaces the file in between (another
// Put of the same name) makes the second step fail although the name never
// ceased to exist, and a new lookup finds the new file. A name that really
// does not exist costs one more lookup.
func (t *Target) retryVanished(ctx context.Context, full string, call func() error) error {
	delay := time.Millisecond
	for attempt := 0; ; attempt++ {
		err := call()
		if err == nil || attempt == maxVanished || !(errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESTALE)) {
			return err
		}
		if _, serr := t.fs.Lstat(full); serr != nil {
			return err // really gone, or unreachable: the call's own error says so
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// reader reads [off, end) of an object and stops once its context is done.
type reader struct {
	t        *Target
	ctx      context.Context
	name     string
	f        *gfapi.File
	off, end int64
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.off >= r.end {
		return 0, io.EOF
	}
	// One libgfapi call per piece of copyChunk bytes at most, however
	// large p is: the calls it makes are bounded and ctx is looked at
	// between them.
	p = p[:min(int64(len(p)), r.end-r.off, copyChunk)]
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF) && n == 0:
		// Shorter than its size said: cut by someone writing the brick.
		return 0, fmt.Errorf("gluster: get %q: object ended at byte %d: %w", r.name, r.off, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		return n, nil
	case err != nil:
		return n, r.t.fail("get", r.name, err)
	}
	return n, nil
}

// WriteTo copies the rest of the range to w in reads of copyChunk bytes,
// so that io.Copy makes few round trips whatever its own buffer size.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, copyChunk)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (r *reader) Close() error { return r.f.Close() }

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("gluster: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return target.Info{}, fmt.Errorf("gluster: stat %q: %w", name, err)
	}
	var st gfapi.Stat
	full := t.dirPath(name)
	err := t.retryVanished(ctx, full, func() (err error) {
		st, err = t.fs.Stat(full)
		return err
	})
	if err == nil && !st.IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return target.Info{}, t.fail("stat", name, err)
	}
	return target.Info{Name: name, Size: st.Size, ModTime: st.ModTime}, nil
}

// List implements target.Target. It reads only the directory that holds the
// prefix's last '/' and the directories below it, one directory at a time,
// sorted so that the names come out in lexical order of the full names.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	dir, filter, ok, err := treelist.Split(ctx, "gluster", prefix)
	if !ok || err != nil {
		return err
	}
	return treelist.Walk(ctx, "gluster", dir, nil, filter, t.readDir, fn)
}

// readDir returns the directories and regular files in dir whose names
// start with filter and are valid object names.
func (t *Target) readDir(_ context.Context, dir string, _ any, filter string) ([]treelist.Entry, error) {
	d, err := t.fs.OpenDir(t.dirPath(dir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, err // gone meanwhile, or a file: no objects below it
		}
		return nil, t.fail("list", dir, err)
	}
	defer d.Close()
	var entries []treelist.Entry
	for {
		de, err := d.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, t.fail("list", dir, err)
		}
		n := de.Name
		if !strings.HasPrefix(n, filter) || target.CheckName(n) != nil {
			continue // not asked for, ".", "..", a temporary file, or no valid name
		}
		st := de.Stat
		if !de.HasStat {
			if st, err = t.fs.Lstat(t.dirPath(path.Join(dir, n))); errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			} else if err != nil {
				return nil, t.fail("list", path.Join(dir, n), err)
			}
		}
		switch {
		case st.IsDir():
			entries = append(entries, treelist.Entry{Name: n, Dir: true})
		case st.IsRegular():
			entries = append(entries, treelist.Entry{Name: n, Size: st.Size, ModTime: st.ModTime})
		}
	}
}

// Delete implements target.Target. It then removes the parent directories
// that became empty, up to the root.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("gluster: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gluster: delete %q: %w", name, err)
	}
	st, err := t.fs.Lstat(t.dirPath(name))
	if err == nil && st.IsDir() {
		return nil // a directory is not an object
	}
	if err == nil {
		err = t.fs.Unlink(t.dirPath(name))
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return t.fail("delete", name, err)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if t.fs.Rmdir(t.dirPath(dir)) != nil {
			break // not empty (or no longer there): leave it and its parents
		}
	}
	return nil
}

// fail wraps an error of op on the object name, classifying it with the
// target package's sentinel errors.
func (t *Target) fail(op, name string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("gluster: %s %q: %w", op, name, err)
	}
	if (op == "get" || op == "stat") && errors.Is(err, syscall.ENOTDIR) {
		err = fmt.Errorf("%w: %w", fs.ErrNotExist, err) // a file where a directory of the path should be
	}
	return t.classify(fmt.Sprintf("%s %q", op, name), t.dirPath(name), err)
}

// classify wraps err with what happened and the sentinel error it maps to.
func (t *Target) classify(what, where string, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	vol := t.cfg.Volume
	switch {
	case errors.Is(err, target.ErrInvalidArgument) || errors.Is(err, target.ErrExists) || errors.Is(err, target.ErrNotFound):
		return fmt.Errorf("gluster: %s: %w", what, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("gluster: %s: %w: %w", what, target.ErrNotFound, err)
	case errno == syscall.EISDIR:
		return fmt.Errorf("gluster: %s: a directory of that name exists in volume %q (a name cannot be both an object and a prefix ending in '/' of other objects): %w: %w",
			what, vol, target.ErrInvalidArgument, err)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("gluster: %s: %w: %w", what, target.ErrExists, err)
	case errno == syscall.EROFS:
		return fmt.Errorf("gluster: %s: volume %q is read-only: %w: %w", what, vol, target.ErrPermission, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("gluster: %s: permission denied on %s in volume %q: the uid the client runs as (%d) needs read, write and search permission "+
			"on the directories below %s and read and write permission on their files (Cinder chgrp's the volume's root to its group and adds g+w): %w: %w",
			what, where, vol, os.Geteuid(), t.dirPath("."), target.ErrPermission, err)
	case errno == syscall.ENOSPC || errno == syscall.EDQUOT:
		return fmt.Errorf("gluster: %s: no space left (or quota exceeded) in volume %q: %w: %w", what, vol, target.ErrPermanent, err)
	case errno == syscall.ENOTDIR:
		return fmt.Errorf("gluster: %s: an element of the path %s in volume %q is a file (a name cannot be both an object and a prefix ending in '/' of other objects): %w: %w",
			what, where, vol, target.ErrInvalidArgument, err)
	case errno == syscall.ENAMETOOLONG:
		return fmt.Errorf("gluster: %s: name too long for volume %q: %w: %w", what, vol, target.ErrInvalidArgument, err)
	case errno == syscall.ENOTCONN || errno == syscall.ETIMEDOUT || errno == syscall.ECONNREFUSED || errno == syscall.EHOSTUNREACH:
		return fmt.Errorf("gluster: %s: lost the connection to the bricks of volume %q: %w: %w", what, vol, target.ErrUnavailable, err)
	}
	return fmt.Errorf("gluster: %s (%s in volume %q): %w", what, where, vol, err)
}
