package swift

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chunkback/chunkback/target"
)

// AuthStrategy says where the Swift credentials come from, as Cinder's
// backup_swift_auth does.
type AuthStrategy string

const (
	// AuthPerUser (Cinder's default): the host hands over a Keystone token and
	// the storage URL of the user's account (Config.Token, Config.StorageURL),
	// so backups land in the user's own account.
	AuthPerUser AuthStrategy = "per_user"
	// AuthSingleUser: the target authenticates itself at Config.AuthURL with
	// service credentials (Config.User, Config.Key, ...), and every backup
	// lands in that one account.
	AuthSingleUser AuthStrategy = "single_user"
)

// Endpoint interfaces of the Keystone service catalog (Config.Interface).
const (
	InterfacePublic   = "public"
	InterfaceInternal = "internal"
	InterfaceAdmin    = "admin"
)

// Defaults of Config, Cinder's where Cinder has the option.
const (
	// DefaultContainer is Cinder's backup_swift_container.
	DefaultContainer = "volumebackups"
	// DefaultAuthVersion is Cinder's backup_swift_auth_version.
	DefaultAuthVersion = 1
	// DefaultObjectSize is Cinder's backup_swift_object_size.
	DefaultObjectSize = 52428800
	// DefaultBlockSize is Cinder's backup_swift_block_size.
	DefaultBlockSize = 32768
	// DefaultRetryAttempts is Cinder's backup_swift_retry_attempts.
	DefaultRetryAttempts = 3
	// DefaultRetryBackoff is Cinder's backup_swift_retry_backoff.
	DefaultRetryBackoff = 2 * time.Second
	// DefaultMaxRetryBackoff caps the doubling backoff, as python-swiftclient's
	// max_backoff (which Cinder's driver uses) does.
	DefaultMaxRetryBackoff = 64 * time.Second
	// DefaultSegmentSize is the largest object Swift takes in one PUT
	// (its max_file_size, 5 GiB): larger objects are stored as static large
	// objects in segments of this size.
	DefaultSegmentSize = 5 << 30
	// DefaultConnectTimeout bounds the wait for a reply once a request is sent.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultTimeout bounds the wait for each piece of data read or written.
	DefaultTimeout = 60 * time.Second
	// MaxSegments is Swift's default max_manifest_segments: the most segments
	// one static large object may have.
	MaxSegments = 1000
	// minSegmentSize keeps segment counts and request overheads sane.
	minSegmentSize = 1 << 20
	// maxContainerLen is Swift's max_container_name_length.
	maxContainerLen = 256
)

