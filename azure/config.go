package azure

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/chunkback/chunkback/target"
)

// Defaults of Config.
const (
	// DefaultBlockSize is the size of the blocks a large object is staged in.
	// 8 MiB blocks keep a Cinder-sized object (50 MiB) to seven requests and
	// the memory of a Put to (Concurrency+1) x 8 MiB for bodies that must be
	// buffered.
	DefaultBlockSize = 8 << 20
	// DefaultConcurrency is how many blocks of one object go up at once.
	DefaultConcurrency = 4
	// DefaultSinglePutThreshold is the largest object sent in one Put Blob
	// request. Above it objects are staged in blocks. 64 MiB sends Cinder's
	// 50 MiB objects in one request, which the service verifies against their
	// Content-MD5 without any hashing on the client.
	DefaultSinglePutThreshold = 64 << 20

	// DefaultMaxRetries, DefaultRetryDelay and DefaultMaxRetryDelay are the
	// Azure SDK's own retry defaults, applied by target.NewRetry (see
	// Config.RetryPolicy) rather than by the SDK.
	DefaultMaxRetries    = 3
	DefaultRetryDelay    = 800 * time.Millisecond
	DefaultMaxRetryDelay = 60 * time.Second
)

// Limits of the Blob service on block blobs.
const (
	// MaxBlockSize is the largest block Azure accepts (4000 MiB).
	MaxBlockSize = 4000 << 20
	// MaxSinglePutSize is the largest blob one Put Blob request may carry (5000 MiB).
	MaxSinglePutSize = 5000 << 20
	// MaxBlocks is the most blocks one blob may have.
	MaxBlocks = 50000
	// minBlockSize keeps a misconfiguration from turning a backup into
	// millions of tiny requests.
	minBlockSize   = 64 << 10
	maxConcurrency = 256
)

