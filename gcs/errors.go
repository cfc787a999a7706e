package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/chunkback/chunkback/target"
)

// ErrChecksumMismatch is wrapped by the error of a Put whose object, as the
// server stored it, does not have the size, MD5 or CRC32C of the bytes that
// were sent (the object is deleted), and by the error of a read whose bytes
// do not match the object's CRC32C. The data was damaged in transit, so the
// error is not permanent: the retry decorator sends the object again.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// fail turns an error of the client library into the target's error for
// operation op on the object name (the prefix for "list"): context errors
// as they are, the library's not-exist errors as target.ErrNotFound, HTTP
// errors as a *target.StatusError (which errors.Is maps onto the target
// package's sentinels: 404 ErrNotFound, 412 ErrExists, 401 and 403
// ErrPermission, 429 ErrThrottled, 5xx ErrUnavailable) with the
// Retry-After the server sent, and refused credentials as ErrPermission
// naming what to check.
func (t *Target) fail(op, name string, err error) error {
	where := fmt.Sprintf("gcs: %s %q", op, name)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", where, err)
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("%s: %s: %w", where, t.bucketMissing(), target.ErrNotFound)
	case errors.Is(err, storage.ErrObjectNotExist):
		return fmt.Errorf("%s: %w: %w", where, target.ErrNotFound, err)
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		return authError(op, name, t.credential, err)
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return fmt.Errorf("%s: %w", where, err)
	}
	se := &target.StatusError{
		Op:         op,
		Name:       name,
		Code:       ge.Code,
		RetryAfter: target.ParseRetryAfter(ge.Header.Get("Retry-After"), time.Now()),
		Err:        err,
	}
	switch ge.Code {
	case http.StatusBadRequest:
		if op == "put" && isChecksumRefusal(ge) {
			// The server computed other checksums than the client sent: the
			// body was damaged on the way and the object was not stored.
			// Not a *target.StatusError, so that it is retried like other
			// damage in transit.
			return fmt.Errorf("gcs: put %q: the server refused the upload, its checksums differ from those of the bytes sent (%v): %w",
				name, err, ErrChecksumMismatch)
		}
	case http.StatusUnauthorized, http.StatusForbidden:
		if t.credential == "" {
			return fmt.Errorf("gcs: access to bucket %q denied: no credentials were sent (Config.Anonymous or %s is set): "+
				"give credentials, or allow unauthenticated access to the bucket: %w", t.cfg.Bucket, EmulatorHostEnv, se)
		}
		return fmt.Errorf("gcs: access to bucket %q denied: check that %s has a role such as roles/storage.objectAdmin on the bucket: %w",
			t.cfg.Bucket, t.credential, se)
	case http.StatusNotFound:
		// Objects that do not exist come as ErrObjectNotExist; a 404 on a
		// write or a listing is the bucket's.
		if op == "put" || op == "list" {
			return fmt.Errorf("gcs: %s: %w", t.bucketMissing(), se)
		}
	}
	return fmt.Errorf("gcs: %w", se)
}

// isChecksumRefusal reports whether a 400 answer to an upload says that the
// MD5 or CRC32C sent with it does not match the data ("Provided MD5 hash
// ... doesn't match calculated MD5 hash ...").
func isChecksumRefusal(ge *googleapi.Error) bool {
	msg := strings.ToLower(ge.Message + " " + ge.Body)
	return strings.Contains(msg, "match") && (strings.Contains(msg, "md5") || strings.Contains(msg, "crc32c"))
}

// bucketMissing says that the bucket does not exist and how to fix it.
func (t *Target) bucketMissing() string {
	return fmt.Sprintf("bucket %q does not exist: create it (gcloud storage buckets create gs://%s), "+
		"set Config.CreateBucket (--create in the CLI), or check the bucket name", t.cfg.Bucket, t.cfg.Bucket)
}

// isNetworkError reports whether err is a failure to reach a server, as
// opposed to an answer from it.
func isNetworkError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, e := range []error{io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