// Config configures a swift Target. Zero fields take the documented defaults,
// which are Cinder's (cinder/backup/drivers/swift.py) where Cinder has the
// option; the Cinder option is named in each field's comment.
type Config struct {
	// AuthStrategy is AuthPerUser or AuthSingleUser (backup_swift_auth);
	// empty means AuthPerUser, Cinder's default.
	AuthStrategy AuthStrategy

	// Token is the user's auth token (per_user; Cinder takes it from the
	// request context). Never logged or put in errors.
	Token string
	// StorageURL is the user's account URL, http(s)://host/v1/AUTH_<project>
	// (per_user; backup_swift_url plus the project ID in Cinder).
	StorageURL string

	// AuthURL is the identity endpoint (single_user; backup_swift_auth_url):
	// .../auth/v1.0 for v1 (tempauth, radosgw), .../v2.0 or .../v3 for
	// Keystone.
	AuthURL string
	// AuthVersion is 1, 2 or 3 (backup_swift_auth_version); zero means 1.
	AuthVersion int
	// User and Key are the service credentials (backup_swift_user,
	// backup_swift_key); v1 users are "account:user". Key is never logged or
	// put in errors.
	User, Key string
	// Tenant is the v2 tenant name (backup_swift_tenant).
	Tenant string
	// Project is the v3 project name (backup_swift_project).
	Project string
	// UserDomain is the v3 domain of User (backup_swift_user_domain).
	UserDomain string
	// ProjectDomain is the v3 domain of Project (backup_swift_project_domain);
	// empty means UserDomain.
	ProjectDomain string
	// Region picks the object-store endpoint of that region from the v2/v3
	// service catalog (Cinder's os_region_name); empty means the first one.
	Region string
	// Interface picks the catalog endpoint: InterfacePublic (default, as
	// Cinder's swift_catalog_info publicURL), InterfaceInternal or
	// InterfaceAdmin.
	Interface string

	// Container holds the backups (backup_swift_container); default
	// DefaultContainer.
	Container string
	// Prefix, when set, puts every object under "Prefix/" in the container,
	// so several users of one container stay apart.
	Prefix string
	// CreateContainer makes New create a missing container (and Put the
	// segments container). Without it a missing container is an error, so a
	// typo does not silently start a new container. (Cinder always creates.)
	CreateContainer bool
	// StoragePolicy is the storage policy of containers the target creates
	// (backup_swift_create_storage_policy); empty means the cluster's
	// default. Existing containers keep theirs.
	StoragePolicy string

	// ObjectSize and BlockSize are the sizes the backup engine chunks with
	// (backup_swift_object_size, backup_swift_block_size), for hosts that
	// configure the engine from this Config (backup.BackupOptions.ObjectSize
	// and BlockSize); the target itself stores objects of any size. Defaults
	// DefaultObjectSize and DefaultBlockSize; ObjectSize must be a multiple
	// of BlockSize.
	ObjectSize int64
	BlockSize  int

	// RetryAttempts is how many times a failed operation is retried
	// (backup_swift_retry_attempts, counted as python-swiftclient counts
	// retries: 3 means up to 4 attempts); zero means DefaultRetryAttempts,
	// negative means no retry. See RetryPolicy.
	RetryAttempts int
	// RetryBackoff is the first wait between attempts, doubling up to
	// DefaultMaxRetryBackoff (backup_swift_retry_backoff); zero means
	// DefaultRetryBackoff.
	RetryBackoff time.Duration

	// CAFile is a PEM file of CA certificates to trust for HTTPS, instead of
	// the system's (backup_swift_ca_cert_file).
	CAFile string
	// Insecure turns off TLS certificate verification
	// (backup_swift_auth_insecure). For tests only.
	Insecure bool

	// SegmentSize is the largest object stored in one PUT: larger ones go up
	// as static large objects (SLO) in segments of SegmentSize bytes (the
	// last one shorter), stored in SegmentContainer. Default
	// DefaultSegmentSize (5 GiB, Swift's limit); at least 1 MiB, and an
	// object may have at most MaxSegments segments.
	SegmentSize int64
	// SegmentContainer holds the segments of large objects; default
	// Container + "_segments", as the swift client names it. The target
	// creates it when it first needs it.
	SegmentContainer string

	// ConnectTimeout bounds the wait for a reply to a request (and for the
	// authentication); default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Timeout bounds the wait for each read or write of data; default
	// DefaultTimeout.
	Timeout time.Duration
}

