package s3

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Defaults of Config. Where Cinder's S3 backup driver has the option, the
// default is Cinder's (its option name is in the field's documentation).
const (
	DefaultBucket             = "volumebackups"
	DefaultObjectSize         = 52428800
	DefaultBlockSize          = 32768
	DefaultMaxAttempts        = 4
	DefaultRetryMode          = "legacy"
	DefaultMaxPoolConnections = 10
	DefaultTimeout            = 60 * time.Second
	DefaultRegion             = "us-east-1"
	DefaultRequestChecksum    = ChecksumWhenSupported
	DefaultMultipartThreshold = 64 << 20
	DefaultPartSize           = 16 << 20
	DefaultPartConcurrency    = 4
	DefaultSSECustomerAlg     = "AES256"
)

// Request checksum behaviours (Config.RequestChecksum), as the AWS SDKs name them.
const (
	// ChecksumWhenSupported sends a CRC32 checksum with every upload, the
	// default of current AWS SDKs.
	ChecksumWhenSupported = "when_supported"
	// ChecksumWhenRequired sends checksums only where the operation requires
	// one: for S3-compatible stores that reject or mishandle the newer
	// checksum headers and trailers.
	ChecksumWhenRequired = "when_required"
)

// IfNotExistsMode says how Put honours target.PutOptions.IfNotExists.
type IfNotExistsMode string

const (
	// IfNotExistsConditional (the default) sends "If-None-Match: *" with the
	// PUT (or with CompleteMultipartUpload), so the store itself refuses to
	// replace an existing object: atomic against concurrent writers. AWS S3,
	// MinIO and Ceph radosgw support it.
	IfNotExistsConditional IfNotExistsMode = "conditional"
	// IfNotExistsCheck asks with HEAD whether the object exists and then
	// PUTs it without a condition, for stores that ignore or reject
	// If-None-Match. It is not atomic: two writers racing for one name may
	// both succeed, the later one replacing the earlier.
	IfNotExistsCheck IfNotExistsMode = "check"
)

