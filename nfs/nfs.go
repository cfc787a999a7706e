// Package nfs is a target.Target on an NFSv3 export that needs no kernel
// mount: it speaks NFS itself (MOUNT and NFSv3 over TCP, AUTH_SYS, on the
// message types of github.com/willscott/go-nfs-client), so a backup service
// in an unprivileged container, or on a host without an NFS client, can use
// the share Cinder's NFS backup driver would mount.
//
// Objects are laid out as Cinder's NFS driver lays them out, which is its
// posix driver on the mount point: an object name is a file path below
// Config.Subdirectory of the export, directories are created as needed with
// Config.DirMode, and Delete removes the directories it leaves empty. The
// semantics are those of package posix:
//
//   - Put creates a temporary file in the destination directory (named
//     target.ReservedPrefix plus random hex, with an exclusive GUARDED
//     CREATE), WRITEs the body in chunks of at most Config.IOSize bytes
//     (UNSTABLE), COMMITs it and RENAMEs it onto the name: readers see the
//     old object or the new one, never a part. A failed or cancelled Put
//     removes its temporary file; a crash (of the client or the server)
//     may leave one behind, invisible to List, Get and Stat, which may be
//     deleted by hand. If the server restarts between the WRITEs and the
//     COMMIT (its write verifier changes), Put fails and may be retried.
//   - With PutOptions.IfNotExists the temporary file is hard-linked to the
//     name (LINK fails if the name exists, atomically, like link(2)) and
//     then removed. NFSv3 RENAME always replaces, and an exclusive CREATE
//     of the final name would make the object visible before its data, so
//     LINK is the only atomic way. Servers without hard links (FSINFO does
//     not announce them, or LINK fails as unsupported; the go-nfs server is
//     one) get a LOOKUP followed by RENAME, which two concurrent writers
//     can both pass: Target.AtomicIfNotExists reports which one applies.
//   - Get reads with READ calls of at most Config.IOSize bytes as the
//     caller reads, after reading the first ones at once. Each reply's
//     attributes are checked: if the object is replaced while those first
//     bytes are read, Get starts again on the new object, so objects of up
//     to 1 MiB are always read whole from one version; if it is replaced
//     later, the read fails (the file handle went stale, or the attributes
//     name another file) instead of mixing two versions.
//   - List reads one directory at a time (READDIRPLUS), sorted, so names
//     come in lexical order without holding the whole listing.
//
// Errors map onto the target package's: NFS3ERR_NOENT is target.ErrNotFound,
// NFS3ERR_EXIST target.ErrExists, NFS3ERR_ACCES and NFS3ERR_PERM (and RPC
// authentication errors) target.ErrPermission with the uid and gid to
// check, a full or over-quota file system target.ErrPermanent, and stale
// handles, NFS3ERR_JUKEBOX, timeouts and broken connections are retryable.
// New tries Config.MountAttempts times (Cinder's 3) with a doubling wait,
// each connect and call bounded by Config.DialTimeout and Config.Timeout, so
// an unreachable server or a refused export gives one error in seconds.
//
// With Config.MountPoint the target is instead the posix target on a share
// the kernel mounted there.
package nfs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/chunkback/chunkback/internal/treelist"
	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
)

// Target stores objects as files on an NFSv3 export (or, with
// Config.MountPoint, below a mounted share). It is safe for concurrent use.
// Close releases its connections.
type Target struct {
	local *posix.Target // MountPoint mode; nil otherwise

	cfg    Config // with defaults
	host   string
	export string
	uid    uint32
	gid    uint32
	c      *client
	rsize  int
	wsize  int
	noLink atomic.Bool // hard links are not available: IfNotExists is LOOKUP + RENAME

	mu   sync.Mutex
	base []byte // handle of the Subdirectory, refreshed by remount
}

var (
	_ target.Target       = (*Target)(nil)
	_ target.LayoutTarget = (*Target)(nil)
	_ target.Closer       = (*Target)(nil)
)