// Validate reports the first field of c that New cannot accept, naming the
// field and how to fix it. The error wraps target.ErrInvalidArgument.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("swift: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	d := c.withDefaults()
	switch d.AuthStrategy {
	case AuthPerUser:
		switch {
		case d.Token == "":
			return bad("Token is empty: per_user auth (the default, as Cinder's backup_swift_auth) needs the user's token and StorageURL; " +
				"set them (OS_AUTH_TOKEN, OS_STORAGE_URL), or set AuthStrategy to single_user with AuthURL, User and Key")
		case d.StorageURL == "":
			return bad("StorageURL is empty: per_user auth needs the storage URL of the user's account (http(s)://host/v1/AUTH_<project>, OS_STORAGE_URL) with the Token")
		}
		if err := checkURL("StorageURL", d.StorageURL); err != nil {
			return err
		}
	case AuthSingleUser:
		switch {
		case d.AuthURL == "":
			return bad("AuthURL is empty: single_user auth needs the identity endpoint (OS_AUTH_URL), e.g. http://host:8080/auth/v1.0 or https://keystone:5000/v3")
		case d.AuthVersion < 1 || d.AuthVersion > 3:
			return bad("AuthVersion is %d; use 1, 2 or 3 (0 means %d)", c.AuthVersion, DefaultAuthVersion)
		case d.User == "":
			return bad("User is empty: single_user auth needs the service user (OS_USERNAME; \"account:user\" for v1)")
		case d.Key == "":
			return bad("Key is empty: single_user auth needs the service user's key or password (OS_PASSWORD)")
		case d.AuthVersion == 2 && d.Tenant == "":
			return bad("Tenant is empty: auth v2 needs the tenant (project) name (OS_TENANT_NAME)")
		case d.AuthVersion == 3 && d.Project == "":
			return bad("Project is empty: auth v3 needs the project name (OS_PROJECT_NAME)")
		case d.AuthVersion == 3 && d.UserDomain == "":
			return bad("UserDomain is empty: auth v3 needs the domain of the user (OS_USER_DOMAIN_NAME, often \"Default\")")
		case d.AuthVersion == 1 && (d.Tenant != "" || d.Project != "" || d.UserDomain != "" || d.ProjectDomain != ""):
			return bad("Tenant, Config.Project, Config.UserDomain and Config.ProjectDomain are for Keystone (AuthVersion 2 or 3), but AuthVersion is 1; set AuthVersion or clear them")
		case d.AuthVersion == 2 && (d.Project != "" || d.UserDomain != "" || d.ProjectDomain != ""):
			return bad("Project, Config.UserDomain and Config.ProjectDomain are for auth v3, but AuthVersion is 2 (which uses Config.Tenant); set AuthVersion to 3 or use Tenant")
		case d.AuthVersion == 3 && d.Tenant != "":
			return bad("Tenant is for auth v2; auth v3 uses Config.Project (and Config.UserDomain, Config.ProjectDomain)")
		}
		if err := checkURL("AuthURL", d.AuthURL); err != nil {
			return err
		}
		switch d.Interface {
		case InterfacePublic, InterfaceInternal, InterfaceAdmin:
		default:
			return bad("Interface is %q; use %q (default), %q or %q", c.Interface, InterfacePublic, InterfaceInternal, InterfaceAdmin)
		}
	default:
		return bad("AuthStrategy is %q; use %q (default) or %q", c.AuthStrategy, AuthPerUser, AuthSingleUser)
	}
	if err := checkContainer("Container", d.Container); err != nil {
		return err
	}
	if err := checkContainer("SegmentContainer", d.SegmentContainer); err != nil {
		return err
	}
	if d.SegmentContainer == d.Container {
		return bad("SegmentContainer is the Container %q; segments need a container of their own (default %q)", d.Container, d.Container+"_segments")
	}
	if d.Prefix != "" {
		if err := target.CheckName(d.Prefix); err != nil {
			return bad("Prefix %q is not usable (a relative path like \"backups/host1\", no leading or trailing '/'): %w", c.Prefix, err)
		}
	}
	switch {
	case d.BlockSize <= 0:
		return bad("BlockSize is %d; use a positive size (0 means %d)", c.BlockSize, DefaultBlockSize)
	case d.ObjectSize <= 0:
		return bad("ObjectSize is %d; use a positive size (0 means %d)", c.ObjectSize, DefaultObjectSize)
	case d.ObjectSize%int64(d.BlockSize) != 0:
		return bad("ObjectSize %d is not a multiple of BlockSize %d (Cinder requires it); use e.g. %d",
			d.ObjectSize, d.BlockSize, (d.ObjectSize/int64(d.BlockSize)+1)*int64(d.BlockSize))
	case d.RetryBackoff < 0:
		return bad("RetryBackoff is %v; use a positive duration (0 means %v)", c.RetryBackoff, DefaultRetryBackoff)
	case d.SegmentSize < minSegmentSize || d.SegmentSize > DefaultSegmentSize:
		return bad("SegmentSize is %d; use from %d (1 MiB) to %d (5 GiB, Swift's largest single object); 0 means 5 GiB", c.SegmentSize, minSegmentSize, int64(DefaultSegmentSize))
	case d.ConnectTimeout < 0:
		return bad("ConnectTimeout is %v; use a positive duration (0 means %v)", c.ConnectTimeout, DefaultConnectTimeout)
	case d.Timeout < 0:
		return bad("Timeout is %v; use a positive duration (0 means %v)", c.Timeout, DefaultTimeout)
	case d.CAFile != "" && d.Insecure:
		return bad("CAFile and Insecure are both set; verify with the CA file, or (tests only) turn verification off, not both")
	}
	return nil
}

