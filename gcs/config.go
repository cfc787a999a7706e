package gcs

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Defaults of Config, which are those of Cinder's GCS backup driver
// (cinder/backup/drivers/gcs.py) where it has the option.
const (
	// DefaultChunkSize is the default of Config.ReaderChunkSize and
	// Config.WriterChunkSize (backup_gcs_reader_chunk_size and
	// backup_gcs_writer_chunk_size: 2 MiB).
	DefaultChunkSize = 2 << 20
	// SingleRequest, as a chunk size, transfers every object in one request
	// (Cinder's -1).
	SingleRequest = -1
	// DefaultNumRetries is the default of Config.NumRetries
	// (backup_gcs_num_retries).
	DefaultNumRetries = 3
	// DefaultBucketLocation is where Config.CreateBucket creates the bucket
	// (backup_gcs_bucket_location).
	DefaultBucketLocation = "US"
	// DefaultStorageClass is the storage class of a bucket that
	// Config.CreateBucket creates (backup_gcs_storage_class).
	DefaultStorageClass = "NEARLINE"
	// DefaultUserAgent is sent before the client library's own User-Agent.
	// (Cinder sends "gcscinder"; chunkback names itself.)
	DefaultUserAgent = "chunkback"

	// DefaultObjectSize and DefaultBlockSize are Cinder's
	// backup_gcs_object_size and backup_gcs_block_size: the size of the
	// objects a backup is cut into and of the blocks hashed for incremental
	// backups. They are options of the backup engine, not of the target;
	// they are here so that callers can give a GCS backup Cinder's sizes.
	DefaultObjectSize = 52428800
	DefaultBlockSize  = 32768
)

// retryBaseDelay is the backoff of Cinder's driver (googleapiclient sleeps a
// random time below 2^n seconds before its n-th retry).
const retryBaseDelay = 2 * time.Second

// alwaysRetried returns the HTTP statuses retried whatever
// Config.RetryErrorCodes says: googleapiclient, under Cinder's driver,
// retries server errors.
func alwaysRetried() []int { return []int{500, 502, 503, 504} }

// storageClasses returns the storage classes a bucket can be created with.
func storageClasses() []string {
	return []string{"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", "MULTI_REGIONAL", "REGIONAL", "DURABLE_REDUCED_AVAILABILITY"}
}

// Config configures a GCS target. Only Bucket is required; every zero field
// takes the documented default.
//
// Credentials, in order: none when Anonymous is set or STORAGE_EMULATOR_HOST
// is in the environment (as the client library does for emulators);
// CredentialsFile when given; otherwise Application Default Credentials:
// the file GOOGLE_APPLICATION_CREDENTIALS names, the gcloud user
// credentials (`gcloud auth application-default login`), or on Google Cloud
// the attached service account, workload identity included.
type Config struct {
	// Bucket is the bucket that holds the backups (backup_gcs_bucket).
	Bucket string
	// Prefix, when set, is prepended with a '/' to every object name, so
	// several users can share a bucket. It must be a valid object name
	// itself (a trailing '/' is dropped).
	Prefix string
	// ProjectID is the project a bucket is created in by CreateBucket
	// (backup_gcs_project_id). Default: the project of the credentials.
	ProjectID string
	// CredentialsFile is a JSON credentials file, normally a service-account
	// key (backup_gcs_credential_file); workload identity federation
	// (external_account), gcloud user (authorized_user) and impersonation
	// files are accepted too. Default: Application Default Credentials.
	CredentialsFile string
	// Anonymous sends no credentials, for emulators and public buckets.
	Anonymous bool
	// Endpoint replaces the JSON API endpoint, for emulators and private
	// endpoints: http://127.0.0.1:4443 or https://host/storage/v1/ (a bare
	// host gets /storage/v1/). STORAGE_EMULATOR_HOST=host:port does the same
	// when Endpoint is empty, and also turns authentication off.
	Endpoint string

	// ReaderChunkSize is how many bytes Get asks for in one request
	// (backup_gcs_reader_chunk_size; default DefaultChunkSize). SingleRequest
	// reads every range in one request. The requests of one read are pinned
	// to one generation of the object, so a read of more than one chunk
	// fails if the object is replaced or deleted between two of them (a
	// bucket without versioning keeps no old generation); a read in one
	// request has no such window.
	ReaderChunkSize int
	// WriterChunkSize is how many bytes Put sends in one request of a
	// resumable upload (backup_gcs_writer_chunk_size; default
	// DefaultChunkSize; rounded up to a multiple of 256 KiB by the client
	// library). Objects that fit in one chunk go in one request, and
	// SingleRequest sends every object in one request. Each Put in progress
	// holds one chunk in memory.
	WriterChunkSize int

	// NumRetries is how many times a failed request is retried, by the
	// retry decorator RetryPolicy configures (backup_gcs_num_retries;
	// default DefaultNumRetries). -1 makes no retries.
	NumRetries int
	// RetryErrorCodes are HTTP statuses retried besides 500, 502, 503 and
	// 504 (backup_gcs_retry_error_codes; default 429).
	RetryErrorCodes []int

	// CreateBucket makes New create the bucket when it does not exist, in
	// ProjectID, at BucketLocation with StorageClass. By default a missing
	// bucket is an error.
	CreateBucket bool
	// BucketLocation is where CreateBucket creates the bucket
	// (backup_gcs_bucket_location; default DefaultBucketLocation).
	BucketLocation string
	// StorageClass is the default storage class of the bucket CreateBucket
	// creates (backup_gcs_storage_class; default DefaultStorageClass):
	// STANDARD, NEARLINE, COLDLINE or ARCHIVE.
	StorageClass string

	// ProxyURL, when set, sends every request through this HTTP(S) proxy
	// (backup_gcs_proxy_url). Default: the proxy of the HTTPS_PROXY and
	// NO_PROXY environment variables, if any.
	ProxyURL string
	// UserAgent is sent before the client library's User-Agent
	// (backup_gcs_user_agent; default DefaultUserAgent).
	UserAgent string
}

