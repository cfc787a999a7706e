package backup

// One writer per volume. Every operation that writes into a volume's
// prefix (Backup, Delete; the lead wires others through withVolumeLock)
// first takes the volume's lock object (naming.lockName), keeps it fresh
// while it runs, and removes it at the end, also on failure and
// cancellation. A second writer meets the lock and fails with a
// *LockedError (ErrLocked) that names the holder. A lock whose holder
// stopped refreshing it is stale; like restic, the engine never breaks it
// by itself (its holder may only be slow or cut off): BreakLock, or
// "chunkback unlock", does, on a person's word.
//
// Taking the lock (lock_take.go):
//  1. Create the lock object with PutOptions.IfNotExists. ErrExists: held.
//  2. Create a claim, lockName + ".claim-<token>", a name no one else uses.
//  3. List the claims and read the lock object back. The lock is ours only
//     if the lock object holds our token and no other claim exists;
//     otherwise we lost a race: remove our claim (and the lock object if it
//     holds our token) and report the volume as locked.
//
// While held, the claim is the proof: the holder checks that its claim is
// still there at every refresh (every TTL/3, when it also rewrites the lock
// object with a new expiry) and right before it commits (_metadata, the
// first delete). BreakLock removes the lock object and every claim.
//
// On stores where IfNotExists is atomic (POSIX, S3 with If-None-Match, GCS,
// Azure, RADOS, GlusterFS, NFS servers with hard links) step 1 alone
// decides. Where it is not (Swift, go-nfs, S3 with if_not_exists=check),
// two writers can both pass step 1, the later one replacing the earlier
// one's lock object; steps 2 and 3 then let at most one of them go on,
// with no assumption about timing, provided reads and listings see
// completed writes: whichever lists last sees the other's claim, and both
// read the lock object after both creates, or the one that reads first
// sees its own token and the later creator sees the first one's claim.
// Both may give way (each sees the other's claim); racers then try again
// after random pauses (maxLockRaces times) before reporting ErrLocked.
//
// Residual windows, on every store: between the check of the claim and the
// write that follows it (the refresh's rewrite, the _metadata) a person can
// break the lock and another writer take it; the broken holder notices at
// its next check. A holder that hangs for longer than TTL without being
// broken still holds the lock: stale locks are only ever broken by hand.
// A claim left by a writer that crashed in the middle of taking the lock
// blocks the volume (as a stale lock, once expired) until broken.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Lock defaults.
const (
	// DefaultLockTTL is how long a lock stays valid without a refresh; the
	// holder refreshes it every TTL/3.
	DefaultLockTTL = 2 * time.Minute
	// minLockTTL keeps the refresh period (TTL/3) meaningful.
	minLockTTL = 30 * time.Millisecond
	// lockReleaseTimeout bounds the release that runs after a cancelled
	// operation.
	lockReleaseTimeout = 30 * time.Second
)

// LockConfig configures the volume locks (Config.Lock). The zero value
// locks, with DefaultLockTTL and no waiting.
type LockConfig struct {
	// Disabled turns locking off: the engine then assumes it is the only
	// writer of the target (as Cinder's driver does), and nothing guards
	// against a second one.
	Disabled bool
	// TTL is how long a lock stays valid without a refresh: a holder that
	// dies leaves a lock that becomes stale after TTL. The holder refreshes
	// it every TTL/3, and an operation that cannot refresh it before it
	// expires stops with ErrLockLost. Holders compare expiry times taken
	// from their own clocks, so TTL should be well above the clock skew
	// between hosts. Default DefaultLockTTL (2 minutes).
	TTL time.Duration
	// Wait is how long an operation waits for a held lock before failing
	// with ErrLocked. Default 0: fail at once.
	Wait time.Duration
}

// Validate checks the lock configuration.
func (c LockConfig) Validate() error {
	switch {
	case c.TTL < 0 || (c.TTL > 0 && c.TTL < minLockTTL):
		return fmt.Errorf("%w: lock TTL %v: use 0 (default %v) or at least %v", ErrInvalidOptions, c.TTL, DefaultLockTTL, minLockTTL)
	case c.Wait < 0:
		return fmt.Errorf("%w: lock wait %v must not be negative (0 fails at once when the volume is locked)", ErrInvalidOptions, c.Wait)
	}
	return nil
}

func (c LockConfig) ttl() time.Duration {
	if c.TTL == 0 {
		return DefaultLockTTL
	}
	return c.TTL
}

