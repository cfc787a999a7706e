package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// WriteOnceConfig configures NewWriteOnce.
type WriteOnceConfig struct {
	// Window is how long after it was written an object may be neither
	// replaced nor deleted. Required: at least one second.
	Window time.Duration
	// Mode is the retention mode passed to the store with every Put
	// (PutOptions.RetentionMode). Default RetentionGovernance.
	Mode RetentionMode
	// Mutable, when set, names the objects that stay ordinary: replaced
	// and deleted at any time, and stored without retention (a lock object,
	// a resume journal). Default: none; every object is write-once.
	Mutable func(name string) bool
	// Now returns the current time (for tests). Default time.Now.
	Now func() time.Time
}

// minWindow is the shortest retention window: below it, clock skew between
// the client and the store decides more than the window does.
const minWindow = time.Second

// Validate checks the configuration; errors wrap ErrInvalidArgument.
func (c WriteOnceConfig) Validate() error {
	if c.Window < minWindow {
		return fmt.Errorf("target: WriteOnceConfig.Window is %v: give the retention window, at least %v (for example 720h for 30 days): %w", c.Window, minWindow, ErrInvalidArgument)
	}
	if err := c.Mode.Validate(); err != nil {
		return fmt.Errorf("target: WriteOnceConfig.Mode: %w", err)
	}
	return nil
}

// NewWriteOnce returns a Target that never replaces an object and never
// deletes one younger than cfg.Window, except the names cfg.Mutable marks:
//
//   - every Put is a conditional create (PutOptions.IfNotExists); replacing
//     an object fails with an error wrapping both ErrImmutable and
//     ErrExists, unless the object already holds exactly the bytes given (a
//     retried Put whose first reply was lost), which is success;
//   - every Put asks the store to retain the object until now+Window
//     (PutOptions.RetainUntil, RetentionMode), which stores that can
//     (RetentionEnforcer) enforce themselves;
//   - Delete of an object written less than Window ago (Stat's ModTime), or
//     of one whose store reports no modification time, fails with
//     ErrImmutable, naming the object and when it may be deleted.
//
// The check is in the client: a store that does not enforce retention
// itself is protected only from callers that go through this target. The
// returned target implements Wrapper, and LayoutTarget and Closer when t
// does. Errors of a bad cfg wrap ErrInvalidArgument.
func NewWriteOnce(t Target, cfg WriteOnceConfig) (Target, error) {
	if t == nil {
		return nil, fmt.Errorf("target: NewWriteOnce: the target is nil: %w", ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode == "" {
		cfg.Mode = RetentionGovernance
	}
	if cfg.Mutable == nil {
		cfg.Mutable = func(string) bool { return false }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return passThrough(&writeOnce{inner: t, cfg: cfg}), nil
}

type writeOnce struct {
	inner Target
	cfg   WriteOnceConfig
}

// Unwrap returns the target w protects.
func (w *writeOnce) Unwrap() Target { return w.inner }

// Put implements Target.
func (w *writeOnce) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts PutOptions) error {
	if w.cfg.Mutable(name) {
		return w.inner.Put(ctx, name, body, size, opts)
	}
	start := int64(0)
	if body != nil {
		var err error
		if start, err = body.Seek(0, io.SeekCurrent); err != nil {
			return fmt.Errorf("put %q: the body cannot seek: %v: %w", name, err, ErrInvalidArgument)
		}
	}
	opts.IfNotExists = true
	opts.RetainUntil = w.cfg.Now().Add(w.cfg.Window)
	opts.RetentionMode = w.cfg.Mode
	err := w.inner.Put(ctx, name, body, size, opts)
	if !errors.Is(err, ErrExists) {
		return err
	}
	same, cerr := sameContent(ctx, w.inner, name, body, start, size)
	if cerr != nil {
		return fmt.Errorf("put %q: %w (and comparing with the stored object failed: %v)", name, err, cerr)
	}
	if same {
		return nil
	}
	return fmt.Errorf("put %q: %w: the object is write-once and may not be replaced: %w", name, ErrImmutable, err)
}

// sameContent reports whether the stored object holds exactly the size
// bytes of body from start.
func sameContent(ctx context.Context, t Target, name string, body io.ReadSeeker, start, size int64) (bool, error) {
	info, err := t.Stat(ctx, name)
	if err != nil || info.Size != size {
		return false, err
	}
	if size == 0 {
		return true, nil
	}
	if _, err := body.Seek(start, io.SeekStart); err != nil {
		return false, err
	}
	rc, err := t.Get(ctx, name, 0, -1)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for left := size; left > 0; {
		n := int(min(left, int64(len(a))))
		if _, err := io.ReadFull(body, a[:n]); err != nil {
			return false, err
		}
		if _, err := io.ReadFull(rc, b[:n]); err != nil {
			return false, nil // shorter than it said: not the same
		}
		if !bytes.Equal(a[:n], b[:n]) {
			return false, nil
		}
		left -= int64(n)
	}
	return true, nil
}

// Get implements Target.
func (w *writeOnce) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	return w.inner.Get(ctx, name, offset, length)
}

// Stat implements Target.
func (w *writeOnce) Stat(ctx context.Context, name string) (Info, error) {
	return w.inner.Stat(ctx, name)
}

// List implements Target.
func (w *writeOnce) List(ctx context.Context, prefix string, fn func(Info) error) error {
	return w.inner.List(ctx, prefix, fn)
}

// Delete implements Target: only objects older than the window go.
func (w *writeOnce) Delete(ctx context.Context, name string) error {
	if w.cfg.Mutable(name) {
		return w.inner.Delete(ctx, name)
	}
	info, err := w.inner.Stat(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil // deleting what is not there is not an error
	}
	if err != nil {
		return fmt.Errorf("delete %q: checking its age: %w", name, err)
	}
	if err := CheckRetention(info, w.cfg.Window, w.cfg.Now()); err != nil {
		return err
	}
	return w.inner.Delete(ctx, name)
}

// CheckRetention returns nil if the object info describes was written at
// least window before now, or an error wrapping ErrImmutable that names the
// object and says when it may be deleted. An object without a ModTime is
// refused: its age is unknown.
func CheckRetention(info Info, window time.Duration, now time.Time) error {
	if info.ModTime.IsZero() {
		return fmt.Errorf("delete %q: %w: the store reports no modification time, so its age within the %v write-once window is unknown", info.Name, ErrImmutable, window)
	}
	if until := info.ModTime.Add(window); now.Before(until) {
		return fmt.Errorf("delete %q: %w: written %s, it is write-once for %v and may be deleted after %s",
			info.Name, ErrImmutable, info.ModTime.UTC().Format(time.RFC3339), window, until.UTC().Format(time.RFC3339))
	}
	return nil
}