// Config configures a Target. The zero value, with credentials from the
// SDK's default chain, talks to AWS S3 in Cinder's default bucket; every
// zero field takes the documented default.
type Config struct {
	// Endpoint is the base URL of the S3 service, for example
	// http://127.0.0.1:9000 for MinIO (Cinder's backup_s3_endpoint_url).
	// Empty means AWS S3, found from Region.
	Endpoint string
	// Region is the signing region. Empty means the SDK's (AWS_REGION, the
	// profile's region), and DefaultRegion (us-east-1) when it has none.
	Region string

	// AccessKey and SecretKey are the static credentials (Cinder's
	// backup_s3_store_access_key and backup_s3_store_secret_key), with
	// SessionToken for temporary ones. When AccessKey is empty the SDK's
	// default credential chain is used: environment variables
	// (AWS_ACCESS_KEY_ID, ...), Profile in the shared config and credentials
	// files, web identity tokens (IRSA on Kubernetes), ECS and EC2 instance
	// roles.
	AccessKey, SecretKey, SessionToken string
	// Profile is the shared-config profile the default chain uses (empty:
	// AWS_PROFILE or "default"). Ignored when AccessKey is set.
	Profile string

	// Bucket is the bucket backups go to (Cinder's backup_s3_store_bucket,
	// default DefaultBucket "volumebackups").
	Bucket string
	// Prefix, when set, is a '/'-separated path inside the bucket under
	// which the target keeps its objects: object "a/b" is key Prefix+"/a/b".
	Prefix string
	// PathStyle addresses the bucket as endpoint/bucket instead of
	// bucket.endpoint, which MinIO and Ceph radosgw on an IP address need.
	PathStyle bool
	// CreateBucket makes New create the bucket when it does not exist, as
	// Cinder does. By default a missing bucket is an error, so that a typo
	// does not silently start a new bucket.
	CreateBucket bool

	// ObjectSize and BlockSize are Cinder's backup_s3_object_size (default
	// DefaultObjectSize, 50 MiB) and backup_s3_block_size (default
	// DefaultBlockSize, 32 KiB). The target itself does not use them: they
	// are what Cinder's S3 driver cuts backups with, for callers to pass to
	// the backup engine. ObjectSize must be a multiple of BlockSize.
	ObjectSize int64
	BlockSize  int

	// MaxAttempts is how many attempts an operation gets, the first one
	// included, when the target is wrapped with target.NewRetry(t,
	// cfg.RetryPolicy()) (Cinder's backup_s3_retry_max_attempts, default 4;
	// botocore counts that number as retries after the first attempt, so
	// set 5 for exactly Cinder's behaviour). The SDK's own retries are off:
	// the target makes one attempt per call.
	MaxAttempts int
	// RetryMode is "legacy" (the default, as Cinder's backup_s3_retry_mode),
	// "standard" or "adaptive": see target.RetryLegacy and its siblings.
	RetryMode string

	// MaxPoolConnections is how many idle connections to the store are kept
	// for reuse (Cinder's backup_s3_max_pool_connections, default 10; like
	// botocore's pool it does not block when more requests run at once).
	MaxPoolConnections int
	// Timeout bounds connecting, the TLS handshake, the wait for a reply
	// and every wait for more bytes of a reply (Cinder's backup_s3_timeout,
	// default 60s). It is not a deadline on the whole transfer: a slow but
	// progressing upload or download is not cut off.
	Timeout time.Duration

	// InsecureSkipVerify turns off verification of the store's TLS
	// certificate (the opposite of Cinder's backup_s3_verify_ssl, which is
	// on by default). Prefer CABundle.
	InsecureSkipVerify bool
	// CABundle is a PEM file of the certificate authorities to trust instead
	// of the system's, for a store with a private CA such as a self-signed
	// MinIO (Cinder's backup_s3_ca_cert_file). Empty means the system's
	// roots, or the file named by AWS_CA_BUNDLE, which the SDK reads.
	CABundle string
	// HTTPProxy and HTTPSProxy are the proxies for http:// and https://
	// endpoints (Cinder's backup_s3_http_proxy and backup_s3_https_proxy).
	// Empty means the environment's (HTTP_PROXY, HTTPS_PROXY, NO_PROXY).
	HTTPProxy, HTTPSProxy string

	// DisableContentMD5 stops sending Content-MD5 with uploads (Cinder's
	// backup_s3_md5 is on by default). With it on, every PUT and every part
	// of a multipart upload carries the MD5 of its body, which the store
	// verifies; buckets with object lock require it.
	DisableContentMD5 bool
	// SSECustomerKey, when set, encrypts objects on the store with this
	// customer-provided key (SSE-C; 32 bytes for AES256), which then must be
	// given to read them back. SSE-C needs an https endpoint. Cinder's
	// backup_s3_sse_customer_key.
	SSECustomerKey []byte
	// SSECustomerAlgorithm is the SSE-C algorithm (Cinder's
	// backup_s3_sse_customer_algorithm; default DefaultSSECustomerAlg,
	// AES256, when SSECustomerKey is set).
	SSECustomerAlgorithm string
	// ServerSideEncryption asks the store to encrypt the objects it writes
	// with keys it manages: ServerSideEncryptionS3 ("AES256", SSE-S3) or
	// ServerSideEncryptionKMS ("aws:kms", SSE-KMS). Empty: the bucket's
	// default. Reading needs nothing more. It excludes SSECustomerKey.
	ServerSideEncryption string
	// SSEKMSKeyID is the KMS key (ID, ARN or alias) SSE-KMS encrypts with;
	// empty: the store's default KMS key. Only with ServerSideEncryption
	// "aws:kms".
	SSEKMSKeyID string
	// StorageClass, when set, is the storage class of the objects written
	// (STANDARD, STANDARD_IA, REDUCED_REDUNDANCY, ...; what is accepted is
	// up to the store).
	StorageClass string
	// RequestChecksum is ChecksumWhenSupported (the default) or
	// ChecksumWhenRequired: whether uploads carry the SDK's CRC32
	// checksums, and whether downloads that have one are validated. Some
	// S3-compatible stores reject the newer checksums; use
	// ChecksumWhenRequired for them.
	RequestChecksum string

	// ObjectLock stores objects with the retention PutOptions.RetainUntil
	// asks for (S3 object lock: ObjectLockMode and ObjectLockRetainUntilDate
	// on every upload), so that the store itself refuses to delete them
	// before then; Delete then removes every version of an object. The
	// bucket must have object lock enabled (New checks), which CreateBucket
	// does when it creates the bucket. Object lock needs Content-MD5 (or
	// another checksum), so DisableContentMD5 is refused with it.
	ObjectLock bool

	// IfNotExists chooses how conditional writes are made (default
	// IfNotExistsConditional; IfNotExistsCheck for stores without
	// If-None-Match).
	IfNotExists IfNotExistsMode

	// MultipartThreshold is the size above which an object goes up as a
	// multipart upload of PartSize parts, PartConcurrency of them at a time
	// (default DefaultMultipartThreshold, 64 MiB, so Cinder's 50 MiB objects
	// go up in one PUT as Cinder sends them). A multipart upload holds
	// about (PartConcurrency+3) x PartSize bytes of memory; one that fails
	// or is cancelled is aborted, so no parts are left behind.
	MultipartThreshold int64
	// PartSize is the size of the parts of a multipart upload (default
	// DefaultPartSize, 16 MiB; at least 5 MiB, the S3 minimum).
	PartSize int64
	// PartConcurrency is how many parts of one object are uploaded at once
	// (default DefaultPartConcurrency, 4).
	PartConcurrency int
}

