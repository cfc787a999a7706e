package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors. Targets wrap them (fmt.Errorf("...: %w", ErrNotFound)) so
// callers can classify any failure with errors.Is.
var (
	// ErrNotFound: the object (or the container) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a conditional write found the object already there.
	ErrExists = errors.New("already exists")
	// ErrInvalidRange: Get was asked for an offset past the end of the object.
	ErrInvalidRange = errors.New("invalid range")
	// ErrInvalidArgument: the request itself is wrong (a bad object name, a
	// negative size); repeating it cannot succeed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrPermission: the credentials were refused or lack a permission.
	ErrPermission = errors.New("permission denied")
	// ErrPermanent marks any other failure that retrying cannot fix (a TLS
	// certificate the client does not trust, a corrupt reply).
	ErrPermanent = errors.New("permanent failure")
	// ErrThrottled: the store asked the client to slow down (HTTP 429,
	// S3 SlowDown). Retryable.
	ErrThrottled = errors.New("throttled")
	// ErrUnavailable: the store is temporarily unable to serve (HTTP 5xx,
	// connection reset, timeout). Retryable.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrImmutable: the object is write-once and inside its retention
	// window (NewWriteOnce, or a store's object lock): it may be neither
	// replaced nor deleted yet. The message says until when.
	ErrImmutable = errors.New("immutable")
)

// IsPermanent reports whether retrying the operation that returned err cannot
// help: the error is classified as not-found, exists, invalid range or argument,
// permission, immutable or permanent, or the context was cancelled or timed out.
// Unclassified errors are treated as transient, as restic does, because a
// network failure is the common unclassified case.
func IsPermanent(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrInvalidRange),
		errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrPermission), errors.Is(err, ErrPermanent),
		errors.Is(err, ErrImmutable):
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return !se.retryableByDefault()
	}
	return false
}

// StatusError carries the HTTP status of a failed request to an HTTP-based
// store, so retry policies can decide by status code and honour Retry-After.
// Is reports the matching sentinel (404 is ErrNotFound, 429 ErrThrottled, ...).
type StatusError struct {
	// Op is the operation that failed ("put", "get", ...).
	Op string
	// Name is the object the operation was about, if any.
	Name string
	// Code is the HTTP status code.
	Code int
	// RetryAfter is the delay the server asked for (zero if none).
	RetryAfter time.Duration
	// Err is the underlying error from the client library.
	Err error
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %q: HTTP %d %s", e.Op, e.Name, e.Code, http.StatusText(e.Code))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *StatusError) Unwrap() error { return e.Err }

// Is maps the status code onto the package's sentinel errors.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	case ErrExists:
		return e.Code == http.StatusPreconditionFailed || e.Code == http.StatusConflict
	case ErrInvalidRange:
		return e.Code == http.StatusRequestedRangeNotSatisfiable
	case ErrPermission:
		return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
	case ErrThrottled:
		return e.Code == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Code >= 500 || e.Code == http.StatusRequestTimeout
	}
	return false
}

func (e *StatusError) retryableByDefault() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout || e.Code >= 500
}

// ParseRetryAfter reads an HTTP Retry-After header value, either a number of
// seconds or an HTTP date, relative to now. It returns 0 when the value is
// empty or unreadable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// RetryAfter returns the delay the store asked for in err's chain, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfterDelay() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfterDelay(); d > 0 {
			return d, true
		}
	}
	return 0, false
}

// RetryAfterDelay implements the interface RetryAfter looks for.
func (e *StatusError) RetryAfterDelay() time.Duration { return e.RetryAfter }

// ClassifyNetwork makes a broken, refused or timed-out connection that a
// target's SDK reported without classifying it (a connection reset, a
// "connection refused" from a restarting server, a network timeout) wrap
// ErrUnavailable as well, so that callers tell it apart with errors.Is like
// any other failure. An error that already wraps one of this package's
// sentinels, or a context's error, is returned as it is.
func ClassifyNetwork(err error) error {
	if err == nil || !isConnectionError(err) {
		return err
	}
	for _, known := range []error{ErrNotFound, ErrExists, ErrInvalidRange, ErrInvalidArgument, ErrPermission,
		ErrPermanent, ErrThrottled, ErrUnavailable, ErrImmutable, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, known) {
			return err
		}
	}
	return &networkError{err}
}

// networkError is an unclassified connection failure, classified.
type networkError struct{ err error }

func (e *networkError) Error() string   { return e.err.Error() }
func (e *networkError) Unwrap() []error { return []error{e.err, ErrUnavailable} }