// New mounts the export cfg.Share names (or, with cfg.MountPoint, opens
// the mounted share) and returns the target on its cfg.Subdirectory.
func New(ctx context.Context, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.MountPoint != "" {
		return newLocal(cfg)
	}
	host, export, _ := ParseShare(cfg.Share)
	t := &Target{cfg: cfg, host: host, export: export}
	t.uid, t.gid = uint32(os.Geteuid()), uint32(os.Getegid())
	if cfg.UID != nil {
		t.uid = *cfg.UID
	}
	if cfg.GID != nil {
		t.gid = *cfg.GID
	}
	machine := cfg.MachineName
	if machine == "" {
		machine, _ = os.Hostname()
		if len(machine) > 255 {
			machine = machine[:255]
		}
	}
	cred := rpc.NewAuthUnix(machine, t.uid, t.gid).Auth()
	t.c = &client{addr: t.nfsAddr(), cred: cred}
	for range cfg.Connections {
		t.c.conns = append(t.c.conns, newRPCConn(t.nfsAddr(), cfg.DialTimeout, cfg.Timeout, cfg.PrivilegedPort))
	}

	var err error
	delay := cfg.MountRetryDelay
	for attempt := 1; ; attempt++ {
		err = t.mountOnce(ctx)
		if err == nil || attempt >= cfg.MountAttempts || !mountRetryable(err) {
			break
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			err = fmt.Errorf("%w (while waiting to retry after: %w)", ctx.Err(), err)
		}
		if ctx.Err() != nil {
			break
		}
		delay *= 2
	}
	if err != nil {
		t.c.close()
		if cfg.MountAttempts > 1 && mountRetryable(err) {
			return nil, fmt.Errorf("nfs: cannot mount %s after %d attempts: %w", t, cfg.MountAttempts, err)
		}
		return nil, fmt.Errorf("nfs: cannot mount %s: %w", t, err)
	}
	return t, nil
}

