package nfs

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
)

// Defaults of Config.
const (
	// DefaultNFSPort is the NFS port of every common server.
	DefaultNFSPort = 2049
	// DefaultMountPort is the MOUNT port of nfs-ganesha and of Linux's
	// rpc.mountd where /etc/nfs.conf pins it ([mountd] port=20048); the
	// portmapper is not asked, so servers with a floating mountd port need
	// Config.MountPort.
	DefaultMountPort = 20048
	// DefaultMountAttempts is Cinder's backup_mount_attempts.
	DefaultMountAttempts = 3
	// DefaultMountRetryDelay is the wait after the first failed mount
	// attempt; it doubles after each further one.
	DefaultMountRetryDelay = time.Second
	// DefaultDialTimeout bounds connecting to the server.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTimeout bounds each RPC: 60 s, the Linux NFS client's
	// timeo=600.
	DefaultTimeout = 60 * time.Second
	// DefaultConnections is the number of TCP connections to the server.
	DefaultConnections = 4
	// DefaultIOSize is the most bytes one READ or WRITE carries (less
	// when the server offers less).
	DefaultIOSize = maxIO
)

// Config configures a Target. Share (or MountPoint) is required; every
// other zero field takes its documented default.
type Config struct {
	// Share is the NFS export, written as Cinder's backup_share:
	// "hostname:/path", "ipv4addr:/path" or "[ipv6addr]:/path". With
	// nfs-ganesha's mount_path_pseudo the path is the export's pseudo path.
	Share string

	// Subdirectory is the directory below the export that holds the
	// objects ("" for the export's root), as a relative '/'-separated path.
	Subdirectory string
	// CreateSubdirectory makes New create Subdirectory (and its parents)
	// when it does not exist. By default a missing one is an error, so a
	// typo is not silently filled.
	CreateSubdirectory bool

	// NFSPort and MountPort are the server's NFS and MOUNT ports
	// (defaults DefaultNFSPort, DefaultMountPort). They are dialled
	// directly: no portmapper (rpcbind) is asked.
	NFSPort, MountPort int

	// UID and GID are the AUTH_SYS credentials of every call, which the
	// server checks file permissions against (nil: the user and group
	// running the backup, as a kernel mount would send). A server that
	// squashes root maps uid 0 to its anonymous user.
	UID, GID *uint32
	// MachineName is the AUTH_SYS machine name (default: the host name).
	MachineName string
	// PrivilegedPort makes connections come from a source port below 1024,
	// which servers with "secure" exports (Linux's default) require;
	// binding one needs root or CAP_NET_BIND_SERVICE.
	PrivilegedPort bool

	// MountAttempts is how many times New tries to reach the server and
	// mount the export before it gives up (default DefaultMountAttempts,
	// Cinder's 3). A refused export is not retried.
	MountAttempts int
	// MountRetryDelay is the wait after the first failed attempt; it
	// doubles after each further one (default DefaultMountRetryDelay).
	MountRetryDelay time.Duration
	// DialTimeout bounds each TCP connect (default DefaultDialTimeout).
	DialTimeout time.Duration
	// Timeout bounds each RPC (default DefaultTimeout). A call without a
	// reply in time fails, and its connection is dropped and dialled anew
	// by the next call.
	Timeout time.Duration
	// Connections is the number of TCP connections calls are spread over
	// (default DefaultConnections).
	Connections int
	// IOSize is the most bytes of one READ or WRITE call (default and
	// maximum DefaultIOSize; the server's own maximum applies too).
	IOSize int

	// FileMode and DirMode are the permissions of the files and of the
	// directories Put creates (defaults posix.DefaultFileMode, 0660, and
	// posix.DefaultDirMode, 0770, as Cinder's).
	FileMode, DirMode fs.FileMode

	// NoSync skips the COMMIT after a Put's WRITEs. By default the data
	// is committed to the server's stable storage before Put returns, as a
	// kernel client does on close; with NoSync a server crash may lose
	// objects that were reported stored.
	NoSync bool

	// Retry is the policy RetryPolicy returns, for target.NewRetry
	// (zero: target.RetryPolicy's defaults, 4 attempts). Cinder's NFS
	// driver has no retries of its own.
	Retry target.RetryPolicy

	// MountPoint selects the second mode, for hosts that do have the share
	// mounted by the kernel: the target is then the posix target on the
	// directory MountPoint/Subdirectory, and every field above but
	// Subdirectory, CreateSubdirectory, FileMode, DirMode and NoSync is
	// ignored. Share must then be empty.
	MountPoint string
	// AllowUnmounted lets MountPoint be a directory that is not a mount
	// point. By default New refuses it, because a share that failed to
	// mount leaves an empty local directory, and backups written there
	// would fill the local disk instead of the share.
	AllowUnmounted bool
}