// Config configures a Target. Exactly one way to authenticate is used:
//
//   - ConnectionString (with an AccountKey or a SharedAccessSignature, as the
//     portal gives it, or UseDevelopmentStorage=true for Azurite), or
//   - AccountName + AccountKey (Shared Key), or
//   - AccountName (or Endpoint) + SASToken, or
//   - a Microsoft Entra ID token: Credential when set, else a managed
//     identity when ManagedIdentity is set, else DefaultAzureCredential
//     (environment, workload identity, managed identity, Azure CLI, ...).
//     Tokens are only sent over https.
//
// Every zero field takes its documented default.
type Config struct {
	// Endpoint is the storage account's blob service URL. Default:
	// https://<AccountName>.blob.core.windows.net (or the connection
	// string's BlobEndpoint). For Azurite and other emulators, which put
	// the account in the path: http://127.0.0.1:10000/devstoreaccount1.
	// It holds no container and no query string (a SAS goes in SASToken).
	Endpoint string
	// AccountName is the storage account. It may be left out when Endpoint
	// or ConnectionString names the account.
	AccountName string
	// Container is the blob container (required): 3 to 63 lower-case
	// letters, digits and single hyphens, starting with a letter or digit.
	Container string
	// Prefix, when set, is put before every object name, followed by '/'
	// ("ci" stores object "x" as blob "ci/x"). It follows the rules of
	// object names (target.CheckName); a trailing '/' is dropped.
	Prefix string

	// ConnectionString is a storage account connection string. It must not
	// be combined with the other credential fields or Endpoint.
	ConnectionString string
	// AccountKey is the base64 account key for Shared Key authentication.
	AccountKey string
	// SASToken is a shared access signature (account or container SAS), with
	// or without its leading '?'. It needs the permissions read, add,
	// create, write, delete and list (sp=racwdl).
	SASToken string
	// Credential, when set, authenticates with Microsoft Entra ID tokens
	// from it (any azidentity credential: workload identity, client
	// secret, ...). The identity needs the role Storage Blob Data
	// Contributor on the container.
	Credential azcore.TokenCredential
	// ManagedIdentity authenticates as the managed identity of the Azure
	// host: the system-assigned one, or the user-assigned one whose client
	// ID is ManagedIdentityClientID.
	ManagedIdentity         bool
	ManagedIdentityClientID string

	// Create makes New create the container when it does not exist. By
	// default a missing container is an error, so that a typo is not
	// silently filled with backups.
	Create bool

	// AccessTier is the tier new objects are stored in: "Hot", "Cool",
	// "Cold" or "Archive" (case-insensitive). Default: the account's
	// default tier. Objects in Archive cannot be read until rehydrated, so
	// restores from it fail until then.
	AccessTier string

	// Immutability sets a blob immutability policy on every object stored
	// with PutOptions.RetainUntil (write-once backups), so that the Blob
	// service itself refuses to delete it before then. The container needs
	// version-level immutability support (WORM) enabled. Default off.
	Immutability bool

	// BlockSize is the size of the blocks objects larger than
	// SinglePutThreshold are staged in (default DefaultBlockSize, 8 MiB;
	// 64 KiB to 4000 MiB). It grows on its own when an object would need
	// more than MaxBlocks blocks.
	BlockSize int64
	// Concurrency is how many blocks of one object are staged at once
	// (default DefaultConcurrency, 4). A Put whose body is not a
	// *bytes.Reader buffers at most Concurrency+1 blocks.
	Concurrency int
	// SinglePutThreshold is the largest object sent in one Put Blob request
	// (default DefaultSinglePutThreshold, 64 MiB; at most MaxSinglePutSize).
	SinglePutThreshold int64

	// MaxRetries is how many times target.NewRetry retries a failed
	// operation (default DefaultMaxRetries, 3; -1 for none). The SDK's own
	// retries are always off: RetryPolicy maps these fields for NewRetry,
	// which classifies errors the same way for every target.
	MaxRetries int
	// RetryDelay is the base of the exponential backoff between retries
	// (default DefaultRetryDelay, 800ms); MaxRetryDelay caps it (default
	// DefaultMaxRetryDelay, 60s). A Retry-After the service sends wins.
	RetryDelay, MaxRetryDelay time.Duration
	// RetryStatusCodes are the HTTP statuses that are retried (default:
	// 408, 429, 500, 502, 503 and 504, as the Azure SDK).
	RetryStatusCodes []int
	// TryTimeout bounds one HTTP request (default: no bound besides the
	// context's). A request that runs out of it is retried.
	TryTimeout time.Duration

	// HTTPClient, when set, sends the requests (a proxy, a custom CA, a
	// test transport). Default: the Azure SDK's HTTP client.
	HTTPClient *http.Client
}

