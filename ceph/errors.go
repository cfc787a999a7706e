//go:build ceph

package ceph

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/chunkback/chunkback/target"
)

// The errno values librados returns that the target classifies.
const (
	enoent       = syscall.ENOENT
	eexist       = syscall.EEXIST
	eperm        = syscall.EPERM
	eacces       = syscall.EACCES
	etimedout    = syscall.ETIMEDOUT
	eintr        = syscall.EINTR
	efbig        = syscall.EFBIG
	e2big        = syscall.E2BIG
	enospc       = syscall.ENOSPC
	edquot       = syscall.EDQUOT
	enametoolong = syscall.ENAMETOOLONG
	eblocklisted = syscall.ESHUTDOWN // librados's EBLOCKLISTED
)

// errnoOf returns the errno an error from librados carries (go-ceph's errors
// hold it negated behind ErrorCode), or 0.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var coded interface{ ErrorCode() int }
	if errors.As(err, &coded) {
		if c := coded.ErrorCode(); c < 0 {
			return syscall.Errno(-c)
		}
		return syscall.Errno(coded.ErrorCode())
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// errnoError turns a negative return code of librados into an error.
func errnoError(ret int) error {
	if ret >= 0 {
		return nil
	}
	return fmt.Errorf("rados: %w", syscall.Errno(-ret))
}

// fail wraps err from operation op on name (or on the pool, when name is
// empty) with the sentinel of target its errno stands for, and says what to
// check. Errors it does not know stay unclassified, and so retryable.
func (t *Target) fail(op, name string, err error) error {
	what := fmt.Sprintf("%s %q", op, name)
	if name == "" {
		what = op
	}
	where := fmt.Sprintf("pool %q", t.cfg.Pool)
	if t.cfg.Namespace != "" {
		where += fmt.Sprintf(" (namespace %q)", t.cfg.Namespace)
	}
	classified := func(sentinel error, format string, args ...any) error {
		return fmt.Errorf("ceph: %s: %s: %w: %w", what, fmt.Sprintf(format, args...), sentinel, err)
	}
	switch errnoOf(err) {
	case enoent:
		return classified(target.ErrNotFound, "not found in %s", where)
	case eexist:
		return classified(target.ErrExists, "exists in %s", where)
	case eperm, eacces:
		return classified(target.ErrPermission, "client.%s may not use %s: check its osd caps (`ceph auth get client.%s`)",
			t.cfg.User, where, t.cfg.User)
	case etimedout:
		return classified(target.ErrUnavailable, "no answer from the cluster within Config.OpTimeout (%v)", t.cfg.OpTimeout)
	case efbig, e2big:
		return classified(target.ErrPermanent, "the OSDs refuse objects this large: lower Config.ChunkSize below osd_max_object_size")
	case enospc, edquot:
		return classified(target.ErrPermanent, "%s is full or over its quota", where)
	case enametoolong:
		return classified(target.ErrInvalidArgument, "the RADOS object name is too long for the OSDs (osd_max_object_name_len): use a shorter Config.Prefix")
	case eblocklisted:
		return classified(target.ErrPermanent, "the cluster blocklisted this client: open the target again")
	}
	return fmt.Errorf("ceph: %s in %s: %w", what, where, err)
}