// minPartSize is the smallest part S3 accepts (but the last).
const minPartSize = 5 << 20

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.ObjectSize == 0 {
		c.ObjectSize = DefaultObjectSize
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryMode == "" {
		c.RetryMode = DefaultRetryMode
	}
	if c.MaxPoolConnections == 0 {
		c.MaxPoolConnections = DefaultMaxPoolConnections
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.SSECustomerKey) > 0 && c.SSECustomerAlgorithm == "" {
		c.SSECustomerAlgorithm = DefaultSSECustomerAlg
	}
	if c.RequestChecksum == "" {
		c.RequestChecksum = DefaultRequestChecksum
	}
	if c.IfNotExists == "" {
		c.IfNotExists = IfNotExistsConditional
	}
	if c.MultipartThreshold == 0 {
		c.MultipartThreshold = DefaultMultipartThreshold
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartConcurrency == 0 {
		c.PartConcurrency = DefaultPartConcurrency
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	return c
}

// Validate reports the first field of c that New cannot accept, naming the
// field and how to fix it. Zero fields count as their defaults. The error
// wraps target.ErrInvalidArgument. Validate does not read CABundle; New does.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("s3: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	d := c.withDefaults()
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("Endpoint %q is not an http:// or https:// URL; give the store's base URL, such as http://127.0.0.1:9000", redactURL(c.Endpoint))
		}
		if u.User != nil {
			return bad("Endpoint holds credentials; give them in AccessKey and SecretKey instead")
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return bad("Endpoint %q has a query or fragment; give only scheme, host, port and path", redactURL(c.Endpoint))
		}
	}
	if c.SecretKey != "" && c.AccessKey == "" {
		return bad("SecretKey is set without AccessKey; set both, or neither to use the SDK's default credential chain")
	}
	if c.AccessKey != "" && c.SecretKey == "" {
		return bad("AccessKey is set without SecretKey; set both, or neither to use the SDK's default credential chain")
	}
	if c.SessionToken != "" && c.AccessKey == "" {
		return bad("SessionToken is set without AccessKey and SecretKey; a session token belongs to temporary keys, set all three")
	}
	if err := checkBucket(d.Bucket); err != nil {
		return bad("Bucket %q %v", d.Bucket, err)
	}
	if d.Prefix != "" {
		if err := target.CheckName(d.Prefix); err != nil {
			return bad("Prefix %q is not a valid path inside the bucket (%v); use '/'-separated names such as backups/cinder", c.Prefix, err)
		}
	}
	switch {
	case d.ObjectSize < 0:
		return bad("ObjectSize is %d; use 0 for the default (%d) or a positive size", c.ObjectSize, DefaultObjectSize)
	case d.BlockSize < 0:
		return bad("BlockSize is %d; use 0 for the default (%d) or a positive size", c.BlockSize, DefaultBlockSize)
	case d.ObjectSize%int64(d.BlockSize) != 0:
		return bad("ObjectSize (%d) is not a multiple of BlockSize (%d); Cinder requires it to be", d.ObjectSize, d.BlockSize)
	case c.MaxAttempts < 0:
		return bad("MaxAttempts is %d; use 0 for the default (%d), 1 for no retries, or more", c.MaxAttempts, DefaultMaxAttempts)
	case c.MaxPoolConnections < 0:
		return bad("MaxPoolConnections is %d; use 0 for the default (%d) or a positive number", c.MaxPoolConnections, DefaultMaxPoolConnections)
	case c.Timeout < 0:
		return bad("Timeout is %v; use 0 for the default (%v) or a positive duration", c.Timeout, DefaultTimeout)
	case c.MultipartThreshold < 0:
		return bad("MultipartThreshold is %d; use 0 for the default (%d) or a positive size", c.MultipartThreshold, DefaultMultipartThreshold)
	case d.PartSize < minPartSize:
		return bad("PartSize is %d; S3 needs parts of at least %d bytes (5 MiB); use 0 for the default (%d)", c.PartSize, minPartSize, DefaultPartSize)
	case d.MultipartThreshold < d.PartSize:
		return bad("MultipartThreshold (%d) is less than PartSize (%d); raise it (zero fields count as their defaults)", d.MultipartThreshold, d.PartSize)
	case c.PartConcurrency < 0:
		return bad("PartConcurrency is %d; use 0 for the default (%d) or a positive number", c.PartConcurrency, DefaultPartConcurrency)
	}
	if _, err := retryMode(d.RetryMode); err != nil {
		return bad("RetryMode %v", err)
	}
	if d.RequestChecksum != ChecksumWhenSupported && d.RequestChecksum != ChecksumWhenRequired {
		return bad("RequestChecksum is %q; use %q (the default) or %q", c.RequestChecksum, ChecksumWhenSupported, ChecksumWhenRequired)
	}
	if d.IfNotExists != IfNotExistsConditional && d.IfNotExists != IfNotExistsCheck {
		return bad("IfNotExists is %q; use %q (the default) or %q", c.IfNotExists, IfNotExistsConditional, IfNotExistsCheck)
	}
	for _, p := range []struct{ field, value string }{{"HTTPProxy", c.HTTPProxy}, {"HTTPSProxy", c.HTTPSProxy}} {
		if p.value == "" {
			continue
		}
		if u, err := url.Parse(p.value); err != nil || u.Host == "" ||
			(u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			return bad("%s %q is not a proxy URL; give one such as http://proxy.example:3128", p.field, redactURL(p.value))
		}
	}
	if len(c.SSECustomerKey) > 0 {
		if d.SSECustomerAlgorithm != "AES256" {
			return bad("SSECustomerAlgorithm is %q; S3 supports only AES256", c.SSECustomerAlgorithm)
		}
		if len(c.SSECustomerKey) != 32 {
			return bad("SSECustomerKey is %d bytes long; AES256 needs a 32-byte key", len(c.SSECustomerKey))
		}
		if c.Endpoint != "" && strings.HasPrefix(c.Endpoint, "http://") {
			return bad("SSECustomerKey needs an https endpoint (stores refuse to receive the key in clear); use https:// in Endpoint")
		}
	} else if c.SSECustomerAlgorithm != "" {
		return bad("SSECustomerAlgorithm is set without SSECustomerKey; set the key too, or neither")
	}
	if err := c.validateSSE(); err != nil {
		return bad("%v", err)
	}
	if c.ObjectLock && c.DisableContentMD5 && d.RequestChecksum == ChecksumWhenRequired {
		return bad("ObjectLock is set with DisableContentMD5 and RequestChecksum %q: object lock needs a checksum with every upload; turn Content-MD5 back on", ChecksumWhenRequired)
	}
	if c.InsecureSkipVerify && c.CABundle != "" {
		return bad("InsecureSkipVerify and CABundle are both set; verify with the CA bundle, or skip verification, not both")
	}
	return nil
}