// Validate reports the first field of c that New cannot accept, naming the
// field and how to fix it. The error wraps target.ErrInvalidArgument. No
// error contains a secret.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("azure: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	if err := checkContainerName(c.Container); err != nil {
		return bad("Container %s", err)
	}
	if p := strings.TrimSuffix(c.Prefix, "/"); p != "" {
		if err := target.CheckName(p); err != nil {
			return bad("Prefix %q is not usable: %v", c.Prefix, err)
		}
	}
	if c.AccountName != "" {
		if err := checkAccountName(c.AccountName); err != nil {
			return bad("AccountName %s", err)
		}
	}
	if c.Endpoint != "" {
		if _, _, err := parseEndpoint(c.Endpoint); err != nil {
			return bad("Endpoint %s", err)
		}
	}
	if _, err := c.account(); err != nil {
		return err
	}
	if err := c.validateCredentials(); err != nil {
		return err
	}
	if _, err := parseTier(c.AccessTier); err != nil {
		return bad("AccessTier %s", err)
	}
	switch {
	case c.BlockSize != 0 && (c.BlockSize < minBlockSize || c.BlockSize > MaxBlockSize):
		return bad("BlockSize is %d; use 0 for the default (%d) or a size from %d (64 KiB) to %d (4000 MiB)", c.BlockSize, DefaultBlockSize, minBlockSize, int64(MaxBlockSize))
	case c.Concurrency < 0 || c.Concurrency > maxConcurrency:
		return bad("Concurrency is %d; use 0 for the default (%d) or 1 to %d", c.Concurrency, DefaultConcurrency, maxConcurrency)
	case c.SinglePutThreshold < 0 || c.SinglePutThreshold > MaxSinglePutSize:
		return bad("SinglePutThreshold is %d; use 0 for the default (%d) or 1 to %d (5000 MiB)", c.SinglePutThreshold, DefaultSinglePutThreshold, int64(MaxSinglePutSize))
	case c.MaxRetries < -1:
		return bad("MaxRetries is %d; use 0 for the default (%d), -1 for no retries, or more", c.MaxRetries, DefaultMaxRetries)
	case c.RetryDelay < 0:
		return bad("RetryDelay is %v; use 0 for the default (%v) or a positive duration", c.RetryDelay, DefaultRetryDelay)
	case c.MaxRetryDelay < 0:
		return bad("MaxRetryDelay is %v; use 0 for the default (%v) or a positive duration", c.MaxRetryDelay, DefaultMaxRetryDelay)
	case c.TryTimeout < 0:
		return bad("TryTimeout is %v; use 0 for none or a positive duration", c.TryTimeout)
	}
	if err := c.RetryPolicy().Validate(); err != nil {
		return fmt.Errorf("azure: Config retry fields (MaxRetries, RetryDelay, MaxRetryDelay, RetryStatusCodes): %w", err)
	}
	return nil
}

// validateCredentials checks that c names one way to authenticate, and that
// its parts are well formed, without ever quoting a secret.
func (c Config) validateCredentials() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("azure: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	var secrets []string
	if c.ConnectionString != "" {
		secrets = append(secrets, "ConnectionString")
	}
	if c.AccountKey != "" {
		secrets = append(secrets, "AccountKey")
	}
	if c.SASToken != "" {
		secrets = append(secrets, "SASToken")
	}
	if c.Credential != nil {
		secrets = append(secrets, "Credential")
	}
	if c.ManagedIdentity {
		secrets = append(secrets, "ManagedIdentity")
	}
	if len(secrets) > 1 {
		return bad("%s are all set; set only one way to authenticate", strings.Join(secrets, " and "))
	}
	if c.ManagedIdentityClientID != "" && !c.ManagedIdentity {
		return bad("ManagedIdentityClientID is set without ManagedIdentity; set ManagedIdentity too")
	}
	switch {
	case c.ConnectionString != "":
		if c.Endpoint != "" || c.AccountName != "" {
			return bad("ConnectionString is set together with Endpoint or AccountName; the connection string names the account and its endpoint, so leave them empty")
		}
		if !strings.Contains(c.ConnectionString, "=") {
			return bad("ConnectionString is not a connection string (KEY=value;KEY=value...; copy it from the storage account's Access keys page)")
		}
	case c.AccountKey != "":
		if _, err := base64.StdEncoding.DecodeString(c.AccountKey); err != nil {
			return bad("AccountKey is not base64 (copy key1 or key2 of the storage account's Access keys page)")
		}
	case c.SASToken != "":
		q, err := url.ParseQuery(strings.TrimPrefix(c.SASToken, "?"))
		if err != nil || q.Get("sig") == "" {
			return bad("SASToken is not a shared access signature (a query string such as sv=...&sp=racwdl&sig=..., without the URL before it)")
		}
	default: // a token credential
		ep, err := c.endpoint()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(ep, "https://") {
			return bad("Endpoint %q is not https, and Microsoft Entra ID tokens (Credential, ManagedIdentity, DefaultAzureCredential) are only sent over https; use an https endpoint, or AccountKey, SASToken or ConnectionString", ep)
		}
	}
	return nil
}