// Validate reports the first field of c that New cannot accept, naming the
// field and the fix. The error wraps target.ErrInvalidArgument.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("nfs: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	switch {
	case c.MountPoint != "" && c.Share != "":
		return bad("Share and Config.MountPoint are both set; set Share to speak NFS to the server, or MountPoint to use a kernel mount, not both")
	case c.MountPoint == "" && c.Share == "":
		return bad("Share is empty; give the export as host:/path (Cinder's backup_share), or set MountPoint to a mounted share")
	}
	if c.MountPoint == "" {
		if _, _, err := ParseShare(c.Share); err != nil {
			return err
		}
	} else if !strings.HasPrefix(c.MountPoint, "/") {
		return bad("MountPoint %q is not an absolute path; give the directory the share is mounted on", c.MountPoint)
	}
	if c.Subdirectory != "" && c.Subdirectory != "." {
		if err := target.CheckName(strings.Trim(c.Subdirectory, "/")); err != nil {
			return bad("Subdirectory %q is not a clean relative path (%v); write it as dir/subdir", c.Subdirectory, err)
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"NFSPort", c.NFSPort}, {"MountPort", c.MountPort}} {
		if p.v < 0 || p.v > 65535 {
			return bad("%s is %d; use a TCP port from 1 to 65535, or 0 for the default", p.name, p.v)
		}
	}
	switch {
	case c.MountAttempts < 0:
		return bad("MountAttempts is %d; use 0 for the default (%d) or a positive count", c.MountAttempts, DefaultMountAttempts)
	case c.MountRetryDelay < 0:
		return bad("MountRetryDelay is %v; use 0 for the default (%v) or a positive duration", c.MountRetryDelay, DefaultMountRetryDelay)
	case c.DialTimeout < 0:
		return bad("DialTimeout is %v; use 0 for the default (%v) or a positive duration", c.DialTimeout, DefaultDialTimeout)
	case c.Timeout < 0:
		return bad("Timeout is %v; use 0 for the default (%v) or a positive duration", c.Timeout, DefaultTimeout)
	case c.Connections < 0:
		return bad("Connections is %d; use 0 for the default (%d) or a positive count", c.Connections, DefaultConnections)
	case c.IOSize < 0 || c.IOSize > maxIO || (c.IOSize > 0 && c.IOSize < 4096):
		return bad("IOSize is %d; use 0 for the default (%d) or a size from 4096 to %d", c.IOSize, DefaultIOSize, maxIO)
	case len(c.MachineName) > 255:
		return bad("MachineName is %d bytes long; AUTH_SYS allows 255", len(c.MachineName))
	}
	if err := (posix.Options{FileMode: c.FileMode, DirMode: c.DirMode}).Validate(); err != nil {
		return bad("FileMode/DirMode: %v", err)
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("nfs: Config.Retry: %w", err)
	}
	return nil
}

// RetryPolicy returns the policy to wrap the target in with
// target.NewRetry: Config.Retry.
func (c Config) RetryPolicy() target.RetryPolicy { return c.Retry }

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.NFSPort, DefaultNFSPort)
	def(&c.MountPort, DefaultMountPort)
	def(&c.MountAttempts, DefaultMountAttempts)
	def(&c.Connections, DefaultConnections)
	def(&c.IOSize, DefaultIOSize)
	defDur(&c.MountRetryDelay, DefaultMountRetryDelay)
	defDur(&c.DialTimeout, DefaultDialTimeout)
	defDur(&c.Timeout, DefaultTimeout)
	if c.FileMode == 0 {
		c.FileMode = posix.DefaultFileMode
	}
	if c.DirMode == 0 {
		c.DirMode = posix.DefaultDirMode
	}
	c.Subdirectory = strings.Trim(c.Subdirectory, "/")
	if c.Subdirectory == "." {
		c.Subdirectory = ""
	}
	return c
}

// ParseShare splits a share spec as Cinder's backup_share accepts it,
// "hostname:/path", "ipv4addr:/path" or "[ipv6addr]:/path", into the host
// (an IPv6 address without brackets) and the export path. The error wraps
// target.ErrInvalidArgument.
func ParseShare(share string) (host, export string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("nfs: Config.Share %q %s; write it as hostname:/path, ipv4addr:/path or [ipv6addr]:/path: %w",
			share, why, target.ErrInvalidArgument)
	}
	var rest string
	if strings.HasPrefix(share, "[") {
		end := strings.Index(share, "]")
		if end < 0 {
			return "", "", bad("has no ']' after the IPv6 address")
		}
		host, rest = share[1:end], share[end+1:]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", "", bad(fmt.Sprintf("has %q in brackets, which is not an IPv6 address", host))
		}
		if !strings.HasPrefix(rest, ":") {
			return "", "", bad("has no ':' after the bracketed address")
		}
		rest = rest[1:]
	} else {
		var ok bool
		host, rest, ok = strings.Cut(share, ":")
		if !ok {
			return "", "", bad("has no ':' between host and path")
		}
		if strings.Contains(rest, ":") && net.ParseIP(share[:strings.LastIndex(share, ":")]) != nil {
			return "", "", bad("looks like an IPv6 address without brackets")
		}
		if host == "" {
			return "", "", bad("has no host")
		}
		if strings.ContainsAny(host, " /[]@?#") {
			return "", "", bad(fmt.Sprintf("has the host %q, which is not a host name or IPv4 address", host))
		}
	}
	if !strings.HasPrefix(rest, "/") {
		return "", "", bad("has a path that does not start with '/'")
	}
	if strings.HasPrefix(rest, "//") {
		return "", "", bad("looks like a URL (nfs:// URLs are for --target, not for the share)")
	}
	if strings.ContainsRune(rest, 0) {
		return "", "", bad("has a NUL byte in its path")
	}
	return host, path.Clean(rest), nil
}
