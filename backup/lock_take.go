package backup

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/chunkback/chunkback/target"
)

// claimSuffix starts the names of a lock's claims: lockName + claimSuffix +
// token.
const claimSuffix = ".claim-"

// heldLock is a volume lock this engine holds.
type heldLock struct {
	e     *Engine
	name  string // the lock object
	claim string // our claim object

	mu   sync.Mutex
	info LockInfo // as last written
}

// maxLockRaces is how many times a writer that gave way in a race (two
// writers creating the lock at once, on a store without atomic creates)
// tries again, after a random pause that doubles each time (from up to
// 100 ms), before it reports ErrLocked.
const maxLockRaces = 6

// takeLock takes the volume's lock, waiting up to Config.Lock.Wait while
// another writer holds it.
func (e *Engine) takeLock(ctx context.Context, volumeID, op string) (*heldLock, error) {
	deadline := time.Now().Add(e.cfg.Lock.Wait)
	brokeDead := false
	for races := 0; ; {
		h, err := e.tryLock(ctx, volumeID, op)
		var le *LockedError
		if err == nil || !errors.As(err, &le) {
			return h, err
		}
		if !brokeDead && holderIsGone(le.Holder) {
			// A process of this host that died holding the lock (killed,
			// crashed): it will never release it, and waiting for it to
			// go stale would only delay a resume. (restic does the same.)
			brokeDead = true
			if _, err := e.BreakLock(ctx, volumeID); err != nil {
				return nil, err
			}
			continue
		}
		var pause time.Duration
		if left := time.Until(deadline); le.Race && races < maxLockRaces {
			// Racers that all gave way each pause for a different time:
			// the first to come back takes the lock.
			pause = time.Duration(rand.Int64N(int64(100*time.Millisecond) << races))
			races++
		} else if left > 0 {
			// Poll about ten times over the wait, at most every 2 s, with
			// jitter so that waiters do not meet again.
			pause = min(left, 2*time.Second, max(10*time.Millisecond, e.cfg.Lock.Wait/10))
			pause = time.Duration(float64(pause) * (0.5 + rand.Float64()/2))
		} else {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock: %w (%w)", context.Cause(ctx), err)
		case <-time.After(pause):
		}
	}
}

// holderIsGone reports whether the lock's holder was a process of this host
// that no longer runs. A holder elsewhere, or one whose PID is alive (even
// if reused by another program), is never presumed gone.
func holderIsGone(l LockInfo) bool {
	return l.Token != "" && l.PID > 0 && l.PID != os.Getpid() && l.Host == hostName() && !processAlive(l.PID)
}

// tryLock makes one attempt to take the lock (see lock.go for the steps).
func (e *Engine) tryLock(ctx context.Context, volumeID, op string) (*heldLock, error) {
	name := e.naming.lockName(volumeID)
	now := time.Now()
	h := &heldLock{e: e, name: name, info: LockInfo{
		VolumeID: volumeID, Owner: e.owner, Host: hostName(), PID: os.Getpid(), Operation: op,
		Token: newToken(), Created: now, Refreshed: now, Expires: now.Add(e.cfg.Lock.ttl()),
	}}
	h.claim = name + claimSuffix + h.info.Token
	body, err := json.Marshal(h.info)
	if err != nil {
		return nil, err
	}
	// 1. The lock object, created only if absent.
	err = e.t.Put(ctx, name, bytes.NewReader(body), int64(len(body)), target.PutOptions{IfNotExists: true})
	if errors.Is(err, target.ErrExists) {
		cur, rerr := e.readLock(ctx, name)
		switch {
		case errors.Is(rerr, target.ErrNotFound):
			return nil, &LockedError{VolumeID: volumeID, Race: true} // released meanwhile: try again
		case rerr != nil:
			return nil, fmt.Errorf("volume %s is locked, and its lock cannot be read: %w", volumeID, rerr)
		case cur.Token != h.info.Token: // else: a retried create whose first reply was lost
			return nil, &LockedError{VolumeID: volumeID, Holder: *cur, Stale: cur.Stale(time.Now())}
		}
	} else if err != nil {
		return nil, fmt.Errorf("taking the lock %s: %w", name, err)
	}
	// 2. Our claim; 3. the check that no one else got this far.
	err = e.t.Put(ctx, h.claim, bytes.NewReader(body), int64(len(body)), target.PutOptions{IfNotExists: true})
	if errors.Is(err, target.ErrExists) {
		err = nil // our own retried create: no one else knows the token
	}
	var rival, cur *LockInfo
	if err == nil {
		rival, err = e.rivalClaim(ctx, h)
	}
	if err == nil {
		cur, err = e.readLock(ctx, name)
		if errors.Is(err, target.ErrNotFound) || errors.Is(err, errBadLock) {
			cur, err = &LockInfo{}, nil // broken or replaced meanwhile: not ours
		}
	}
	if err == nil && rival == nil && cur.Token == h.info.Token {
		return h, nil
	}
	h.drop(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("taking the lock %s: %w", name, err)
	}
	if rival != nil {
		if rival.Token == cur.Token {
			rival = cur // the lock object is refreshed, the claim is not
		}
		stale := rival.Stale(time.Now())
		return nil, &LockedError{VolumeID: volumeID, Holder: *rival, Stale: stale, Race: !stale}
	}
	return nil, &LockedError{VolumeID: volumeID, Holder: *cur, Race: true}
}