// mountRetryable reports whether another mount attempt may succeed.
func mountRetryable(err error) bool {
	return !errors.Is(err, target.ErrNotFound) && !errors.Is(err, target.ErrPermission) &&
		!errors.Is(err, target.ErrInvalidArgument) && !errors.Is(err, target.ErrPermanent) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func (t *Target) nfsAddr() string {
	return net.JoinHostPort(t.host, strconv.Itoa(t.cfg.NFSPort))
}

func (t *Target) mountAddr() string {
	return net.JoinHostPort(t.host, strconv.Itoa(t.cfg.MountPort))
}

// mountOnce mounts the export, reads the server's transfer sizes and finds
// (or makes) the subdirectory.
func (t *Target) mountOnce(ctx context.Context) error {
	root, err := t.mountExport(ctx)
	if err != nil {
		return err
	}
	info, err := t.c.fsinfo(ctx, root)
	if err != nil {
		return t.connError("NFS", t.nfsAddr(), err)
	}
	t.rsize = clampIO(t.cfg.IOSize, info.RTMax)
	t.wsize = clampIO(t.cfg.IOSize, info.WTMax)
	if info.Properties&fsf3Link == 0 {
		t.noLink.Store(true)
	}
	base, err := t.findSubdirectory(ctx, root)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.base = base
	t.mu.Unlock()
	return nil
}

func clampIO(want int, server uint32) int {
	n := want
	if server > 0 && int64(server) < int64(n) {
		n = int(server)
	}
	return max(n, 512)
}

// mountExport asks the MOUNT server for the export's root handle.
func (t *Target) mountExport(ctx context.Context) ([]byte, error) {
	conn := newRPCConn(t.mountAddr(), t.cfg.DialTimeout, t.cfg.Timeout, t.cfg.PrivilegedPort)
	defer conn.close()
	fh, err := mount(ctx, conn, t.c.cred, t.export)
	switch {
	case err == nil:
		return fh, nil
	case hasStatus(err, gonfs.MNT3ErrNoEnt, gonfs.MNT3ErrNotDir):
		return nil, fmt.Errorf("the server at %s exports no %q (%w): check the path in Config.Share (showmount -e %s lists the exports; with nfs-ganesha's mount_path_pseudo it is the Pseudo path): %w",
			t.mountAddr(), t.export, err, t.host, target.ErrNotFound)
	case hasStatus(err, gonfs.MNT3ErrAcces, gonfs.MNT3ErrPerm), errors.Is(err, errAuth):
		// nfs-ganesha answers MNT3ERR_ACCES for a path it does not export too.
		return nil, fmt.Errorf("the server at %s refused to mount %q (%w): either it exports no such path (check the path in Config.Share; showmount -e %s lists the exports; with nfs-ganesha's mount_path_pseudo it is the Pseudo path) or the export does not admit this client (its client list, sec=sys, the AUTH_SYS uid %d gid %d of Config.UID/GID): %w",
			t.mountAddr(), t.export, err, t.host, t.uid, t.gid, target.ErrPermission)
	}
	return nil, t.connError("MOUNT", t.mountAddr(), err)
}

// connError explains a failure to talk to the server's service at addr.
func (t *Target) connError(service, addr string, err error) error {
	var se *statusError
	if errors.As(err, &se) || errors.Is(err, target.ErrPermission) || errors.Is(err, target.ErrNotFound) {
		return err
	}
	var hint string
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "nothing listens there: check the host in Config.Share, the port (Config.NFSPort and Config.MountPort; ?port and ?mount_port in URLs; no portmapper is asked) and that the server runs"
	case errors.Is(err, errTimeout), isTimeout(err):
		hint = "no answer in time: check that the host is reachable and a firewall lets the port through"
	case errors.Is(err, target.ErrPermanent), errors.Is(err, errNotSupported):
		hint = "that port does not serve the " + service + " v3 protocol: check Config.NFSPort and Config.MountPort"
	default:
		hint = "check the host and port, and that the server runs"
	}
	return fmt.Errorf("cannot talk to the %s service at %s: %w (%s)", service, addr, err, hint)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// findSubdirectory looks up (or, if asked, creates) the subdirectory.
func (t *Target) findSubdirectory(ctx context.Context, root []byte) ([]byte, error) {
	fh := root
	if t.cfg.Subdirectory == "" {
		return fh, nil
	}
	done := ""
	for elem := range strings.SplitSeq(t.cfg.Subdirectory, "/") {
		done = path.Join(done, elem)
		next, a, err := t.c.lookup(ctx, fh, elem)
		if hasStatus(err, gonfs.NFS3ErrNoEnt) && t.cfg.CreateSubdirectory {
			next, err = t.c.mkdir(ctx, fh, elem, t.cfg.DirMode)
			if hasStatus(err, gonfs.NFS3ErrExist) {
				next, a, err = t.c.lookup(ctx, fh, elem)
			} else {
				a.typ = gonfs.NF3Dir
			}
		}
		switch {
		case hasStatus(err, gonfs.NFS3ErrNoEnt):
			return nil, fmt.Errorf("the directory %s does not exist on the export: create it, or set Config.CreateSubdirectory (--create): %w", done, target.ErrNotFound)
		case err != nil:
			return nil, t.fail("open", done, err)
		case !a.isDir():
			return nil, fmt.Errorf("%s on the export is not a directory: fix Config.Subdirectory: %w", done, target.ErrInvalidArgument)
		}
		fh = next
	}
	return fh, nil
}

// newLocal opens the MountPoint mode's posix target.
func newLocal(cfg Config) (*Target, error) {
	fi, err := os.Stat(cfg.MountPoint)
	switch {
	case err != nil:
		return nil, fmt.Errorf("nfs: Config.MountPoint %s: %w", cfg.MountPoint, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("nfs: Config.MountPoint %s is not a directory: %w", cfg.MountPoint, target.ErrInvalidArgument)
	}
	if !cfg.AllowUnmounted {
		mounted, err := isMountPoint(cfg.MountPoint)
		if err != nil {
			return nil, fmt.Errorf("nfs: Config.MountPoint %s: %w", cfg.MountPoint, err)
		}
		if !mounted {
			return nil, fmt.Errorf("nfs: Config.MountPoint %s is not a mount point: mount the share there (mount -t nfs host:/path %s), or set Config.AllowUnmounted if the directory is right as it is: %w",
				cfg.MountPoint, cfg.MountPoint, target.ErrNotFound)
		}
	}
	root := filepath.Join(cfg.MountPoint, filepath.FromSlash(cfg.Subdirectory))
	p, err := posix.New(root, posix.Options{
		NoSync: cfg.NoSync, FileMode: cfg.FileMode, DirMode: cfg.DirMode, CreateRoot: cfg.CreateSubdirectory,
	})
	if err != nil {
		return nil, fmt.Errorf("nfs: %w", err)
	}
	return &Target{local: p, cfg: cfg}, nil
}

// isMountPoint reports whether dir is the root of a mounted file system: its
// device differs from its parent's, or it is its own parent.
func isMountPoint(dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	a, err := os.Stat(abs)
	if err != nil {
		return false, err
	}
	b, err := os.Stat(filepath.Dir(abs))
	if err != nil {
		return false, err
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return true, nil // cannot tell on this platform: trust the caller
	}
	return sa.Dev != sb.Dev || sa.Ino == sb.Ino, nil
}

// Close releases the connections (or the mounted directory). The target must
// not be used afterwards. NFSv3 servers keep no state for a mount, so no
// UMNT is sent.
func (t *Target) Close() error {
	if t.local != nil {
		return t.local.Close()
	}
	t.c.close()
	return nil
}

// CinderLayout implements target.LayoutTarget: objects are laid out as
// Cinder's NFS driver (its posix driver on the mount point) lays them out.
func (t *Target) CinderLayout() target.Layout { return target.LayoutPosix }

// AtomicIfNotExists reports whether Put with IfNotExists is atomic against
// concurrent writers: true unless the server lacks hard links (see the
// package documentation). It can turn false after the first such Put.
func (t *Target) AtomicIfNotExists() bool {
	return t.local != nil || !t.noLink.Load()
}

// String describes the target for messages: nfs://host:port/export/subdir
// (or the mounted directory).
func (t *Target) String() string {
	if t.local != nil {
		return "nfs mount " + filepath.Join(t.cfg.MountPoint, t.cfg.Subdirectory)
	}
	return "nfs://" + t.nfsAddr() + path.Join(t.export, t.cfg.Subdirectory)
}

func (t *Target) baseHandle() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.base
}

// remount mounts the export again after the server no longer knows the
// subdirectory's handle (a server that keeps handles in memory restarted).
func (t *Target) remount(ctx context.Context, stale []byte) error {
	t.mu.Lock()
	current := t.base
	t.mu.Unlock()
	if !bytes.Equal(current, stale) {
		return nil // another call did it
	}
	root, err := t.mountExport(ctx)
	if err != nil {
		return err
	}
	base, err := t.findSubdirectory(ctx, root)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.base = base
	t.mu.Unlock()
	return nil
}

// staleHandle reports whether err says a file handle is no longer valid.
func staleHandle(err error) bool {
	return hasStatus(err, gonfs.NFS3ErrStale, gonfs.NFS3ErrBadHandle)
}

// walkDirs looks up the directories of dir ("." for the base) from the base
// and returns their handles, the base's first. The base is mounted again
// once if the server forgot its handle.
func (t *Target) walkDirs(ctx context.Context, dir string) ([][]byte, error) {
	for attempt := 0; ; attempt++ {
		base := t.baseHandle()
		fhs := [][]byte{base}
		var err error
		if dir != "." {
			for elem := range strings.SplitSeq(dir, "/") {
				var fh []byte
				var a attrs
				fh, a, err = t.c.lookup(ctx, fhs[len(fhs)-1], elem)
				if err == nil && !a.isDir() {
					err = &statusError{proc: "LOOKUP", status: gonfs.NFS3ErrNotDir}
				}
				if err != nil {
					break
				}
				fhs = append(fhs, fh)
			}
		} else {
			_, err = t.c.getattr(ctx, base)
		}
		if err == nil {
			return fhs, nil
		}
		if attempt > 0 || !staleHandle(err) {
			return fhs, err
		}
		if len(fhs) == 1 {
			if rerr := t.remount(ctx, base); rerr != nil {
				return nil, rerr
			}
		}
		// A directory on the way was removed and made again meanwhile:
		// look the path up once more.
	}
}

// lookupObject returns the handle and attributes of the object name.
func (t *Target) lookupObject(ctx context.Context, name string) ([]byte, attrs, error) {
	for attempt := 0; ; attempt++ {
		dirs, err := t.walkDirs(ctx, path.Dir(name))
		if err == nil {
			var fh []byte
			var a attrs
			fh, a, err = t.c.lookup(ctx, dirs[len(dirs)-1], path.Base(name))
			if err == nil {
				if !a.isRegular() {
					return nil, a, &statusError{proc: "LOOKUP", status: gonfs.NFS3ErrNoEnt} // a directory is not an object
				}
				return fh, a, nil
			}
		}
		if hasStatus(err, gonfs.NFS3ErrNotDir) {
			// A file where a directory of the path should be.
			return nil, attrs{}, &statusError{proc: "LOOKUP", status: gonfs.NFS3ErrNoEnt}
		}
		if attempt > 0 || !staleHandle(err) {
			return nil, attrs{}, err
		}
	}
}

// cleanupTimeout bounds the removal of a failed Put's temporary file, which
// runs even when the Put's context is done.
const cleanupTimeout = 10 * time.Second

func (t *Target) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), min(cleanupTimeout, t.cfg.Timeout))
}

