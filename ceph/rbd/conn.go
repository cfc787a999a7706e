//go:build ceph

package rbd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"

	"github.com/chunkback/chunkback/target"
)

// DefaultConnectTimeout is how long Connect waits for the monitors.
const DefaultConnectTimeout = 30 * time.Second

// Config says how to reach the cluster. The zero value uses librados's own
// defaults: $CEPH_CONF or /etc/ceph/ceph.conf, the user client.admin, and the
// keyring that ceph.conf names.
type Config struct {
	// Conf is the path of ceph.conf. Default: librados's search ($CEPH_CONF,
	// /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf).
	Conf string
	// User is the cephx user ID without "client." (Cinder's rbd_user and
	// backup_ceph_user, e.g. "cinder-backup"). Default "admin".
	User string
	// Keyring is the path of the user's keyring. Default: the keyring
	// ceph.conf names (or librados's default search).
	Keyring string
	// ConnectTimeout bounds Connect (client_mount_timeout). Default
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// OpTimeout makes a RADOS operation that gets no answer (an OSD or a
	// monitor down) fail after this long (rados_osd_op_timeout and
	// rados_mon_op_timeout) instead of waiting for the cluster to recover.
	// Default 0: wait, as librados does.
	OpTimeout time.Duration
}

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: rbd config: %s", target.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.HasPrefix(c.User, "client."):
		return bad("User %q: give the cephx ID without the \"client.\" prefix (%q)", c.User, strings.TrimPrefix(c.User, "client."))
	case strings.ContainsAny(c.User, " \t\n\x00"):
		return bad("User %q must not contain spaces", c.User)
	case c.ConnectTimeout < 0:
		return bad("ConnectTimeout %v must not be negative (0 means %v)", c.ConnectTimeout, DefaultConnectTimeout)
	case c.OpTimeout < 0:
		return bad("OpTimeout %v must not be negative (0 means wait)", c.OpTimeout)
	}
	return nil
}

// Conn is a connection to a Ceph cluster. It is safe for concurrent use;
// Close it when done.
type Conn struct {
	rc   *rados.Conn
	user string

	mu     sync.Mutex
	ioctxs map[string]*rados.IOContext
	closed bool
}

// Connect connects to the cluster. A wrong user or keyring gives one error
// wrapping target.ErrPermission. If ctx ends first, Connect returns at once
// and the connection attempt is shut down when it finishes.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	user := cfg.User
	if user == "" {
		user = "admin"
	}
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	rc, err := rados.NewConnWithUser(user)
	if err != nil {
		return nil, fmt.Errorf("rbd: creating the cluster handle: %w", err)
	}
	fail := func(err error) (*Conn, error) {
		rc.Shutdown()
		return nil, err
	}
	if cfg.Conf != "" {
		err = rc.ReadConfigFile(cfg.Conf)
	} else {
		err = rc.ReadDefaultConfigFile()
	}
	if err != nil {
		where := cfg.Conf
		if where == "" {
			where = "$CEPH_CONF or /etc/ceph/ceph.conf"
		}
		return fail(fmt.Errorf("%w: rbd: reading ceph.conf (%s): %v: set Conf (--target/rbd:// conf=, or CEPH_CONF) to the cluster's ceph.conf", target.ErrInvalidArgument, where, err))
	}
	opts := [][2]string{
		{"client_mount_timeout", seconds(timeout)},
		// A discard must leave zeros even where it does not cover whole
		// objects: a restore discards the ranges a backup holds no data for.
		{"rbd_skip_partial_discard", "false"},
	}
	if cfg.Keyring != "" {
		opts = append(opts, [2]string{"keyring", cfg.Keyring})
	}
	if cfg.OpTimeout > 0 {
		opts = append(opts, [2]string{"rados_osd_op_timeout", seconds(cfg.OpTimeout)}, [2]string{"rados_mon_op_timeout", seconds(cfg.OpTimeout)})
	}
	for _, o := range opts {
		if err := rc.SetConfigOption(o[0], o[1]); err != nil {
			return fail(fmt.Errorf("rbd: setting %s: %w", o[0], err))
		}
	}
	done := make(chan error, 1)
	go func() { done <- rc.Connect() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		go func() { <-done; rc.Shutdown() }()
		return nil, fmt.Errorf("rbd: connecting to the cluster: %w", ctx.Err())
	}
	if err != nil {
		return fail(connectError(err, user, cfg.Keyring))
	}
	return &Conn{rc: rc, user: user, ioctxs: map[string]*rados.IOContext{}}, nil
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// connectError explains a failed connect, naming the credential to check
// (never its value).
func connectError(err error, user, keyring string) error {
	where := "the keyring ceph.conf names"
	if keyring != "" {
		where = "the keyring file Config.Keyring names"
	}
	switch errno(err) {
	case syscall.EPERM, syscall.EACCES:
		return fmt.Errorf("%w: rbd: the cluster refused cephx user client.%s: check the user (Config.User, the URL's id=) and its key in %s: %v", target.ErrPermission, user, where, err)
	case syscall.ENOENT:
		return fmt.Errorf("%w: rbd: no key for cephx user client.%s: check the user (Config.User, the URL's id=) and the keyring (Config.Keyring, the URL's keyring=): %v", target.ErrPermission, user, err)
	case syscall.ETIMEDOUT, syscall.EINTR:
		return fmt.Errorf("%w: rbd: no monitor answered: check mon_host in ceph.conf and that the cluster runs: %v", target.ErrUnavailable, err)
	}
	return fmt.Errorf("rbd: connecting to the cluster as client.%s: %w", user, err)
}

