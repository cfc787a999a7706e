// Package target defines the storage abstraction chunkback writes backups to.
//
// A Target is bound to one container (a directory, a bucket, a Swift container, a
// RADOS pool) and stores whole objects under names. Names may contain '/', which
// targets with real directories map to subdirectories. Every target translates its
// native errors into the sentinel errors of this package, so callers classify
// failures with errors.Is whatever the store:
//
//	if errors.Is(err, target.ErrNotFound) { ... }
//
// Cross-cutting behaviour (retries, concurrency limits) is added by decorators that
// wrap any Target: see NewRetry and NewLimit. The package targettest holds the one
// conformance suite every target must pass.
package target

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Target stores named objects in one container.
//
// All methods are safe for concurrent use and honour context cancellation.
//
// Names follow the same rules on every target (see CheckName), so a backup
// written to one can be copied to any other: '/'-separated elements, none
// empty, "." or "..", no leading '/', no control characters, valid UTF-8, at
// most MaxNameLen bytes. A name that breaks them is ErrInvalidArgument, as is
// a negative size or offset. A prefix that only other names pass through (a
// "directory") is never an object itself.
type Target interface {
	// Put stores size bytes read from body under name. The object becomes
	// visible whole or not at all: a failed or cancelled Put never leaves a
	// partial object under name. An existing object is replaced, unless
	// opts.IfNotExists is set, in which case Put fails with ErrExists.
	//
	// body is read from its current position; decorators that retry seek it
	// back to that position before each new attempt, so body must be
	// seekable and must not be modified until Put returns.
	Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts PutOptions) error

	// Get opens the bytes [offset, offset+length) of the named object.
	// A negative length reads to the end of the object; a range that runs past
	// the end is cut short at the end. An offset beyond the end of the object
	// is ErrInvalidRange (an offset equal to the size reads nothing).
	// The caller must close the returned reader; reading from it after ctx
	// is cancelled may fail with ctx's error.
	Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)

	// Stat describes the named object, or returns ErrNotFound.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for every object whose name starts with prefix, in
	// lexical order of names, streaming: targets never hold the whole listing
	// in memory. An error returned by fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Delete removes the named object. Deleting an object that does not exist
	// is not an error, so a retried Delete is harmless.
	Delete(ctx context.Context, name string) error
}

// Info describes one stored object.
type Info struct {
	// Name is the object's full name within the container.
	Name string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is when the object was last written, as the store reports it
	// (the zero time when the store does not report one).
	ModTime time.Time
}

// PutOptions changes how Put stores an object. The zero value replaces any
// existing object.
type PutOptions struct {
	// IfNotExists makes Put fail with ErrExists when an object of that name
	// already exists, atomically where the store supports conditional writes.
	IfNotExists bool
	// ContentMD5, when set, is the MD5 of the body; the target sends it to
	// stores that verify it (S3 Content-MD5, Swift ETag) and checks it where the
	// store reports a digest. Targets that cannot use it ignore it; callers
	// need only compute it for targets that implement ContentMD5User.
	ContentMD5 []byte
	// RetainUntil, when not zero, asks the store to refuse deleting or
	// replacing the object before this time (S3 object lock, Azure blob
	// immutability policies). A target that can enforce retention
	// (RetentionEnforcer) sets it on the object; every other target ignores
	// it, so callers that need retention either check EnforcesRetention or
	// wrap the target with NewWriteOnce, which enforces it in the client.
	RetainUntil time.Time
	// RetentionMode is how strictly the store holds RetainUntil (zero:
	// RetentionGovernance when RetainUntil is set).
	RetentionMode RetentionMode
}

// RetentionMode is how strictly a store holds PutOptions.RetainUntil.
type RetentionMode string

const (
	// RetentionGovernance: users with a special permission may still
	// shorten the retention or delete the object (S3 GOVERNANCE, an Azure
	// "Unlocked" policy).
	RetentionGovernance RetentionMode = "governance"
	// RetentionCompliance: nobody, the account's root included, can delete
	// the object or shorten its retention before it ends (S3 COMPLIANCE, an
	// Azure "Locked" policy).
	RetentionCompliance RetentionMode = "compliance"
)

// Validate checks that m is empty or one of the known modes.
func (m RetentionMode) Validate() error {
	switch m {
	case "", RetentionGovernance, RetentionCompliance:
		return nil
	}
	return fmt.Errorf("retention mode %q: use %q or %q: %w", string(m), RetentionGovernance, RetentionCompliance, ErrInvalidArgument)
}

// RetentionEnforcer is implemented by targets that can set
// PutOptions.RetainUntil on the objects they store, so that the store itself
// refuses to delete or replace them before then.
type RetentionEnforcer interface {
	// EnforcesRetention reports whether the target, as configured, sets
	// RetainUntil on the store (an S3 bucket with object lock, say).
	EnforcesRetention() bool
}

// EnforcesRetention reports whether t, or the target it decorates, makes the
// store itself hold PutOptions.RetainUntil.
func EnforcesRetention(t Target) bool {
	e, ok := As[RetentionEnforcer](t)
	return ok && e.EnforcesRetention()
}

// ContentMD5User is implemented by targets that use PutOptions.ContentMD5.
// Hashing every stored object a second time costs as much as a fifth of a
// backup's CPU, so callers skip it for targets that would ignore the result.
type ContentMD5User interface {
	UsesContentMD5() bool
}

// UsesContentMD5 reports whether t, or the target it decorates, uses
// PutOptions.ContentMD5.
func UsesContentMD5(t Target) bool {
	u, ok := As[ContentMD5User](t)
	return ok && u.UsesContentMD5()
}

// Wrapper is implemented by decorators so that callers can reach the target
// they wrap (for example to find the storage layout of the innermost target).
type Wrapper interface {
	// Unwrap returns the wrapped target.
	Unwrap() Target
}

// As walks the chain of Wrapper decorators from t inwards and reports the
// first target that is of type T.
func As[T any](t Target) (T, bool) {
	for t != nil {
		if v, ok := t.(T); ok {
			return v, true
		}
		w, ok := t.(Wrapper)
		if !ok {
			break
		}
		t = w.Unwrap()
	}
	var zero T
	return zero, false
}

// Closer is implemented by targets that hold resources (connections, handles)
// which must be released when the target is no longer used.
type Closer interface {
	Close() error
}