// ioBufPool holds the chunk buffers of Put.
var ioBufPool = sync.Pool{New: func() any { b := make([]byte, maxIO); return &b }}

// Put implements target.Target; see the package documentation for how.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) (err error) {
	if t.local != nil {
		return t.local.Put(ctx, name, body, size, opts)
	}
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("nfs: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nfs: put %q: %w", name, err)
	}
	dir := path.Dir(name)
	dirFH, created, tmp, fh, err := t.createTemp(ctx, dir)
	defer func() {
		if err == nil {
			return
		}
		// Whatever the context: the file must go even when the Put was
		// cancelled, and so must the directories made for it.
		cctx, cancel := t.cleanupContext(ctx)
		defer cancel()
		if fh != nil {
			_ = t.c.remove(cctx, dirFH, tmp)
		}
		t.removeCreated(cctx, created)
	}()
	if err != nil {
		return t.fail("put", name, err)
	}
	if err := t.writeBody(ctx, fh, body, size); err != nil {
		return t.fail("put", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nfs: put %q: %w", name, err)
	}
	base := path.Base(name)
	if opts.IfNotExists {
		err = t.placeNoReplace(ctx, dirFH, tmp, fh, base)
	} else {
		err = t.c.rename(ctx, dirFH, tmp, dirFH, base)
		if hasStatus(err, gonfs.NFS3ErrExist, gonfs.NFS3ErrIsDir, gonfs.NFS3ErrNotEmpty) {
			err = errIsDir
		}
	}
	if err != nil {
		return t.fail("put", name, err)
	}
	return nil
}

