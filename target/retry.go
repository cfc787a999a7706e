package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"syscall"
	"time"
)

// RetryMode selects how NewRetry paces retries. The modes mirror the retry
// modes of the AWS SDKs; all of them back off exponentially with full jitter
// and retry the same errors, up to RetryPolicy.MaxAttempts.
type RetryMode int

const (
	// RetryStandard (the default) adds a client-side retry quota shared by
	// every operation of the decorator, as the AWS SDKs' standard mode does: a
	// token bucket of 500 tokens from which each retry takes 5 (10 when the
	// failure was a timeout or a broken connection). A retry that finds too
	// few tokens is not made and the operation fails with
	// ErrRetryQuotaExhausted. An operation that succeeds gives back what its
	// last retry took, or 1 token if it needed no retry, so the quota refills
	// as the store recovers. The quota keeps an outage from turning into a
	// retry storm: once about 100 retries have failed in a row, operations
	// fail after their first attempt until requests succeed again.
	RetryStandard RetryMode = iota

	// RetryLegacy retries without a retry quota: every retryable failure is
	// retried until MaxAttempts, however many other operations are failing
	// too. It corresponds to the AWS SDKs' legacy mode (without its
	// SDK-specific defaults).
	RetryLegacy

	// RetryAdaptive is RetryStandard plus a client-side rate limiter that
	// slows requests down when the store throttles, in the spirit of the AWS
	// SDKs' adaptive mode (the rate law here is a simpler one, not AWS's
	// CUBIC). The limiter is off until a request fails with ErrThrottled.
	// Then every attempt, first ones included, waits for a token from a
	// bucket refilled at the allowed rate, with a burst of one second's
	// worth. The allowed rate starts at half the measured request rate, is
	// halved again at each further throttle (throttles less than 500ms apart
	// count as one: they are usually requests that were in flight together),
	// never drops below one request every two seconds, and between throttles
	// grows linearly, by 10% of its last reduced value per second, so after a
	// halving it is back to the previous rate in about ten seconds.
	RetryAdaptive
)

// String returns the mode's name: "standard", "legacy" or "adaptive".
func (m RetryMode) String() string {
	switch m {
	case RetryStandard:
		return "standard"
	case RetryLegacy:
		return "legacy"
	case RetryAdaptive:
		return "adaptive"
	}
	return fmt.Sprintf("RetryMode(%d)", int(m))
}

// ErrRetryQuotaExhausted is wrapped, together with the last error of the
// operation, into the error of an operation that was not retried because the
// retry quota of RetryStandard or RetryAdaptive mode was used up.
var ErrRetryQuotaExhausted = errors.New("retry quota exhausted")

// Defaults of RetryPolicy's zero fields.
const (
	defaultMaxAttempts   = 4
	defaultBaseDelay     = 100 * time.Millisecond
	defaultMaxDelay      = 20 * time.Second
	defaultMaxRetryAfter = 60 * time.Second
)

// defaultRetryStatusCodes are the HTTP statuses retried unless
// RetryPolicy.RetryStatusCodes says otherwise: the ones minio-go and the AWS
// SDKs retry.
var defaultRetryStatusCodes = []int{408, 429, 500, 502, 503, 504}

// RetryPolicy configures NewRetry. Every zero field takes its documented
// default, so the zero RetryPolicy is a sensible policy.
type RetryPolicy struct {
	// Mode chooses between RetryStandard (the default), RetryLegacy and
	// RetryAdaptive.
	Mode RetryMode

	// MaxAttempts is the number of attempts an operation may make, the first
	// one included: 1 makes no retries. Zero means 4, the default of
	// Cinder's S3 driver.
	MaxAttempts int

	// BaseDelay and MaxDelay shape the backoff with full jitter: before its
	// n-th retry an operation waits a uniformly random time in
	// [0, min(MaxDelay, BaseDelay*2^(n-1))). Zero means 100ms and 20s.
	BaseDelay, MaxDelay time.Duration

	// RetryStatusCodes lists the HTTP statuses retried when the error carries
	// a *StatusError; for such errors the list alone decides, whatever
	// IsPermanent says, and a status not in it ends the operation at once.
	// Empty means 408, 429, 500, 502, 503 and 504.
	RetryStatusCodes []int

	// IgnoreRetryAfter makes retries ignore the delay a store asks for (an
	// HTTP Retry-After header, see RetryAfter). By default the wait before a
	// retry is at least that delay.
	IgnoreRetryAfter bool

	// MaxRetryAfter bounds the Retry-After delay that is honoured: when the
	// store asks for a longer wait the operation fails at once (retrying
	// sooner than asked is pointless, and waiting longer than this would
	// stall the backup); raise it to wait longer. Zero means 60s.
	MaxRetryAfter time.Duration

	// OnRetry, when set, is called before each wait for a retry. It is called
	// from the goroutine of the operation, so it must be safe for concurrent
	// use and quick.
	OnRetry func(RetryEvent)
}