// account returns the storage account's name, from AccountName or Endpoint.
// It is empty only with a connection string.
func (c Config) account() (string, error) {
	if c.ConnectionString != "" {
		return "", nil
	}
	var fromURL string
	if c.Endpoint != "" {
		var err error
		if fromURL, _, err = parseEndpoint(c.Endpoint); err != nil {
			return "", fmt.Errorf("azure: Config.Endpoint %s: %w", err, target.ErrInvalidArgument)
		}
	}
	switch {
	case c.AccountName == "" && fromURL == "":
		return "", fmt.Errorf("azure: Config.AccountName is empty: name the storage account (or give Endpoint or ConnectionString): %w", target.ErrInvalidArgument)
	case c.AccountName == "":
		return fromURL, nil
	case fromURL != "" && fromURL != c.AccountName:
		return "", fmt.Errorf("azure: Config.AccountName %q differs from the account %q of Endpoint %q; make them agree: %w", c.AccountName, fromURL, c.Endpoint, target.ErrInvalidArgument)
	}
	return c.AccountName, nil
}

// endpoint returns the blob service URL, without a trailing '/'.
func (c Config) endpoint() (string, error) {
	if c.Endpoint != "" {
		return strings.TrimSuffix(c.Endpoint, "/"), nil
	}
	account, err := c.account()
	if err != nil {
		return "", err
	}
	return "https://" + account + ".blob.core.windows.net", nil
}

// RetryPolicy returns the retry policy for target.NewRetry that the retry
// fields of c ask for, with the Azure SDK's defaults for zero fields.
func (c Config) RetryPolicy() target.RetryPolicy {
	p := target.RetryPolicy{
		MaxAttempts:      DefaultMaxRetries + 1,
		BaseDelay:        DefaultRetryDelay,
		MaxDelay:         DefaultMaxRetryDelay,
		RetryStatusCodes: c.RetryStatusCodes,
	}
	switch {
	case c.MaxRetries < 0:
		p.MaxAttempts = 1
	case c.MaxRetries > 0:
		p.MaxAttempts = c.MaxRetries + 1
	}
	if c.RetryDelay > 0 {
		p.BaseDelay = c.RetryDelay
	}
	if c.MaxRetryDelay > 0 {
		p.MaxDelay = c.MaxRetryDelay
	}
	return p
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.SinglePutThreshold == 0 {
		c.SinglePutThreshold = DefaultSinglePutThreshold
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	return c
}

// checkContainerName applies Azure's rules for container names.
func checkContainerName(name string) error {
	const rules = "3 to 63 lower-case letters, digits and hyphens, starting with a letter or digit, without two hyphens in a row"
	switch {
	case name == "":
		return fmt.Errorf("is empty; name the blob container (%s)", rules)
	case len(name) < 3 || len(name) > 63:
		return fmt.Errorf("%q is %d characters long; use %s", name, len(name), rules)
	case name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--"):
		return fmt.Errorf("%q has a hyphen at an end or two in a row; use %s", name, rules)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("%q holds %q; use %s", name, r, rules)
		}
	}
	return nil
}

// checkAccountName applies Azure's rules for storage account names.
func checkAccountName(name string) error {
	const rules = "3 to 24 lower-case letters and digits"
	if len(name) < 3 || len(name) > 24 {
		return fmt.Errorf("%q is %d characters long; use %s", name, len(name), rules)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return fmt.Errorf("%q holds %q; use %s", name, r, rules)
		}
	}
	return nil
}