// checkURL reports whether s is an http(s) URL without credentials.
func checkURL(field, s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("swift: Config.%s is not a URL (%v); use http(s)://host:port/path: %w", field, redactErr(err), target.ErrInvalidArgument)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("swift: Config.%s has scheme %q; use http:// or https://: %w", field, u.Scheme, target.ErrInvalidArgument)
	case u.Host == "":
		return fmt.Errorf("swift: Config.%s %s has no host; use http(s)://host:port/path: %w", field, redactURL(s), target.ErrInvalidArgument)
	case u.User != nil:
		return fmt.Errorf("swift: Config.%s holds credentials (user:password@); give them in User and Key instead: %w", field, target.ErrInvalidArgument)
	}
	return nil
}

// checkContainer reports whether name is a valid Swift container name.
func checkContainer(field, name string) error {
	bad := func(why string) error {
		return fmt.Errorf("swift: Config.%s %q %s: %w", field, name, why, target.ErrInvalidArgument)
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > maxContainerLen:
		return bad(fmt.Sprintf("is %d bytes long; Swift allows %d", len(name), maxContainerLen))
	case strings.Contains(name, "/"):
		return bad("contains '/'; put the path in Prefix instead")
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case name == "." || name == "..":
		return bad("is not a container name")
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return bad("contains a control character")
		}
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.AuthStrategy == "" {
		c.AuthStrategy = AuthPerUser
	}
	if c.AuthVersion == 0 {
		c.AuthVersion = DefaultAuthVersion
	}
	if c.Interface == "" {
		c.Interface = InterfacePublic
	}
	if c.Container == "" {
		c.Container = DefaultContainer
	}
	if c.SegmentContainer == "" {
		c.SegmentContainer = c.Container + "_segments"
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.ObjectSize == 0 {
		c.ObjectSize = DefaultObjectSize
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.RetryAttempts == 0 {
		c.RetryAttempts = DefaultRetryAttempts
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// retryStatusCodes are the HTTP statuses worth another attempt: the usual
// transient ones, Swift's own rate-limit status 498, and 422, which Swift
// returns when the data it received does not match the MD5 sent with it
// (the data was altered on the way).
var retryStatusCodes = []int{408, 422, 429, 498, 500, 502, 503, 504}

// RetryPolicy returns the policy for target.NewRetry that matches c's retry
// options, as python-swiftclient retries for Cinder: up to RetryAttempts
// retries, the first after up to RetryBackoff, the wait ceiling doubling up
// to DefaultMaxRetryBackoff (with full jitter, and at least what a
// Retry-After header asks). Retried: timeouts, broken connections, HTTP
// 408, 422, 429, 498 and 5xx. The target itself makes one attempt per
// operation; wrap it:
//
//	t, err := swift.New(ctx, cfg)
//	...
//	rt, err := target.NewRetry(t, cfg.RetryPolicy())
func (c Config) RetryPolicy() target.RetryPolicy {
	d := c.withDefaults()
	attempts := 1
	if d.RetryAttempts > 0 {
		attempts += d.RetryAttempts
	}
	return target.RetryPolicy{
		Mode:             target.RetryStandard,
		MaxAttempts:      attempts,
		BaseDelay:        d.RetryBackoff,
		MaxDelay:         max(d.RetryBackoff, DefaultMaxRetryBackoff),
		RetryStatusCodes: append([]int(nil), retryStatusCodes...),
	}
}

// transport returns the HTTP transport for c's TLS options.
func (c Config) transport() (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	// Swift answers a conditional or refused PUT before the body is sent.
	tr.ExpectContinueTimeout = 5 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.Insecure} //nolint:gosec // Insecure is the user's explicit choice
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("swift: Config.CAFile: %w; give a readable PEM file of CA certificates: %w", err, target.ErrInvalidArgument)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("swift: Config.CAFile %s holds no PEM certificate; give a PEM file of CA certificates: %w", c.CAFile, target.ErrInvalidArgument)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

// redactURL returns s without user info or query, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// redactErr returns the message of a URL parse error without the URL, which
// may hold credentials.
func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "invalid URL"
}