// RetryEvent describes a retry that NewRetry's decorator is about to make.
// It holds no more than the operation, the object and the error the target
// returned; targets keep credentials out of their errors.
type RetryEvent struct {
	// Op is the operation: "put", "get", "stat", "list" or "delete".
	Op string
	// Name is the object's name (the prefix for "list").
	Name string
	// Attempt is the number of the attempt that failed, starting at 1.
	Attempt int
	// Delay is how long the decorator waits before the next attempt.
	Delay time.Duration
	// Err is the error of the failed attempt.
	Err error
}

// Validate reports the first field of p that NewRetry cannot accept, naming
// the field and how to fix it. The error wraps ErrInvalidArgument.
func (p RetryPolicy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("target: RetryPolicy."+format+": %w", append(args, ErrInvalidArgument)...)
	}
	switch {
	case p.Mode < RetryStandard || p.Mode > RetryAdaptive:
		return bad("Mode is %v; use RetryStandard, RetryLegacy or RetryAdaptive", p.Mode)
	case p.MaxAttempts < 0:
		return bad("MaxAttempts is %d; use 0 for the default (%d), 1 for no retries, or more", p.MaxAttempts, defaultMaxAttempts)
	case p.BaseDelay < 0:
		return bad("BaseDelay is %v; use 0 for the default (%v) or a positive duration", p.BaseDelay, defaultBaseDelay)
	case p.MaxDelay < 0:
		return bad("MaxDelay is %v; use 0 for the default (%v) or a positive duration", p.MaxDelay, defaultMaxDelay)
	case p.MaxRetryAfter < 0:
		return bad("MaxRetryAfter is %v; use 0 for the default (%v) or a positive duration", p.MaxRetryAfter, defaultMaxRetryAfter)
	}
	d := p.withDefaults()
	if d.MaxDelay < d.BaseDelay {
		return bad("MaxDelay (%v) is less than BaseDelay (%v); raise MaxDelay or lower BaseDelay (zero fields count as their defaults)", d.MaxDelay, d.BaseDelay)
	}
	for _, c := range p.RetryStatusCodes {
		if c < 100 || c > 599 {
			return bad("RetryStatusCodes holds %d, which is not an HTTP status; use codes from 100 to 599", c)
		}
	}
	return nil
}

// withDefaults returns p with its zero fields set to their defaults.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = defaultMaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = defaultBaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = defaultMaxDelay
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = defaultMaxRetryAfter
	}
	if len(p.RetryStatusCodes) == 0 {
		p.RetryStatusCodes = defaultRetryStatusCodes
	}
	// Our own copy, so that the caller changing its slice later changes nothing.
	p.RetryStatusCodes = slices.Clone(p.RetryStatusCodes)
	return p
}

// NewRetry returns a Target that retries t's failed operations as p says.
//
// An operation is retried when its error is transient: the classified errors
// that IsPermanent reports (ErrNotFound, ErrPermission, ErrPermanent, ...)
// end it at once, and so does the cancellation or expiry of the caller's
// context, which also cuts a wait short. A context.DeadlineExceeded error
// while the caller's context is still live is t's own timeout (an HTTP client
// timeout, say) and is retried. An error carrying a *StatusError is retried
// only if its code is in p.RetryStatusCodes. No wait runs past the context's
// deadline: when the next attempt could not start before it, the operation
// fails at once with its last error.
//
// Put rewinds body to the position it had when Put was called before each new
// attempt, so every attempt sends the whole payload; if body cannot seek, Put
// makes one attempt. Get retries opening the object, not failures while the
// caller reads it. List resumes after a failure: since listings come in
// lexical order, a new attempt skips the names up to the last one passed to
// fn, so fn never sees a name twice; an error from fn is returned as it is,
// without retrying. Stat and Delete (which is idempotent) are retried as they
// are. A Put with IfNotExists whose first attempt stored the object but lost
// the reply fails with ErrExists on its retry.
//
// The error of an operation that made more than one attempt, or that stopped
// for the retry quota, the context deadline, a too long Retry-After or a body
// that cannot be rewound, says so and wraps the last error, for example
// `put "x": giving up after 4 attempts: <last error>`; errors.Is sees through
// it. So does the error of an operation whose context ended, which wraps the
// context's error too when t's error does not. Otherwise the error is t's,
// unchanged.
//
// Stack NewRetry outside NewLimit, so that waiting for a retry holds no slot.
// The returned target implements Wrapper, and LayoutTarget and Closer when t
// does.
func NewRetry(t Target, p RetryPolicy) (Target, error) {
	r, err := newRetry(t, p, retryEnv{})
	if err != nil {
		return nil, err
	}
	return passThrough(r), nil
}

