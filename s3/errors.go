package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/chunkback/chunkback/target"
)

// apiError is the short form of an SDK error that carries an S3 error code:
// what is wrong in our words, then the store's code and message. It keeps
// the SDK's error in its chain for errors.As.
type apiError struct {
	hint string
	code string
	msg  string
	err  error
}

func (e *apiError) Error() string {
	s := e.hint
	if e.code != "" || e.msg != "" {
		if s != "" {
			s += ": "
		}
		s += "the store says " + e.code
		if e.msg != "" {
			s += " (" + e.msg + ")"
		}
	}
	if s == "" {
		return e.err.Error()
	}
	return s
}

func (e *apiError) Unwrap() error { return e.err }

// fail turns an error of the SDK into the target's error for the operation
// op on the object name ("" for the bucket itself): sentinel errors of
// package target, a *target.StatusError for every HTTP failure (with the
// Retry-After delay the store asked for), and messages that say which
// setting to check, without credentials.
func (t *Target) fail(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	prefix := fmt.Sprintf("s3: %s %q", op, name)
	if name == "" {
		prefix = fmt.Sprintf("s3: %s (bucket %s)", op, t.cfg.Bucket)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("%s: %w", prefix, ctxErr)
		}
		return fmt.Errorf("%s: %w: %w", prefix, ctxErr, err)
	}
	if errors.Is(err, errShortBody) || errors.Is(err, errMD5Mismatch) {
		return fmt.Errorf("%s: %w: %w", prefix, target.ErrInvalidArgument, err)
	}
	if tlsErr := certificateError(err); tlsErr != nil {
		return fmt.Errorf("%s: TLS with %s failed (%v): give the CA that signed it in Config.CABundle "+
			"(AWS_CA_BUNDLE or ?ca_bundle= for the CLI), or turn verification off with Config.InsecureSkipVerify: %w",
			prefix, t.endpointName(), tlsErr, target.ErrPermanent)
	}

	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.HTTPStatusCode() == 0 {
		return fmt.Errorf("%s: %w", prefix, err) // no reply, a network failure: retried
	}
	status := re.HTTPStatusCode()
	ae := &apiError{err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		ae.code, ae.msg = api.ErrorCode(), api.ErrorMessage()
		if ae.msg == "UnknownError" { // smithy's stand-in when the store sent no message
			ae.msg = ""
		}
	}
	var sentinel error
	switch ae.code {
	case "InvalidAccessKeyId":
		ae.hint = "the store does not know the access key ID: check " + t.credentials("access key ID")
	case "SignatureDoesNotMatch":
		ae.hint = "the request signature does not match: check " + t.credentials("secret key") +
			" and that the region (Config.Region) is the store's"
	case "AccessDenied", "AllAccessDisabled", "AccountProblem":
		ae.hint = fmt.Sprintf("access denied: check that %s may %s in bucket %s", t.credentials("credentials"), op, t.cfg.Bucket)
	case "ExpiredToken", "TokenRefreshRequired", "InvalidToken":
		ae.hint = "the session token is expired or invalid: renew it " + t.credentials("session token")
	case "RequestTimeTooSkewed":
		ae.hint = "the clocks of this machine and the store differ too much: fix the time (NTP)"
		sentinel = target.ErrPermanent
	case "NoSuchBucket":
		ae.hint = fmt.Sprintf("bucket %s does not exist at %s: create it, or set Config.CreateBucket (--create in the CLI)", t.cfg.Bucket, t.endpointName())
	case "BadDigest", "InvalidDigest":
		ae.hint = "the store found a different MD5 for the body than the Content-MD5 sent: the data changed or was damaged on the way"
	case "SlowDown", "RequestLimitExceeded", "TooManyRequests", "Throttling":
		ae.hint = "the store asks to slow down"
		sentinel = target.ErrThrottled
	case "InvalidStorageClass":
		ae.hint = fmt.Sprintf("the store refuses storage class %q: check Config.StorageClass (?storage_class=)", t.cfg.StorageClass)
	case "XAmzContentSHA256Mismatch", "InvalidRequest", "InvalidArgument", "NotImplemented", "InvalidDigestTrailer":
		if m := strings.ToLower(ae.msg); t.cfg.RequestChecksum == ChecksumWhenSupported &&
			(ae.code == "XAmzContentSHA256Mismatch" || strings.Contains(m, "checksum") || strings.Contains(m, "trailer") || strings.Contains(m, "x-amz-")) {
			ae.hint = "the store may not support the SDK's request checksums: try Config.RequestChecksum = when_required (?checksum=when_required)"
		}
	}
	if ae.hint == "" {
		switch status {
		case http.StatusUnauthorized, http.StatusForbidden:
			// A HEAD reply has no body, so no code to tell which credential.
			ae.hint = fmt.Sprintf("the store refused the credentials or their permission to %s in bucket %s: check %s",
				op, t.cfg.Bucket, t.credentials("credentials"))
		case http.StatusTooManyRequests:
			ae.hint = "the store asks to slow down"
		}
	}
	se := &target.StatusError{Op: op, Name: name, Code: status, Err: ae}
	if name == "" {
		se.Op, se.Name = op+" bucket", t.cfg.Bucket
	}
	if ra := re.Response.Header.Get("Retry-After"); ra != "" {
		se.RetryAfter = target.ParseRetryAfter(ra, time.Now())
	}
	if sentinel != nil {
		return fmt.Errorf("s3: %w: %w", se, sentinel)
	}
	return fmt.Errorf("s3: %w", se)
}

// credentials names the settings that hold the credential what ("access
// key ID", "secret key", "session token" or "credentials"), for messages.
func (t *Target) credentials(what string) string {
	if t.cfg.AccessKey == "" {
		return "the " + what + " found by the SDK's default credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"AWS_PROFILE and the shared credentials file, a web identity token, the instance role)"
	}
	switch what {
	case "access key ID":
		return "the access key ID (Config.AccessKey; AWS_ACCESS_KEY_ID for the CLI)"
	case "secret key":
		return "the secret key (Config.SecretKey; AWS_SECRET_ACCESS_KEY for the CLI)"
	case "session token":
		return "the session token (Config.SessionToken; AWS_SESSION_TOKEN for the CLI)"
	}
	return "the access key ID and secret key (Config.AccessKey and Config.SecretKey; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the CLI)"
}

// endpointName names the store for messages.
func (t *Target) endpointName() string {
	if t.cfg.Endpoint != "" {
		return redactURL(t.cfg.Endpoint)
	}
	return "AWS S3 (region " + t.region + ")"
}

// certificateError returns the certificate verification failure in err's
// chain, if any. Such failures are permanent: retrying cannot make a
// certificate trusted.
func certificateError(err error) error {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return ua
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return he
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		return ci
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		// net/http reports the latter as a bare string.
		return errors.New("the server does not speak TLS: is the endpoint http://?")
	}
	return nil
}