// parseEndpoint returns the account a blob service URL names: its first
// path element when it has one (Azurite's http://host:port/<account>), else
// the first label of its host (https://<account>.blob.core.windows.net).
// pathStyle reports the first case.
func parseEndpoint(raw string) (account string, pathStyle bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("is not a URL; use https://<account>.blob.core.windows.net, or http://host:port/<account> for an emulator")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("%q is not an http(s) URL; use https://<account>.blob.core.windows.net, or http://host:port/<account> for an emulator", u.Redacted())
	case u.Host == "":
		return "", false, fmt.Errorf("%q has no host", u.Redacted())
	case u.RawQuery != "" || u.User != nil:
		// Never echo it: a query here is most likely a SAS.
		return "", false, fmt.Errorf("has a query string or user info; give a SAS in SASToken (or a connection string), not in the URL")
	case u.Fragment != "":
		return "", false, fmt.Errorf("%q has a #fragment; remove it", u.Redacted())
	}
	path := strings.Trim(u.Path, "/")
	if path != "" {
		if strings.Contains(path, "/") {
			return "", false, fmt.Errorf("%q has more than the account in its path; the container goes in Config.Container and the rest in Config.Prefix (see ParseURL)", u.Redacted())
		}
		if err := checkAccountName(path); err != nil {
			return "", false, fmt.Errorf("%q: the account in its path %v", u.Redacted(), err)
		}
		return path, true, nil
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return "", false, fmt.Errorf("%q names no account: an emulator's endpoint ends with the account (http://%s/devstoreaccount1)", u.Redacted(), u.Host)
	}
	label, _, _ := strings.Cut(host, ".")
	if err := checkAccountName(label); err != nil {
		return "", false, fmt.Errorf("%q: the account in its host %v", u.Redacted(), err)
	}
	return label, false, nil
}

// ParseURL splits a container URL, as CloudNativePG and the Azure tools
// write them, into a Config's Endpoint, AccountName, Container and Prefix:
//
//	https://<account>.blob.core.windows.net/<container>[/<prefix>]
//	http://<host>:<port>/<account>/<container>[/<prefix>]   (Azurite and other emulators)
//
// The account is taken from the host when the host has a ".blob." label (the
// public and sovereign clouds), and from the first path element otherwise.
// The URL must not carry a SAS (its query); set Config.SASToken instead. The
// returned Config has no credentials.
func ParseURL(raw string) (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("azure: container URL "+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("is not an http(s) URL; use https://<account>.blob.core.windows.net/<container>[/<prefix>] or http://host:port/<account>/<container>[/<prefix>]")
	}
	if u.RawQuery != "" || u.User != nil {
		return bad("%s://%s%s has a query string or user info; give a SAS in Config.SASToken, not in the URL", u.Scheme, u.Host, u.EscapedPath())
	}
	path := strings.Trim(u.Path, "/")
	var c Config
	if strings.Contains(u.Hostname(), ".blob.") {
		c.Endpoint = u.Scheme + "://" + u.Host
		c.AccountName, _, _ = strings.Cut(u.Hostname(), ".")
	} else {
		c.AccountName, path, _ = strings.Cut(path, "/")
		c.Endpoint = u.Scheme + "://" + u.Host + "/" + c.AccountName
	}
	c.Container, c.Prefix, _ = strings.Cut(path, "/")
	if c.Container == "" {
		return bad("%s names no container; use https://<account>.blob.core.windows.net/<container>[/<prefix>] or http://host:port/<account>/<container>[/<prefix>]", u.Redacted())
	}
	if err := checkAccountName(c.AccountName); err != nil {
		return bad("%s: the account %v", u.Redacted(), err)
	}
	if err := checkContainerName(c.Container); err != nil {
		return bad("%s: the container %v", u.Redacted(), err)
	}
	return c, nil
}

// parseTier maps an AccessTier value onto the SDK's tier; nil means the
// account's default.
func parseTier(s string) (*blob.AccessTier, error) {
	if s == "" {
		return nil, nil
	}
	for _, t := range []blob.AccessTier{blob.AccessTierHot, blob.AccessTierCool, blob.AccessTierCold, blob.AccessTierArchive} {
		if strings.EqualFold(s, string(t)) {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("is %q; use Hot, Cool, Cold or Archive, or leave it empty for the account's default tier", s)
}