// retryEnv holds the clock, sleep and randomness of a retrying target; tests
// replace them. Zero fields take the real ones.
type retryEnv struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	rand  func() float64 // uniform in [0, 1)
}

func retrySleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type retryTarget struct {
	inner Target
	p     RetryPolicy // with defaults
	env   retryEnv
	quota *retryQuota      // nil in legacy mode
	rate  *adaptiveLimiter // nil unless adaptive mode
}

func newRetry(t Target, p RetryPolicy, env retryEnv) (*retryTarget, error) {
	if t == nil {
		return nil, fmt.Errorf("target: NewRetry: the target is nil: %w", ErrInvalidArgument)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if env.now == nil {
		env.now = time.Now
	}
	if env.sleep == nil {
		env.sleep = retrySleep
	}
	if env.rand == nil {
		env.rand = rand.Float64
	}
	r := &retryTarget{inner: t, p: p.withDefaults(), env: env}
	if r.p.Mode != RetryLegacy {
		r.quota = newRetryQuota()
	}
	if r.p.Mode == RetryAdaptive {
		r.rate = newAdaptiveLimiter(env)
	}
	return r, nil
}

// Unwrap returns the target r retries.
func (r *retryTarget) Unwrap() Target { return r.inner }

// retryCall is one operation for retryTarget.do.
type retryCall struct {
	op, name string
	try      func(ctx context.Context) error
	// rewind, when set, prepares the next attempt; its error ends the operation.
	rewind func() error
	// final, when set, returns a non-nil error when the failure must be
	// returned as that error and not retried.
	final func(err error) error
}

func (r *retryTarget) do(ctx context.Context, c retryCall) error {
	return ClassifyNetwork(r.attempts(ctx, c))
}

// attempts runs c until it succeeds, fails for good or runs out of retries.
func (r *retryTarget) attempts(ctx context.Context, c retryCall) error {
	cost := 0 // quota tokens taken by the retry in progress
	var last error
	for attempt := 1; ; attempt++ {
		if err := r.rate.wait(ctx); err != nil {
			if last == nil {
				return fmt.Errorf("%s %q: %w", c.op, c.name, err)
			}
			return fmt.Errorf("%s %q: giving up after %s: %w; last error: %w", c.op, c.name, retryAttempts(attempt-1), err, last)
		}
		err := c.try(ctx)
		if err == nil {
			r.quota.succeeded(cost)
			return nil
		}
		last = err
		if errors.Is(err, ErrThrottled) {
			r.rate.throttled()
		}
		if c.final != nil {
			if ferr := c.final(err); ferr != nil {
				return ferr
			}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			if !errors.Is(err, ctxErr) {
				return fmt.Errorf("%s %q: %w after %s; last error: %w", c.op, c.name, ctxErr, retryAttempts(attempt), err)
			}
			return r.stop(c, attempt, err)
		}
		retry, timeout := r.classify(err)
		if !retry || attempt >= r.p.MaxAttempts {
			return r.stop(c, attempt, err)
		}

		delay := r.backoff(attempt)
		if ra, ok := RetryAfter(err); ok && !r.p.IgnoreRetryAfter {
			if ra > r.p.MaxRetryAfter {
				return retryGiveUp(c, attempt, fmt.Sprintf("the store asked to wait %v, longer than MaxRetryAfter (%v)", ra, r.p.MaxRetryAfter), err)
			}
			delay = max(delay, ra)
		}
		if dl, ok := ctx.Deadline(); ok && r.env.now().Add(delay).After(dl) {
			return retryGiveUp(c, attempt, fmt.Sprintf("the next attempt, in %v, would start after the context deadline", delay.Round(time.Millisecond)), err)
		}
		cost = retryCost
		if timeout {
			cost = retryTimeoutCost
		}
		if !r.quota.take(cost) {
			return fmt.Errorf("%s %q: giving up after %s: %w: %w", c.op, c.name, retryAttempts(attempt), ErrRetryQuotaExhausted, err)
		}
		if c.rewind != nil {
			if rerr := c.rewind(); rerr != nil {
				r.quota.give(cost)
				return retryGiveUp(c, attempt, fmt.Sprintf("cannot rewind the body (%v)", rerr), err)
			}
		}
		if r.p.OnRetry != nil {
			r.p.OnRetry(RetryEvent{Op: c.op, Name: c.name, Attempt: attempt, Delay: delay, Err: err})
		}
		if serr := r.env.sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%s %q: %w while waiting to retry after %s; last error: %w", c.op, c.name, serr, retryAttempts(attempt), err)
		}
	}
}

