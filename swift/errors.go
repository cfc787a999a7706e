package swift

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	goswift "github.com/ncw/swift/v2"

	"github.com/chunkback/chunkback/target"
)

// ErrChecksum is wrapped by the errors of operations that found data
// altered: a PUT whose ETag is not the MD5 of what was sent (or whose data
// did not match PutOptions.ContentMD5, HTTP 422), or a whole-object read whose
// MD5 is not the object's ETag. Such a Put never leaves the altered object
// behind. The retry decorator retries these failures (see
// Config.RetryPolicy): corruption on the way is transient.
var ErrChecksum = errors.New("checksum mismatch")

// reply records the status and Retry-After header of the last HTTP response
// of one operation: the SDK's errors keep the status but not the headers.
type reply struct {
	cancel context.CancelFunc // ends the operation's requests (SDK timeouts)

	mu         sync.Mutex
	code       int
	retryAfter string
}

type replyKey struct{}

// withReply returns a context that records the replies of one operation and
// can be cancelled by the SDK's own timeouts.
func withReply(ctx context.Context) (context.Context, *reply) {
	ctx, cancel := context.WithCancel(ctx)
	r := &reply{cancel: cancel}
	return context.WithValue(ctx, replyKey{}, r), r
}

func (r *reply) last() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.code, r.retryAfter
}

// recorder is the HTTP transport of the SDK's connection: it records each
// response in the operation's reply, and lets the SDK abort a request on its
// timeouts (the SDK calls CancelRequest, which http.Transport has deprecated
// for requests with a context) by cancelling the operation's context.
type recorder struct {
	base *http.Transport
}

// smallBody is the size below which a request does not wait for
// "100 Continue" before sending its body: the SDK asks for it on every
// upload, which saves sending large bodies a server refuses, but a small
// body costs less than the wait (radosgw never answers it for a large
// object's manifest, which then waits for the transport's timeout).
const smallBody = 64 << 10

// RoundTrip implements http.RoundTripper.
func (rt recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Expect") != "" && req.ContentLength >= 0 && req.ContentLength < smallBody ||
		req.URL.Query().Get("multipart-manifest") == "put" {
		req = req.Clone(req.Context())
		req.Header.Del("Expect")
	}
	resp, err := rt.base.RoundTrip(req)
	if err == nil {
		if r, ok := req.Context().Value(replyKey{}).(*reply); ok {
			r.mu.Lock()
			r.code, r.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			r.mu.Unlock()
		}
	}
	return resp, err
}

// CancelRequest is called by the SDK when a request times out: it ends the
// operation's context, which aborts the request.
func (rt recorder) CancelRequest(req *http.Request) {
	if r, ok := req.Context().Value(replyKey{}).(*reply); ok {
		r.cancel()
	}
}

// CloseIdleConnections is called by the SDK after (re)authenticating.
func (rt recorder) CloseIdleConnections() { rt.base.CloseIdleConnections() }

// statusOf returns the HTTP status of an SDK error, or 0.
func statusOf(err error) int {
	var se *goswift.Error
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// classify turns an error of the SDK into one of the target package's: a
// *target.StatusError for HTTP failures (so the retry decorator sees the
// status and Retry-After), the context's error when ctx ended, and hints
// naming the credential to check for 401 and 403. rec may be nil.
func (t *Target) classify(ctx context.Context, op, name string, err error, rec *reply) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("swift: %s %q: %w (%v)", op, name, cerr, err)
	}
	code := statusOf(err)
	if code == 0 {
		if isCertificateError(err) {
			// Retrying cannot make the certificate trusted.
			return fmt.Errorf("swift: %s %q: %w: the server's TLS certificate is not trusted: give its CA in Config.CAFile (OS_CACERT), or (tests only) set Config.Insecure: %w",
				op, name, err, target.ErrPermanent)
		}
		return fmt.Errorf("swift: %s %q: %w", op, name, err)
	}
	se := &target.StatusError{Op: op, Name: name, Code: code, Err: err}
	if rec != nil {
		if c, ra := rec.last(); c == code {
			se.RetryAfter = target.ParseRetryAfter(ra, time.Now())
		}
	}
	switch code {
	case http.StatusUnauthorized:
		se.Err = fmt.Errorf("%s: %w", t.hint401(), err)
	case http.StatusForbidden:
		se.Err = fmt.Errorf("%s: %w", t.hint403(), err)
	case http.StatusBadRequest:
		se.Err = fmt.Errorf("%w: %w", target.ErrInvalidArgument, err)
	case http.StatusUnprocessableEntity:
		se.Err = fmt.Errorf("%w: the server's MD5 of the data it received is not the ETag sent with it (the data was altered on the way, or PutOptions.ContentMD5 is wrong): %w", ErrChecksum, err)
	case http.StatusRequestTimeout:
		if errors.Is(err, goswift.TimeoutError) {
			se.Err = fmt.Errorf("no reply within Config.ConnectTimeout (%v) or no data within Config.Timeout (%v): %w", t.cfg.ConnectTimeout, t.cfg.Timeout, err)
		}
	}
	return fmt.Errorf("swift: %w", se)
}

// isCertificateError reports whether err is a failure to verify the
// server's TLS certificate.
func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		ierr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &ierr)
}

// hint401 says which credential to check when Swift refuses authentication.
func (t *Target) hint401() string {
	if t.cfg.AuthStrategy == AuthPerUser {
		return "the token was refused (expired, revoked, or not for this account): check Config.Token (OS_AUTH_TOKEN) and Config.StorageURL (OS_STORAGE_URL)"
	}
	switch t.cfg.AuthVersion {
	case 2:
		return "the credentials were refused at " + redactURL(t.cfg.AuthURL) + ": check Config.User, Config.Key and Config.Tenant (OS_USERNAME, OS_PASSWORD, OS_TENANT_NAME)"
	case 3:
		return "the credentials were refused at " + redactURL(t.cfg.AuthURL) + ": check Config.User, Config.Key, Config.UserDomain, Config.Project and Config.ProjectDomain " +
			"(OS_USERNAME, OS_PASSWORD, OS_USER_DOMAIN_NAME, OS_PROJECT_NAME, OS_PROJECT_DOMAIN_NAME)"
	}
	return "the credentials were refused at " + redactURL(t.cfg.AuthURL) + ": check Config.User (\"account:user\") and Config.Key (OS_USERNAME, OS_PASSWORD)"
}

// hint403 says what to check when Swift forbids an operation.
func (t *Target) hint403() string {
	who := "Config.User"
	if t.cfg.AuthStrategy == AuthPerUser {
		who = "the user of Config.Token"
	}
	return fmt.Sprintf("%s may not use container %q or %q: check the user's roles (e.g. admin or member of the account) or the containers' ACLs",
		who, t.cfg.Container, t.cfg.SegmentContainer)
}