// LockInfo is the content of a volume's lock object (JSON), and what the
// lock errors report about its holder.
type LockInfo struct {
	// VolumeID is the locked volume.
	VolumeID string `json:"volume_id"`
	// Owner is the holder's Config.Owner, Host its host name and PID its
	// process ID.
	Owner string `json:"owner"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	// Operation is what the holder is doing: "backup", "delete", ...
	Operation string `json:"operation"`
	// Token is the holder's random token: it tells its own lock from a lock
	// taken by someone else since.
	Token string `json:"token"`
	// Created is when the lock was taken, Refreshed when it was last
	// refreshed, and Expires when it becomes stale unless refreshed again
	// (all by the holder's clock).
	Created   time.Time `json:"created"`
	Refreshed time.Time `json:"refreshed"`
	Expires   time.Time `json:"expires"`
}

// Stale reports whether the lock expired before now: its holder stopped
// refreshing it, most likely because it died.
func (l *LockInfo) Stale(now time.Time) bool { return now.After(l.Expires) }

// String describes the holder for messages.
func (l *LockInfo) String() string {
	if l.Token == "" {
		return "another writer"
	}
	return fmt.Sprintf("%s of %s on host %s (pid %d), since %s", l.Operation, l.Owner, l.Host, l.PID, l.Created.UTC().Format(time.RFC3339))
}

// Errors about volume locks, for errors.Is.
var (
	// ErrLocked: another writer holds the volume's lock. The error is a
	// *LockedError that names the holder.
	ErrLocked = errors.New("volume is locked")
	// ErrLockLost: the lock of a running operation was broken or taken over
	// (or could not be refreshed before it expired); the operation stopped
	// before writing a _metadata or deleting anything more.
	ErrLockLost = errors.New("volume lock lost")
)

// LockedError is returned (wrapping ErrLocked) when a volume's lock is held
// by another writer.
type LockedError struct {
	// VolumeID is the locked volume.
	VolumeID string
	// Holder describes the lock found (its Token is empty when the holder is
	// unknown: another writer took the lock at the same time and left).
	Holder LockInfo
	// Stale is true when the holder's lock has expired: the holder probably
	// died; the lock stays until broken.
	Stale bool
	// Race is true when two writers took the lock at the same moment, on a
	// store without atomic conditional writes, and this one gave way.
	Race bool
}

func (e *LockedError) Error() string {
	fix := fmt.Sprintf("break it with `chunkback unlock --volume-id %s` (Engine.BreakLock)", e.VolumeID)
	switch {
	case e.Stale:
		return fmt.Sprintf("volume %s has a stale lock: %s, expired at %s without a refresh; its holder has probably died: if it is not running on host %s any more, %s",
			e.VolumeID, e.Holder.String(), e.Holder.Expires.UTC().Format(time.RFC3339), e.Holder.Host, fix)
	case e.Race:
		return fmt.Sprintf("volume %s: %s took its lock at the same moment, and this writer gave way: try again", e.VolumeID, e.Holder.String())
	}
	return fmt.Sprintf("volume %s is locked by %s (expires %s unless refreshed): wait for it to finish (Config.Lock.Wait, --lock-wait), or, if that process is gone, %s",
		e.VolumeID, e.Holder.String(), e.Holder.Expires.UTC().Format(time.RFC3339), fix)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockStatus returns the volume's lock, or nil when the volume is not
// locked. It does not tell a live lock from a stale one: see LockInfo.Stale.
func (e *Engine) LockStatus(ctx context.Context, volumeID string) (*LockInfo, error) {
	if err := checkVolumeID(volumeID); err != nil {
		return nil, err
	}
	name := e.naming.lockName(volumeID)
	info, err := e.readLock(ctx, name)
	if !errors.Is(err, target.ErrNotFound) {
		return info, err
	}
	// No lock object: a racer that gave way may have removed it while the
	// holder's claim still holds the lock.
	err = e.t.List(ctx, name+claimSuffix, func(o target.Info) error {
		if c, err := e.readLock(ctx, o.Name); err == nil && c.VolumeID == volumeID {
			info = c
			return errStopList
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopList) {
		return nil, fmt.Errorf("reading the lock of volume %s: %w", volumeID, err)
	}
	return info, nil
}

var errStopList = errors.New("stop listing")

// BreakLock removes the volume's lock, whoever holds it, and returns what it
// held (nil when the volume was not locked). A holder that is still running
// notices at its next check and stops with ErrLockLost before it writes a
// _metadata. Break only a lock whose holder is gone, or that must stop.
func (e *Engine) BreakLock(ctx context.Context, volumeID string) (*LockInfo, error) {
	if err := checkVolumeID(volumeID); err != nil {
		return nil, err
	}
	name := e.naming.lockName(volumeID)
	info, err := e.readLock(ctx, name)
	if err != nil && !errors.Is(err, target.ErrNotFound) && !errors.Is(err, errBadLock) {
		return nil, err
	}
	// The claims of racing or dead writers go too, so that none blocks the
	// next writer until it expires.
	var claims []string
	err = e.t.List(ctx, name+claimSuffix, func(o target.Info) error {
		claims = append(claims, o.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("breaking the lock of volume %s: %w", volumeID, err)
	}
	for _, c := range claims {
		if info == nil {
			if ci, err := e.readLock(ctx, c); err == nil && ci.VolumeID == volumeID {
				info = ci
			}
		}
		if err := e.t.Delete(ctx, c); err != nil {
			return nil, fmt.Errorf("breaking the lock of volume %s: %w", volumeID, err)
		}
	}
	if err := e.t.Delete(ctx, name); err != nil {
		return nil, fmt.Errorf("breaking the lock of volume %s: %w", volumeID, err)
	}
	return info, nil
}

// errBadLock marks a lock object that is not a lock chunkback wrote.
var errBadLock = errors.New("unreadable lock object")

// readLock reads a lock or claim object.
func (e *Engine) readLock(ctx context.Context, name string) (*LockInfo, error) {
	data, err := e.getAll(ctx, name)
	if err != nil {
		if errors.Is(err, target.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("reading the lock %s: %w", name, err)
	}
	var info LockInfo
	if err := json.Unmarshal(data, &info); err != nil || info.Token == "" {
		return nil, fmt.Errorf("%w: %s is not a chunkback lock: remove it with `chunkback unlock`", errBadLock, name)
	}
	return &info, nil
}

// checkVolumeID checks a volume ID given to the lock functions.
func checkVolumeID(volumeID string) error {
	switch {
	case volumeID == "":
		return fmt.Errorf("%w: volume ID is empty: name the volume whose lock to use", ErrInvalidOptions)
	case strings.ContainsAny(volumeID, "/\x00"):
		return fmt.Errorf("%w: volume ID %q must not contain '/'", ErrInvalidOptions, volumeID)
	}
	return nil
}

// lockKey is the context key of the lock an operation holds.
type lockKey struct{}

// withVolumeLock runs fn holding the volume's lock: it takes the lock
// (waiting up to Config.Lock.Wait), refreshes it while fn runs, and removes
// it when fn returns, also after a failure or a cancellation. If the lock is
// lost while fn runs, fn's context is cancelled and the error wraps
// ErrLockLost. Nested calls for the same volume (an operation built on
// another) run fn under the lock already held. fn must call
// checkVolumeLock right before the write that commits its work (a
// _metadata), and honour its context.
//
// When fn succeeds but the lock cannot be removed, the error is a
// *lockReleaseError: the work is done, and the lock stays until it is
// broken.
func (e *Engine) withVolumeLock(ctx context.Context, volumeID, op string, fn func(ctx context.Context) error) error {
	if e.cfg.Lock.Disabled {
		return fn(ctx)
	}
	if h, ok := ctx.Value(lockKey{}).(*heldLock); ok && h.e == e && h.info.VolumeID == volumeID {
		return fn(ctx)
	}
	h, err := e.takeLock(ctx, volumeID, op)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancelCause(context.WithValue(ctx, lockKey{}, h))
	stop := h.keepAlive(lctx, cancel)
	err = fn(lctx)
	stop()
	cause := context.Cause(lctx)
	cancel(nil)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), lockReleaseTimeout)
	defer rcancel()
	rerr := h.release(rctx)
	switch {
	case errors.Is(cause, ErrLockLost):
		return cause
	case err != nil:
		return err
	case rerr != nil:
		return &lockReleaseError{err: rerr}
	}
	return nil
}

// checkVolumeLock checks, when ctx carries a held lock, that it is still
// ours: the last check before a commit.
func checkVolumeLock(ctx context.Context) error {
	h, ok := ctx.Value(lockKey{}).(*heldLock)
	if !ok {
		return nil
	}
	return h.verify(ctx)
}

// lockReleaseError: the operation succeeded but its lock could not be
// removed.
type lockReleaseError struct{ err error }

func (e *lockReleaseError) Error() string {
	return fmt.Sprintf("the work is done, but its lock could not be removed (%v): it stays, and blocks the volume, until broken with `chunkback unlock`", e.err)
}

func (e *lockReleaseError) Unwrap() error { return e.err }