// stop returns err as the final error of an operation that ended after
// attempt attempts for the reason err itself tells.
func (r *retryTarget) stop(c retryCall, attempt int, err error) error {
	if attempt == 1 {
		return err
	}
	return fmt.Errorf("%s %q: giving up after %s: %w", c.op, c.name, retryAttempts(attempt), err)
}

func retryGiveUp(c retryCall, attempt int, why string, err error) error {
	return fmt.Errorf("%s %q: giving up after %s: %s: %w", c.op, c.name, retryAttempts(attempt), why, err)
}

func retryAttempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// classify reports whether err may go away on a retry and whether it is a
// timeout or a broken connection (which costs more retry quota). The caller
// has already checked that its context is live.
func (r *retryTarget) classify(err error) (retry, timeout bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return slices.Contains(r.p.RetryStatusCodes, se.Code), false
	}
	for _, perm := range []error{ErrNotFound, ErrExists, ErrInvalidRange, ErrInvalidArgument, ErrPermission, ErrPermanent, context.Canceled} {
		if errors.Is(err, perm) {
			return false, false
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The caller's context is live, so this is the target's own
		// timeout, which IsPermanent cannot tell from the caller's.
		return true, true
	}
	return true, isConnectionError(err)
}

// isConnectionError reports whether err is a network timeout or a broken or
// refused connection.
func isConnectionError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	for _, e := range []error{os.ErrDeadlineExceeded, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// backoff returns the full-jitter wait before the retry-th retry.
func (r *retryTarget) backoff(retry int) time.Duration {
	ceiling := r.p.BaseDelay
	for i := 1; i < retry && ceiling < r.p.MaxDelay; i++ {
		ceiling *= 2 // stops at MaxDelay, so it cannot overflow
	}
	ceiling = min(ceiling, r.p.MaxDelay)
	return time.Duration(r.env.rand() * float64(ceiling))
}

// Put implements Target.
func (r *retryTarget) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts PutOptions) error {
	var rewind func() error
	if body != nil {
		start, err := body.Seek(0, io.SeekCurrent)
		if err != nil {
			rewind = func() error { return fmt.Errorf("body cannot seek: %w", err) }
		} else {
			rewind = func() error {
				_, err := body.Seek(start, io.SeekStart)
				return err
			}
		}
	}
	return r.do(ctx, retryCall{
		op: "put", name: name, rewind: rewind,
		try: func(ctx context.Context) error { return r.inner.Put(ctx, name, body, size, opts) },
	})
}

// Get implements Target.
func (r *retryTarget) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, retryCall{
		op: "get", name: name,
		try: func(ctx context.Context) error {
			var err error
			rc, err = r.inner.Get(ctx, name, offset, length)
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	return rc, nil
}

// Stat implements Target.
func (r *retryTarget) Stat(ctx context.Context, name string) (Info, error) {
	var info Info
	err := r.do(ctx, retryCall{
		op: "stat", name: name,
		try: func(ctx context.Context) error {
			var err error
			info, err = r.inner.Stat(ctx, name)
			return err
		},
	})
	return info, err
}

// List implements Target.
func (r *retryTarget) List(ctx context.Context, prefix string, fn func(Info) error) error {
	var (
		last   string // the last name passed to fn
		seen   bool   // whether fn was called at all
		fnErr  error
		failed bool
	)
	return r.do(ctx, retryCall{
		op: "list", name: prefix,
		try: func(ctx context.Context) error {
			return r.inner.List(ctx, prefix, func(info Info) error {
				// Names come in lexical order, so everything up to last
				// was passed to fn by an earlier attempt.
				if seen && info.Name <= last {
					return nil
				}
				if err := fn(info); err != nil {
					fnErr, failed = err, true
					return err
				}
				last, seen = info.Name, true
				return nil
			})
		},
		final: func(error) error {
			if failed {
				return fnErr
			}
			return nil
		},
	})
}

// Delete implements Target.
func (r *retryTarget) Delete(ctx context.Context, name string) error {
	return r.do(ctx, retryCall{
		op: "delete", name: name,
		try: func(ctx context.Context) error { return r.inner.Delete(ctx, name) },
	})
}