// errIsDir is a Put onto the name of a directory.
var errIsDir = fmt.Errorf("a directory of that name exists (a name cannot be both an object and a prefix ending in '/' of other objects): %w", target.ErrInvalidArgument)

// placeNoReplace gives the temporary file tmp (handle fh) in dir the name
// base unless base exists.
func (t *Target) placeNoReplace(ctx context.Context, dir []byte, tmp string, fh []byte, base string) error {
	if !t.noLink.Load() {
		err := t.c.link(ctx, fh, dir, base)
		if err == nil {
			cctx, cancel := t.cleanupContext(ctx)
			defer cancel()
			// The object is in place: a temporary name left behind is
			// invisible, so its removal's failure is not the Put's.
			_ = t.c.remove(cctx, dir, tmp)
			return nil
		}
		if !hasStatus(err, gonfs.NFS3ErrNotSupp, gonfs.NFS3ErrInval) && !errors.Is(err, errNotSupported) {
			return t.existsError(ctx, dir, base, err)
		}
		// The server cannot make hard links after all.
		t.noLink.Store(true)
	}
	_, a, err := t.c.lookup(ctx, dir, base)
	switch {
	case err == nil && a.isDir():
		return errIsDir
	case err == nil:
		return &statusError{proc: "LOOKUP", status: gonfs.NFS3ErrExist}
	case !hasStatus(err, gonfs.NFS3ErrNoEnt):
		return err
	}
	return t.c.rename(ctx, dir, tmp, dir, base)
}

// existsError turns NFS3ERR_EXIST for a directory into errIsDir.
func (t *Target) existsError(ctx context.Context, dir []byte, base string, err error) error {
	if hasStatus(err, gonfs.NFS3ErrExist) {
		if _, a, lerr := t.c.lookup(ctx, dir, base); lerr == nil && a.isDir() {
			return errIsDir
		}
	}
	return err
}

// createTemp makes the directory dir as needed and a new temporary file in
// it. It returns the directory's handle, the directories it created
// (relative paths, parents first), the temporary name and its handle.
func (t *Target) createTemp(ctx context.Context, dir string) (dirFH []byte, created []string, tmp string, fh []byte, err error) {
	// A concurrent Delete may remove a directory that has just become
	// empty between our MKDIR and our CREATE; then we start over.
	for range 10 {
		var c []string
		dirFH, c, err = t.mkdirs(ctx, dir)
		created = append(created, c...)
		if err != nil {
			if hasStatus(err, gonfs.NFS3ErrNoEnt) || staleHandle(err) {
				continue
			}
			return nil, created, "", nil, err
		}
		for {
			var rnd [12]byte
			_, _ = rand.Read(rnd[:])
			tmp = target.ReservedPrefix + hex.EncodeToString(rnd[:])
			fh, err = t.c.createGuarded(ctx, dirFH, tmp, t.cfg.FileMode)
			if !hasStatus(err, gonfs.NFS3ErrExist) {
				break
			}
		}
		if err == nil {
			return dirFH, created, tmp, fh, nil
		}
		if !hasStatus(err, gonfs.NFS3ErrNoEnt) && !staleHandle(err) {
			return nil, created, "", nil, err
		}
	}
	return nil, created, "", nil, err
}