// rivalClaim returns another writer's claim on the lock, if any. A stale
// one counts too: its writer may have died holding the lock, which only
// BreakLock may decide.
func (e *Engine) rivalClaim(ctx context.Context, h *heldLock) (*LockInfo, error) {
	var names []string
	err := e.t.List(ctx, h.name+claimSuffix, func(o target.Info) error {
		if o.Name != h.claim {
			names = append(names, o.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		c, err := e.readLock(ctx, n)
		switch {
		case errors.Is(err, target.ErrNotFound), errors.Is(err, errBadLock):
			continue // gone meanwhile, or not a claim
		case err != nil:
			return nil, err
		case c.VolumeID == h.info.VolumeID:
			return c, nil
		}
	}
	return nil, nil
}

// verify checks that the lock is still ours: that our claim is still there.
// The claim, not the lock object, is what proves it, because on a store
// without atomic creates a writer that lost the race may have overwritten
// the lock object (and, giving way, removed it); the next refresh writes it
// again.
func (h *heldLock) verify(ctx context.Context) error {
	_, err := h.e.readLock(ctx, h.claim)
	if err == nil {
		return nil
	}
	if !errors.Is(err, target.ErrNotFound) && !errors.Is(err, errBadLock) {
		return err
	}
	now := "nobody holds it now"
	if cur, err := h.e.readLock(ctx, h.name); err == nil && cur.Token != h.info.Token {
		now = "it is now held by " + cur.String()
	}
	return fmt.Errorf("%w: the lock of volume %s was broken while this %s ran (%s): the %s stopped before committing anything",
		ErrLockLost, h.info.VolumeID, h.info.Operation, now, h.info.Operation)
}

// refresh checks that the lock is still ours, then writes the lock object
// again with a new expiry.
func (h *heldLock) refresh(ctx context.Context) error {
	if err := h.verify(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	now := time.Now()
	h.info.Refreshed, h.info.Expires = now, now.Add(h.e.cfg.Lock.ttl())
	body, err := json.Marshal(h.info)
	h.mu.Unlock()
	if err != nil {
		return err
	}
	return h.e.t.Put(ctx, h.name, bytes.NewReader(body), int64(len(body)), target.PutOptions{})
}

// expires returns when the lock, as last written, becomes stale.
func (h *heldLock) expires() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.info.Expires
}

// keepAlive refreshes the lock every TTL/3 until stop is called. When the
// lock is lost, or cannot be refreshed before it expires, it cancels the
// operation's context with an error wrapping ErrLockLost.
func (h *heldLock) keepAlive(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(h.e.cfg.Lock.ttl() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := h.refresh(ctx)
			switch {
			case err == nil, ctx.Err() != nil:
			case errors.Is(err, ErrLockLost):
				cancel(err)
				return
			case time.Now().After(h.expires()):
				cancel(fmt.Errorf("%w: the lock of volume %s could not be refreshed before it expired: %w", ErrLockLost, h.info.VolumeID, err))
				return
			}
			// Other failures are retried at the next tick, while the lock
			// is still valid.
		}
	})
	return func() { close(done); wg.Wait() }
}

// release removes our claim and then, if it holds our token, the lock
// object: a lock object someone else wrote stays theirs. (A crash between
// the two leaves a lock that goes stale.)
func (h *heldLock) release(ctx context.Context) error {
	if err := h.e.t.Delete(ctx, h.claim); err != nil {
		return fmt.Errorf("removing %s: %w", h.claim, err)
	}
	cur, err := h.e.readLock(ctx, h.name)
	switch {
	case errors.Is(err, target.ErrNotFound), errors.Is(err, errBadLock):
		return nil
	case err != nil:
		return err
	case cur.Token != h.info.Token:
		return nil
	}
	if err := h.e.t.Delete(ctx, h.name); err != nil {
		return fmt.Errorf("removing %s: %w", h.name, err)
	}
	return nil
}

// drop undoes a failed attempt, best effort.
func (h *heldLock) drop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, lockReleaseTimeout)
	defer cancel()
	_ = h.release(ctx)
}

// newToken returns 128 random bits in hex.
func newToken() string {
	var b [16]byte
	_, _ = cryptorand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// hostName returns the host's name, or "unknown".
func hostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}
