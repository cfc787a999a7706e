package ceph

import (
	"fmt"
	"strings"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Defaults of Config's zero fields. The user, pool and chunk size are those of
// Cinder's Ceph backup driver (backup_ceph_user, backup_ceph_pool,
// backup_ceph_chunk_size); the retries those of its RBD connections
// (rados_connection_retries, rados_connection_interval).
const (
	DefaultUser           = "cinder"
	DefaultPool           = "backups"
	DefaultChunkSize      = 128 << 20
	DefaultConnectTimeout = 30 * time.Second
	DefaultOpTimeout      = 60 * time.Second
	DefaultMaxAttempts    = 4
	DefaultRetryInterval  = 5 * time.Second
)

// Config says which cluster, pool and part of it the target uses, and how
// it retries. Every zero field takes its documented default.
type Config struct {
	// Conf is the path of ceph.conf (Cinder's backup_ceph_conf). Empty means
	// librados's own search: $CEPH_CONF, then /etc/ceph/ceph.conf (Cinder's
	// default), ~/.ceph/config and ./ceph.conf.
	Conf string
	// User is the cephx ID, without "client." (Cinder's backup_ceph_user).
	// Default "cinder".
	User string
	// Keyring is the path of a keyring holding User's key. Empty means the
	// keyring ceph.conf names, or librados's default search
	// (/etc/ceph/ceph.client.<User>.keyring, ...).
	Keyring string

	// Pool is the RADOS pool (Cinder's backup_ceph_pool). Default "backups".
	Pool string
	// CreatePool makes New create Pool when it does not exist, with the
	// cluster's default settings and the application "chunkback". It needs
	// a user allowed to create pools.
	CreatePool bool
	// Namespace is the RADOS namespace inside Pool. Default: the pool's
	// default namespace.
	Namespace string
	// Prefix keeps this target's RADOS objects apart from others in the same
	// namespace: a '/'-separated path (a valid object name, see
	// target.CheckName), or empty. Targets with different prefixes do not see
	// each other's objects, even when one prefix starts with the other.
	Prefix string

	// ChunkSize is the largest RADOS object the target writes (Cinder's
	// backup_ceph_chunk_size, default 128 MiB, which is also Ceph's default
	// osd_max_object_size). Larger backup objects are striped over several
	// RADOS objects, invisibly to the caller. It cannot exceed the cluster's
	// osd_max_object_size.
	ChunkSize int64

	// ConnectTimeout bounds connecting and authenticating to the monitors
	// (librados client_mount_timeout). Default 30s.
	ConnectTimeout time.Duration
	// OpTimeout makes an operation that gets no answer (an OSD or monitor
	// down) fail after this long, with an error the retry decorator retries
	// (librados rados_osd_op_timeout and rados_mon_op_timeout). Default 60s.
	OpTimeout time.Duration

	// MaxAttempts is how many attempts an operation gets, the first one
	// included, when the target is wrapped with target.NewRetry(t,
	// cfg.RetryPolicy()). Default 4: one attempt plus Cinder's
	// rados_connection_retries (3). librados itself makes one attempt.
	MaxAttempts int
	// RetryInterval is the base of the exponential backoff between attempts
	// (Cinder's rados_connection_interval, default 5s).
	RetryInterval time.Duration
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Pool == "" {
		c.Pool = DefaultPool
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	return c
}

// Validate reports the first field New cannot accept, naming it and the
// fix. The error wraps target.ErrInvalidArgument.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("ceph: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	hasControl := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
	}
	switch {
	case hasControl(c.Conf):
		return bad("Conf %q contains a control character; give the path of ceph.conf", c.Conf)
	case strings.HasPrefix(c.User, "client."):
		return bad("User is %q; give the cephx ID without \"client.\" (%q)", c.User, strings.TrimPrefix(c.User, "client."))
	case strings.ContainsFunc(c.User, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return bad("User %q contains a space or control character; give a cephx ID such as %q", c.User, DefaultUser)
	case hasControl(c.Keyring):
		return bad("Keyring %q contains a control character; give the path of a keyring file", c.Keyring)
	case strings.ContainsFunc(c.Pool, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("Pool %q contains a control character; give a pool name such as %q", c.Pool, DefaultPool)
	case hasControl(c.Namespace):
		return bad("Namespace %q contains a control character; give a plain name or leave it empty", c.Namespace)
	case c.ChunkSize < 0:
		return bad("ChunkSize is %d; use 0 for the default (%d) or a positive size in bytes", c.ChunkSize, DefaultChunkSize)
	case c.ConnectTimeout < 0:
		return bad("ConnectTimeout is %v; use 0 for the default (%v) or a positive duration", c.ConnectTimeout, DefaultConnectTimeout)
	case c.OpTimeout < 0:
		return bad("OpTimeout is %v; use 0 for the default (%v) or a positive duration", c.OpTimeout, DefaultOpTimeout)
	case c.MaxAttempts < 0:
		return bad("MaxAttempts is %d; use 0 for the default (%d), 1 for no retries, or more", c.MaxAttempts, DefaultMaxAttempts)
	case c.RetryInterval < 0:
		return bad("RetryInterval is %v; use 0 for the default (%v) or a positive duration", c.RetryInterval, DefaultRetryInterval)
	}
	if c.Prefix != "" {
		if err := target.CheckName(c.Prefix); err != nil {
			return bad("Prefix %q is not a valid '/'-separated path (%v); use a name such as \"backups/site1\" or leave it empty", c.Prefix, err)
		}
	}
	return nil
}

// RetryPolicy returns the policy for target.NewRetry that MaxAttempts and
// RetryInterval ask for: RetryInterval is the base of the backoff, which
// grows to at most four times it.
func (c Config) RetryPolicy() target.RetryPolicy {
	d := c.withDefaults()
	return target.RetryPolicy{
		Mode:        target.RetryLegacy,
		MaxAttempts: d.MaxAttempts,
		BaseDelay:   d.RetryInterval,
		MaxDelay:    4 * d.RetryInterval,
	}
}