// mkdirs makes dir and its missing parents and returns its handle and the
// directories it created.
func (t *Target) mkdirs(ctx context.Context, dir string) ([]byte, []string, error) {
	fhs, err := t.walkDirs(ctx, ".")
	if err != nil {
		return nil, nil, err
	}
	fh := fhs[0]
	if dir == "." {
		return fh, nil, nil
	}
	var created []string
	done := ""
	for elem := range strings.SplitSeq(dir, "/") {
		done = path.Join(done, elem)
		next, a, err := t.c.lookup(ctx, fh, elem)
		if hasStatus(err, gonfs.NFS3ErrNoEnt) {
			next, err = t.c.mkdir(ctx, fh, elem, t.cfg.DirMode)
			if err == nil {
				created = append(created, done)
				fh = next
				continue
			}
			if hasStatus(err, gonfs.NFS3ErrExist) {
				next, a, err = t.c.lookup(ctx, fh, elem)
			}
		}
		if err != nil {
			return nil, created, err
		}
		if !a.isDir() {
			return nil, created, &statusError{proc: "MKDIR", status: gonfs.NFS3ErrNotDir}
		}
		fh = next
	}
	return fh, created, nil
}

// removeCreated removes the directories a failed Put created, deepest
// first, as long as they are empty.
func (t *Target) removeCreated(ctx context.Context, created []string) {
	for _, d := range slices.Backward(created) {
		fhs, err := t.walkDirs(ctx, path.Dir(d))
		if err != nil || t.c.rmdir(ctx, fhs[len(fhs)-1], path.Base(d)) != nil {
			return
		}
	}
}

// writeBody WRITEs exactly size bytes of body to the file fh, in chunks of
// the write size, and COMMITs them unless NoSync.
func (t *Target) writeBody(ctx context.Context, fh []byte, body io.Reader, size int64) error {
	if size == 0 {
		return nil
	}
	bp := ioBufPool.Get().(*[]byte)
	defer ioBufPool.Put(bp)
	buf := (*bp)[:t.wsize]
	var (
		verf     uint64
		unstable bool // some WRITE was answered UNSTABLE, with verifier verf
	)
	for done := int64(0); done < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), size-done))
		m, err := io.ReadFull(body, buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("body ended after %d of %d bytes: %w: %w", done+int64(m), size, target.ErrInvalidArgument, io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("reading body at byte %d of %d: %w", done+int64(m), size, err)
		}
		for off := 0; off < n; {
			w, synced, v, err := t.c.write(ctx, fh, uint64(done)+uint64(off), buf[off:n], writeUnstable)
			if err != nil {
				return err
			}
			if w == 0 {
				return fmt.Errorf("the server wrote nothing of a %d-byte WRITE: %w", n-off, target.ErrUnavailable)
			}
			if !synced {
				if unstable && v != verf {
					return errRestarted
				}
				unstable, verf = true, v
			}
			off += w
		}
		done += int64(n)
	}
	if !unstable || t.cfg.NoSync {
		return nil
	}
	v, err := t.c.commit(ctx, fh)
	if err != nil {
		return err
	}
	if v != verf {
		return errRestarted
	}
	return nil
}

// errRestarted: the write verifier changed, so the server restarted and may
// have lost unstable writes. Retrying the Put writes everything again.
var errRestarted = fmt.Errorf("the NFS server restarted while the object was written (its write verifier changed), so data it had not committed may be lost: %w", target.ErrUnavailable)

// readAhead is how much Get reads before it returns, restarting on the new
// object if the object is replaced meanwhile.
const readAhead = 1 << 20

// Get implements target.Target.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if t.local != nil {
		return t.local.Get(ctx, name, offset, length)
	}
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("nfs: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("nfs: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nfs: get %q: %w", name, err)
	}
	var err error
	for range 5 {
		var fh []byte
		var a attrs
		fh, a, err = t.lookupObject(ctx, name)
		if err != nil {
			return nil, t.fail("get", name, err)
		}
		if offset > a.size {
			return nil, fmt.Errorf("nfs: get %q: offset %d beyond size %d: %w", name, offset, a.size, target.ErrInvalidRange)
		}
		n := a.size - offset
		if length >= 0 && length < n {
			n = length
		}
		r := &reader{ctx: ctx, t: t, name: name, fh: fh, fileid: a.fileid, off: offset, left: n}
		// Read the first bytes now: if the object is replaced meanwhile,
		// nothing was handed out yet and we start over on the new one.
		err = r.fill(int(min(n, readAhead)))
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errReplaced) {
			return nil, t.fail("get", name, err)
		}
	}
	return nil, t.fail("get", name, err)
}