// errno returns the positive errno a go-ceph error carries, or 0.
func errno(err error) syscall.Errno {
	var coded interface{ ErrorCode() int }
	if errors.As(err, &coded) {
		n := coded.ErrorCode()
		if n < 0 {
			n = -n
		}
		return syscall.Errno(n)
	}
	return 0
}

// Close ends the connection. Sources, destinations and images opened through
// it must be closed first.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for _, ioc := range c.ioctxs {
		ioc.Destroy()
	}
	c.ioctxs = nil
	c.rc.Shutdown()
	return nil
}

// ioctx returns the (shared, thread-safe) I/O context of pool.
func (c *Conn) ioctx(pool string) (*rados.IOContext, error) {
	if pool == "" {
		return nil, fmt.Errorf("%w: rbd: the pool name is empty: name the pool (rbd://POOL/image)", target.ErrInvalidArgument)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("rbd: the connection is closed")
	}
	if ioc, ok := c.ioctxs[pool]; ok {
		return ioc, nil
	}
	ioc, err := c.rc.OpenIOContext(pool)
	if err != nil {
		switch errno(err) {
		case syscall.ENOENT:
			return nil, fmt.Errorf("%w: rbd: pool %q does not exist: create it (ceph osd pool create %s; rbd pool init %s) or name another", target.ErrNotFound, pool, pool, pool)
		case syscall.EPERM, syscall.EACCES:
			return nil, fmt.Errorf("%w: rbd: client.%s may not use pool %q: check the user's caps (e.g. profile rbd pool=%s)", target.ErrPermission, c.user, pool, pool)
		}
		return nil, fmt.Errorf("rbd: opening pool %q: %w", pool, err)
	}
	c.ioctxs[pool] = ioc
	return ioc, nil
}

// imageError explains a failed operation on an image.
func (c *Conn) imageError(op string, ref ImageRef, err error) error {
	switch {
	case errors.Is(err, librbd.ErrNotFound), errno(err) == syscall.ENOENT:
		if ref.Snapshot != "" {
			return fmt.Errorf("%w: rbd: %s %s: the image or its snapshot does not exist", target.ErrNotFound, op, ref)
		}
		return fmt.Errorf("%w: rbd: %s %s: the image does not exist", target.ErrNotFound, op, ref)
	case errno(err) == syscall.EPERM, errno(err) == syscall.EACCES:
		return fmt.Errorf("%w: rbd: %s %s: client.%s is not allowed: check the user's caps (e.g. profile rbd pool=%s)", target.ErrPermission, op, ref, c.user, ref.Pool)
	case errno(err) == syscall.EEXIST:
		return fmt.Errorf("%w: rbd: %s %s: %v", target.ErrExists, op, ref, err)
	}
	return fmt.Errorf("rbd: %s %s: %w", op, ref, err)
}

// ImageRef names an RBD image, or one of its snapshots: pool/image[@snap].
type ImageRef struct {
	Pool, Image string
	// Snapshot is empty for the image itself (its head).
	Snapshot string
}

// String returns pool/image[@snapshot].
func (r ImageRef) String() string {
	s := r.Pool + "/" + r.Image
	if r.Snapshot != "" {
		s += "@" + r.Snapshot
	}
	return s
}

// ParseImageRef parses pool/image[@snap].
func ParseImageRef(s string) (ImageRef, error) {
	var r ImageRef
	rest, snap, hasSnap := strings.Cut(s, "@")
	pool, image, ok := strings.Cut(rest, "/")
	if !ok {
		return r, fmt.Errorf("%w: rbd image %q: write it as pool/image[@snapshot]", target.ErrInvalidArgument, s)
	}
	if hasSnap && snap == "" {
		return r, fmt.Errorf("%w: rbd image %q: the snapshot name after '@' is empty", target.ErrInvalidArgument, s)
	}
	r = ImageRef{Pool: pool, Image: image, Snapshot: snap}
	return r, r.validate("image")
}

// validate checks the names; what says which image it is, for the message.
func (r ImageRef) validate(what string) error {
	switch {
	case r.Pool == "":
		return fmt.Errorf("%w: rbd %s %q: the pool is empty: write pool/image", target.ErrInvalidArgument, what, r)
	case r.Image == "":
		return fmt.Errorf("%w: rbd %s %q: the image name is empty: write pool/image", target.ErrInvalidArgument, what, r)
	case strings.ContainsAny(r.Pool, "/@\x00"):
		return fmt.Errorf("%w: rbd %s: pool %q must not contain '/' or '@'", target.ErrInvalidArgument, what, r.Pool)
	case strings.ContainsAny(r.Image, "/@\x00"):
		return fmt.Errorf("%w: rbd %s: image %q must not contain '/' or '@'", target.ErrInvalidArgument, what, r.Image)
	case strings.ContainsAny(r.Snapshot, "/@\x00"):
		return fmt.Errorf("%w: rbd %s: snapshot %q must not contain '/' or '@'", target.ErrInvalidArgument, what, r.Snapshot)
	}
	return nil
}