// Validate reports the first field of c that New cannot accept, naming the
// field and how to fix it. The error wraps target.ErrInvalidArgument.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gcs: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	if err := checkBucketName(c.Bucket); err != nil {
		return bad("Bucket %s", err)
	}
	if p := strings.TrimSuffix(c.Prefix, "/"); p != "" {
		if err := target.CheckName(p); err != nil {
			return bad("Prefix %q is not usable: %v; use '/'-separated names such as \"backups/cinder\"", c.Prefix, err)
		}
	}
	if c.Anonymous && c.CredentialsFile != "" {
		return bad("Anonymous and CredentialsFile are both set; set only one")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err == nil && u.User != nil {
			return bad("Endpoint holds user information; remove it (credentials come from CredentialsFile or the environment)")
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("Endpoint %q is not an http:// or https:// URL with a host; use e.g. http://127.0.0.1:4443", c.Endpoint)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"ReaderChunkSize", c.ReaderChunkSize}, {"WriterChunkSize", c.WriterChunkSize}} {
		if f.v < SingleRequest {
			return bad("%s is %d; use a positive size in bytes, 0 for the default (%d), or -1 for a single request", f.name, f.v, DefaultChunkSize)
		}
	}
	if c.NumRetries < -1 {
		return bad("NumRetries is %d; use 0 for the default (%d), -1 for no retries, or a positive count", c.NumRetries, DefaultNumRetries)
	}
	for _, code := range c.RetryErrorCodes {
		if code < 100 || code > 599 {
			return bad("RetryErrorCodes holds %d, which is not an HTTP status; use codes from 100 to 599 such as 429", code)
		}
	}
	if c.StorageClass != "" && !slices.Contains(storageClasses(), c.StorageClass) {
		return bad("StorageClass is %q; use one of %s", c.StorageClass, strings.Join(storageClasses(), ", "))
	}
	if c.ProxyURL != "" {
		u, err := url.Parse(c.ProxyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			return bad("ProxyURL is not an http://, https:// or socks5:// URL with a host; use e.g. http://proxy:3128")
		}
	}
	if strings.ContainsAny(c.UserAgent, "\r\n") {
		return bad("UserAgent contains a line break; remove it")
	}
	return nil
}

// checkBucketName applies Google's bucket naming rules, so a typo fails
// here rather than as an HTTP 400 later.
func checkBucketName(b string) error {
	switch {
	case b == "":
		return fmt.Errorf("is empty; set the bucket that holds the backups")
	case len(b) < 3 || len(b) > 222:
		return fmt.Errorf("%q has %d characters; bucket names have 3 to 63 (222 with dots)", b, len(b))
	case !isAlnum(b[0]) || !isAlnum(b[len(b)-1]):
		return fmt.Errorf("%q must start and end with a lowercase letter or a digit", b)
	}
	for _, part := range strings.Split(b, ".") {
		if len(part) == 0 || len(part) > 63 {
			return fmt.Errorf("%q has an empty or over-63-character part between dots", b)
		}
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%q contains %q; use lowercase letters, digits, '-', '_' and '.'", b, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.ReaderChunkSize == 0 {
		c.ReaderChunkSize = DefaultChunkSize
	}
	if c.WriterChunkSize == 0 {
		c.WriterChunkSize = DefaultChunkSize
	}
	if c.NumRetries == 0 {
		c.NumRetries = DefaultNumRetries
	}
	if len(c.RetryErrorCodes) == 0 {
		c.RetryErrorCodes = []int{429}
	}
	if c.BucketLocation == "" {
		c.BucketLocation = DefaultBucketLocation
	}
	if c.StorageClass == "" {
		c.StorageClass = DefaultStorageClass
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	return c
}

// RetryPolicy returns the policy of target.NewRetry that retries as Cinder's
// driver does: NumRetries retries (NumRetries+1 attempts) of requests that
// failed with 500, 502, 503, 504 or one of RetryErrorCodes (429), or that
// did not get an answer, with a random backoff below 2, 4, 8, ... seconds
// (capped at 20 s), and waiting at least as long as a Retry-After header
// asks. The target itself makes one attempt per operation; wrap it:
//
//	t, err := gcs.New(ctx, cfg)
//	retried, err := target.NewRetry(t, cfg.RetryPolicy())
func (c Config) RetryPolicy() target.RetryPolicy {
	d := c.withDefaults()
	attempts := d.NumRetries + 1
	if d.NumRetries < 0 {
		attempts = 1
	}
	codes := alwaysRetried()
	for _, code := range d.RetryErrorCodes {
		if !slices.Contains(codes, code) {
			codes = append(codes, code)
		}
	}
	return target.RetryPolicy{
		MaxAttempts:      attempts,
		BaseDelay:        retryBaseDelay,
		RetryStatusCodes: codes,
	}
}