// errReplaced: the object was replaced (or deleted) while it was read.
var errReplaced = fmt.Errorf("the object was replaced or deleted while it was read: %w", target.ErrUnavailable)

// reader streams an object with READ calls.
type reader struct {
	ctx    context.Context
	t      *Target
	name   string
	fh     []byte
	fileid uint64
	off    int64  // offset of the next READ
	left   int64  // bytes still to READ
	buf    []byte // read, not yet returned
	err    error
}

// fill reads up to want bytes (at least one READ's worth unless the end is
// reached) into r.buf.
func (r *reader) fill(want int) error {
	if cap(r.buf) < want {
		r.buf = make([]byte, 0, want)
	}
	r.buf = r.buf[:0]
	for len(r.buf) < want && r.left > 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		chunk := int(min(int64(want-len(r.buf)), int64(r.t.rsize), r.left))
		p := r.buf[len(r.buf) : len(r.buf)+chunk]
		n, eof, after, err := r.t.c.read(r.ctx, r.fh, uint64(r.off), p)
		switch {
		case staleHandle(err):
			return errReplaced
		case err != nil:
			return err
		case after != nil && after.fileid != r.fileid:
			return errReplaced
		case n == 0 && eof:
			return errReplaced // shorter than it was: not the same object
		}
		r.buf = r.buf[:len(r.buf)+n]
		r.off += int64(n)
		r.left -= int64(n)
	}
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.buf) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		if err := r.fill(r.t.rsize); err != nil {
			r.err = r.t.fail("get", r.name, err)
			return 0, r.err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *reader) Close() error {
	r.buf, r.err = nil, errors.New("nfs: read after Close")
	return nil
}

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if t.local != nil {
		return t.local.Stat(ctx, name)
	}
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("nfs: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return target.Info{}, fmt.Errorf("nfs: stat %q: %w", name, err)
	}
	_, a, err := t.lookupObject(ctx, name)
	if err != nil {
		return target.Info{}, t.fail("stat", name, err)
	}
	return target.Info{Name: name, Size: a.size, ModTime: a.mtime}, nil
}

// List implements target.Target. It reads only the directory that holds the
// prefix's last '/' and the directories below it, one directory at a time,
// sorted so that the names come out in lexical order of the full names.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if t.local != nil {
		return t.local.List(ctx, prefix, fn)
	}
	dir, filter, ok, err := treelist.Split(ctx, "nfs", prefix)
	if !ok || err != nil {
		return err
	}
	fhs, err := t.walkDirs(ctx, cmp.Or(dir, "."))
	if err != nil {
		if hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
			return nil
		}
		return t.fail("list", prefix, err)
	}
	return treelist.Walk(ctx, "nfs", dir, fhs[len(fhs)-1], filter, t.readDir, fn)
}

type listEntry struct {
	name  string
	attrs attrs
	fh    []byte // nil if the server sent none
}

// readDir returns the subdirectories and regular files of the directory
// handle (a file handle, named dir, "" for the base) whose names start with
// filter, with their handles and attributes.
func (t *Target) readDir(ctx context.Context, dir string, handle any, filter string) ([]treelist.Entry, error) {
	fh := handle.([]byte)
	var entries []listEntry
	err := t.c.readDirPlus(ctx, fh, func(e *gonfs.EntryPlus) {
		n := e.FileName
		if !strings.HasPrefix(n, filter) || target.CheckName(n) != nil {
			return // not asked for, a temporary file, or no valid name
		}
		le := listEntry{name: n}
		if e.Attr.IsSet {
			le.attrs = toAttrs(&e.Attr.Attr)
		}
		if e.Handle.IsSet {
			le.fh = e.Handle.FH
		}
		entries = append(entries, le)
	})
	if err != nil {
		if dir != "" && (hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) || staleHandle(err)) {
			return nil, fs.ErrNotExist // removed meanwhile
		}
		return nil, t.fail("list", dir, err)
	}
	// Entries without attributes (READDIRPLUS may leave them out) are
	// looked up.
	out := make([]treelist.Entry, 0, len(entries))
	for _, e := range entries {
		if e.attrs.typ == 0 || e.fh == nil {
			fh, a, err := t.c.lookup(ctx, fh, e.name)
			if hasStatus(err, gonfs.NFS3ErrNoEnt) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, t.fail("list", path.Join(dir, e.name), err)
			}
			e.fh, e.attrs = fh, a
		}
		switch {
		case e.attrs.isDir():
			out = append(out, treelist.Entry{Name: e.name, Dir: true, Handle: e.fh})
		case e.attrs.isRegular():
			out = append(out, treelist.Entry{Name: e.name, Size: e.attrs.size, ModTime: e.attrs.mtime})
		}
	}
	return out, nil
}