// RetryPolicy returns the retry policy for target.NewRetry that the
// configuration's MaxAttempts and RetryMode ask for.
func (c Config) RetryPolicy() target.RetryPolicy {
	d := c.withDefaults()
	mode, err := retryMode(d.RetryMode)
	if err != nil {
		mode = target.RetryLegacy // Validate reports it; New refuses it
	}
	return target.RetryPolicy{Mode: mode, MaxAttempts: d.MaxAttempts}
}

func retryMode(s string) (target.RetryMode, error) {
	switch s {
	case "legacy":
		return target.RetryLegacy, nil
	case "standard":
		return target.RetryStandard, nil
	case "adaptive":
		return target.RetryAdaptive, nil
	}
	return 0, fmt.Errorf("is %q; use legacy (the default), standard or adaptive", s)
}

// checkBucket applies S3's bucket naming rules, loosely (stores differ on
// the details): 3 to 63 characters, lower-case letters, digits, '.', '-'
// and '_', starting and ending with a letter or digit.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("is %d characters long; bucket names have 3 to 63", len(b))
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("has the character %q; bucket names have lower-case letters, digits, '.' and '-'", c)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("must start and end with a letter or digit")
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// loadCABundle reads and checks the PEM file c.CABundle.
func loadCABundle(file string) ([]byte, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("s3: Config.CABundle: %w: give a readable PEM file of CA certificates: %w", err, target.ErrInvalidArgument)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3: Config.CABundle: %s holds no PEM certificate: give the CA certificate(s) in PEM form: %w", file, target.ErrInvalidArgument)
	}
	return pem, nil
}

// redactURL returns raw without user information, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
