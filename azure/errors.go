package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/chunkback/chunkback/target"
)

// authKind is how a Target authenticates, for the hints of its errors.
type authKind int

const (
	authConnectionString authKind = iota
	authSharedKey
	authSAS
	authToken
)

// serviceError is a concise, secret-free form of an error answer of the
// Blob service: its status, error code and message. It wraps the SDK's
// *azcore.ResponseError for errors.As, but does not print it, because that
// dumps the whole answer (Azure's AuthenticationErrorDetail included).
type serviceError struct {
	msg string
	err *azcore.ResponseError
}

func (e *serviceError) Error() string { return e.msg }
func (e *serviceError) Unwrap() error { return e.err }

// nonRetriable is how azcore marks errors a retry cannot fix; token
// acquisition failures among them.
type nonRetriable interface {
	error
	NonRetriable()
}

// errBlocksDiscarded is the unclassified (so retried) error of a commit
// whose staged blocks a concurrent writer of the same name discarded.
var errBlocksDiscarded = errors.New("the staged blocks were discarded, most likely by a concurrent writer of the same object; writing it again will work")

var messageRE = regexp.MustCompile(`<Message>([^<\n]*)`)

// describe returns the service error re as a serviceError.
func describe(re *azcore.ResponseError) *serviceError {
	msg := fmt.Sprintf("HTTP %d", re.StatusCode)
	if re.ErrorCode != "" {
		msg += " " + re.ErrorCode
	}
	// Error() holds the answer's body, buffered by azcore; keep the first
	// line of its Message.
	if m := messageRE.FindStringSubmatch(re.Error()); m != nil {
		msg += ": " + strings.TrimSpace(m[1])
	}
	return &serviceError{msg: msg, err: re}
}

// retryAfter reads how long the service asked the client to wait.
func retryAfter(h http.Header) time.Duration {
	for _, k := range []string{"x-ms-retry-after-ms", "retry-after-ms"} {
		if ms, err := strconv.Atoi(h.Get(k)); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return target.ParseRetryAfter(h.Get("Retry-After"), time.Now())
}

// errOptions qualify how fail classifies an error.
type errOptions struct {
	// ifNotExists: a 409 or 412 answer means the object exists.
	ifNotExists bool
}

// fail turns an error of the SDK into the error of operation op on object
// name: a target sentinel where one fits, a *target.StatusError for the
// other HTTP answers, the context's error when it ended, and nothing that
// could hold a secret (request URLs lose their query, which may be a SAS).
func (t *Target) fail(ctx context.Context, op, name string, err error, o errOptions) error {
	if err == nil {
		return nil
	}
	redactURLs(err)
	prefix := fmt.Sprintf("azure: %s %q", op, name)
	if name == "" {
		prefix = "azure: " + op
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		return fmt.Errorf("%s: %w (%v)", prefix, cerr, err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var nr nonRetriable
		if t.auth == authToken && errors.As(err, &nr) {
			return fmt.Errorf("%s: %s could not get a Microsoft Entra ID token: %v: %w", prefix, t.credName, err, target.ErrPermission)
		}
		return fmt.Errorf("%s: %w", prefix, err)
	}
	se := describe(re)
	code := bloberror.Code(re.ErrorCode)
	switch {
	case code == bloberror.ContainerNotFound:
		return fmt.Errorf("%s: container %q does not exist in storage account %s (%v): create it, or set Config.Create (--create for the CLI): %w",
			prefix, t.container, t.accountForMessages(), se, target.ErrNotFound)
	case re.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %w (%v)", prefix, target.ErrNotFound, se)
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden ||
		code == bloberror.AuthenticationFailed || code == bloberror.AuthorizationFailure:
		return fmt.Errorf("%s: the Blob service refused the credentials (%v): %s: %w", prefix, se, t.credentialHint(), target.ErrPermission)
	case o.ifNotExists && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusPreconditionFailed) &&
		(code == bloberror.BlobAlreadyExists || code == bloberror.ConditionNotMet || code == ""):
		return fmt.Errorf("%s: %w (%v)", prefix, target.ErrExists, se)
	case code == bloberror.BlobArchived:
		return fmt.Errorf("%s: the object is in the Archive tier (%v): rehydrate it (set its tier to Hot or Cool) and wait for that to finish before reading it: %w", prefix, se, target.ErrPermanent)
	case code == bloberror.InvalidRange || re.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s: %w (%v)", prefix, target.ErrInvalidRange, se)
	case code == bloberror.MD5Mismatch:
		// We hashed what we sent, so the bytes changed on the way: a new
		// attempt should go through.
		return fmt.Errorf("%s: the service received other bytes than were sent (%v)", prefix, se)
	case code == bloberror.InvalidBlockList:
		return fmt.Errorf("%s: %w (%v)", prefix, errBlocksDiscarded, se)
	case code == bloberror.ContainerBeingDeleted:
		return fmt.Errorf("%s: container %q is being deleted (%v); try again once it is gone", prefix, t.container, se)
	case re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusPreconditionFailed:
		// Not a conditional write of ours (a lease, say): not "exists",
		// which a StatusError with this code would claim to be.
		return fmt.Errorf("%s: %v: %w", prefix, se, target.ErrPermanent)
	}
	var ra time.Duration
	if re.RawResponse != nil {
		ra = retryAfter(re.RawResponse.Header)
	}
	return fmt.Errorf("azure: %w", &target.StatusError{Op: op, Name: name, Code: re.StatusCode, RetryAfter: ra, Err: se})
}

// credentialHint says which credential to check after the service refused
// it; it never quotes the credential.
func (t *Target) credentialHint() string {
	switch t.auth {
	case authConnectionString:
		return "check the AccountKey or SharedAccessSignature of the connection string (Config.ConnectionString; AZURE_STORAGE_CONNECTION_STRING for the CLI)"
	case authSharedKey:
		return fmt.Sprintf("check the account key of storage account %q (Config.AccountKey; AZURE_STORAGE_KEY for the CLI)", t.account)
	case authSAS:
		return fmt.Sprintf("check the SAS token of storage account %q (Config.SASToken; AZURE_STORAGE_SAS_TOKEN for the CLI): its signature, its expiry (se=) and its permissions (sp= needs racwdl)", t.account)
	}
	return fmt.Sprintf("check that %s has the role Storage Blob Data Contributor on container %q of storage account %q", t.credName, t.container, t.account)
}

func (t *Target) accountForMessages() string {
	if t.account == "" {
		return "(of the connection string)"
	}
	return strconv.Quote(t.account)
}

// redactURLs drops the query of every *url.Error in err's chain: the HTTP
// client prints the request URL, and a SAS lives in its query.
func redactURLs(err error) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if ue, ok := e.(*url.Error); ok {
			if u, perr := url.Parse(ue.URL); perr == nil && u.RawQuery != "" {
				u.RawQuery = ""
				ue.URL = u.String()
			} else if perr != nil {
				ue.URL = "(URL not shown)"
			}
		}
	}
}