// Delete implements target.Target. It then removes the parent directories
// that became empty, up to the subdirectory.
func (t *Target) Delete(ctx context.Context, name string) error {
	if t.local != nil {
		return t.local.Delete(ctx, name)
	}
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("nfs: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nfs: delete %q: %w", name, err)
	}
	dir := path.Dir(name)
	fhs, err := t.walkDirs(ctx, dir)
	if hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
		return nil
	}
	if err != nil {
		return t.fail("delete", name, err)
	}
	parent := fhs[len(fhs)-1]
	_, a, err := t.c.lookup(ctx, parent, path.Base(name))
	if err == nil && a.isDir() {
		return nil // a directory is not an object
	}
	if err == nil {
		err = t.c.remove(ctx, parent, path.Base(name))
	}
	if hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
		return nil
	}
	if err != nil {
		return t.fail("delete", name, err)
	}
	// fhs[i] is the handle of the i-th directory of dir (0: the base).
	elems := strings.Split(dir, "/")
	for i := len(fhs) - 1; i >= 1; i-- {
		if t.c.rmdir(ctx, fhs[i-1], elems[i-1]) != nil {
			break // not empty (or no longer there): leave it and its parents
		}
	}
	return nil
}

// fail wraps an error of op on the object name, classifying it with the
// target package's sentinel errors and saying what to check.
func (t *Target) fail(op, name string, err error) error {
	what := fmt.Sprintf("nfs: %s %q", op, name)
	var se *statusError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, target.ErrInvalidArgument), errors.Is(err, target.ErrExists), errors.Is(err, target.ErrNotFound),
		errors.Is(err, target.ErrPermission), errors.Is(err, target.ErrPermanent), errors.Is(err, target.ErrUnavailable):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, errAuth):
		return fmt.Errorf("%s: the server at %s rejected the AUTH_SYS credentials (uid %d, gid %d): check that the export allows sec=sys, or Config.UID/GID: %w: %w",
			what, t.nfsAddr(), t.uid, t.gid, target.ErrPermission, err)
	case !errors.As(err, &se):
		return fmt.Errorf("%s: %s: %w", what, t, err) // a network failure: retryable
	}
	switch se.status {
	case gonfs.NFS3ErrNoEnt:
		return fmt.Errorf("%s: %w: %w", what, target.ErrNotFound, err)
	case gonfs.NFS3ErrExist:
		return fmt.Errorf("%s: %w: %w", what, target.ErrExists, err)
	case gonfs.NFS3ErrAcces, gonfs.NFS3ErrPerm:
		return fmt.Errorf("%s: permission denied on %s for AUTH_SYS uid %d gid %d: check that this uid/gid may read, write and search the directories of the export %s (their owner and mode, the export's Squash or root_squash and Access_Type), or set Config.UID/GID (?uid=&gid=): %w: %w",
			what, t, t.uid, t.gid, t.export, target.ErrPermission, err)
	case gonfs.NFS3ErrROFS:
		return fmt.Errorf("%s: the export %s is read-only: export it read-write (rw, Access_Type = RW): %w: %w", what, t.export, target.ErrPermission, err)
	case gonfs.NFS3ErrNoSpc, gonfs.NFS3ErrDQuot, gonfs.NFS3ErrFBig:
		return fmt.Errorf("%s: no space left (or quota exceeded) on the export %s: free space or use another share: %w: %w", what, t.export, target.ErrPermanent, err)
	case gonfs.NFS3ErrNotDir:
		return fmt.Errorf("%s: an element of the path is a file (a name cannot be both an object and a prefix ending in '/' of other objects): %w: %w", what, target.ErrInvalidArgument, err)
	case gonfs.NFS3ErrIsDir:
		return fmt.Errorf("%s: %w", what, errIsDir)
	case gonfs.NFS3ErrNameTooLong:
		return fmt.Errorf("%s: name too long for the server's file system: %w: %w", what, target.ErrInvalidArgument, err)
	case gonfs.NFS3ErrStale, gonfs.NFS3ErrBadHandle, nfs3ErrJukebox, gonfs.NFS3ErrIO, gonfs.NFS3ErrServerFault:
		return fmt.Errorf("%s: %w: %w", what, target.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
