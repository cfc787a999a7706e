package target

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// NewLimit returns a Target that lets at most n operations of t run at once,
// as restic's connection semaphore does; further operations wait for a free
// slot, in the order they came, or until their context ends.
//
// Get's slot is held until the returned reader is closed, since reading the
// object is part of the operation: a caller that opens n readers at once
// must close one before anything else can run. List holds its slot while t
// lists but not while fn runs, so fn may use the limited target itself
// (deleting the listed objects, say) without deadlocking it.
//
// n < 1 is an error wrapping ErrInvalidArgument. The returned target
// implements Wrapper, and LayoutTarget and Closer when t does.
func NewLimit(t Target, n int) (Target, error) {
	if t == nil {
		return nil, fmt.Errorf("target: NewLimit: the target is nil: %w", ErrInvalidArgument)
	}
	if n < 1 {
		return nil, fmt.Errorf("target: NewLimit: n is %d; it must be at least 1, the number of operations allowed to run at once: %w", n, ErrInvalidArgument)
	}
	return passThrough(&limitTarget{inner: t, slots: make(chan struct{}, n)}), nil
}

type limitTarget struct {
	inner Target
	slots chan struct{} // one element per operation in flight
}

// Unwrap returns the target l limits.
func (l *limitTarget) Unwrap() Target { return l.inner }

func (l *limitTarget) acquire(ctx context.Context, op, name string) error {
	// Checked first because select picks at random when both cases are ready.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %q: %w", op, name, err)
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %q: waiting for a free slot: %w", op, name, ctx.Err())
	}
}

func (l *limitTarget) release() { <-l.slots }

// Put implements Target.
func (l *limitTarget) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts PutOptions) error {
	if err := l.acquire(ctx, "put", name); err != nil {
		return err
	}
	defer l.release()
	return l.inner.Put(ctx, name, body, size, opts)
}

// Get implements Target.
func (l *limitTarget) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := l.acquire(ctx, "get", name); err != nil {
		return nil, err
	}
	rc, err := l.inner.Get(ctx, name, offset, length)
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitReader{ReadCloser: rc, release: l.release}, nil
}

// limitReader releases its Get's slot when it is first closed.
type limitReader struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *limitReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

// Stat implements Target.
func (l *limitTarget) Stat(ctx context.Context, name string) (Info, error) {
	if err := l.acquire(ctx, "stat", name); err != nil {
		return Info{}, err
	}
	defer l.release()
	return l.inner.Stat(ctx, name)
}

// List implements Target.
func (l *limitTarget) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := l.acquire(ctx, "list", prefix); err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			l.release()
		}
	}()
	return l.inner.List(ctx, prefix, func(info Info) error {
		if held {
			l.release()
			held = false
		}
		err := fn(info)
		if err != nil {
			return err
		}
		if err := l.acquire(ctx, "list", prefix); err != nil {
			return err
		}
		held = true
		return nil
	})
}

// Delete implements Target.
func (l *limitTarget) Delete(ctx context.Context, name string) error {
	if err := l.acquire(ctx, "delete", name); err != nil {
		return err
	}
	defer l.release()
	return l.inner.Delete(ctx, name)
}
