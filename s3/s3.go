// Package s3 is a target.Target that stores objects in an S3 bucket, AWS S3
// or a compatible store (MinIO, Ceph radosgw, ...), with the options and
// defaults of OpenStack Cinder's S3 backup driver (see Config). It uses
// aws-sdk-go-v2.
//
// Object "a/b" is the key "a/b" in Config.Bucket, or Config.Prefix+"/a/b".
// Backups are laid out as Cinder's S3 driver lays them out
// (volume_<volume>/<timestamp>/az_<zone>_backup_<id>-NNNNN), so each
// restores the other's.
//
//   - Put sends objects up to Config.MultipartThreshold in one PUT, streamed
//     from the caller's body without a copy, and larger ones as a multipart
//     upload of Config.PartSize parts, Config.PartConcurrency at a time,
//     through the SDK's transfer manager. An object becomes visible whole or
//     not at all; a multipart upload that fails or is cancelled is aborted,
//     so no parts are left behind (AbortIncompleteUploads removes those of a
//     process that died).
//   - Every upload carries Content-MD5 (unless Config.DisableContentMD5): the
//     caller's PutOptions.ContentMD5 when given, else the target's own; each
//     part of a multipart upload carries its own, and the MD5 of the whole
//     body is checked against PutOptions.ContentMD5 before the upload is
//     completed.
//   - PutOptions.IfNotExists is "If-None-Match: *", atomic on the store, or a
//     HEAD before the PUT for stores without it (Config.IfNotExists).
//     Conditional objects up to 5 GiB go up in one PUT whatever their size,
//     because some stores (Ceph radosgw Pacific) ignore If-None-Match on
//     CompleteMultipartUpload; beyond 5 GiB a HEAD first is all such stores get.
//   - The SDK's own retries are off: wrap the target with
//     target.NewRetry(t, cfg.RetryPolicy()), which honours Retry-After and
//     never retries what cannot succeed (bad credentials, an untrusted
//     certificate, a missing object).
//   - Errors wrap the sentinels of package target; failures of HTTP requests
//     carry a *target.StatusError; credentials never appear in them.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/chunkback/chunkback/target"
)

// abortTimeout bounds the AbortMultipartUpload of a failed upload, which runs
// on a context of its own so that it is sent even when the Put was cancelled.
const abortTimeout = 30 * time.Second

// maxSinglePut is the largest object S3 accepts in one PUT (5 GiB).
const maxSinglePut = 5 << 30

// Target stores objects in one S3 bucket. It is safe for concurrent use.
type Target struct {
	cfg       Config // with defaults
	region    string
	client    *s3.Client
	uploader  *transfermanager.Client
	keyPrefix string // cfg.Prefix + "/", or ""
	sseKey    string // base64 of the SSE-C key, or ""
	sseKeyMD5 string // base64 of its MD5
}

var (
	_ target.Target         = (*Target)(nil)
	_ target.LayoutTarget   = (*Target)(nil)
	_ target.ContentMD5User = (*Target)(nil)
	_ target.Closer         = (*Target)(nil)
)

// New connects to the store cfg names and checks that the bucket exists and
// the credentials may list it, creating the bucket if it is missing and
// cfg.CreateBucket is set. The errors say what to fix: a missing bucket
// wraps target.ErrNotFound, refused credentials target.ErrPermission, an
// untrusted certificate target.ErrPermanent.
func New(ctx context.Context, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	awsCfg, err := loadAWSConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	t := &Target{cfg: cfg, region: awsCfg.Region, client: client}
	if cfg.Prefix != "" {
		t.keyPrefix = cfg.Prefix + "/"
	}
	if len(cfg.SSECustomerKey) > 0 {
		sum := md5.Sum(cfg.SSECustomerKey)
		t.sseKey = base64.StdEncoding.EncodeToString(cfg.SSECustomerKey)
		t.sseKeyMD5 = base64.StdEncoding.EncodeToString(sum[:])
	}
	t.uploader = newUploader(cfg, client)
	if err := t.checkBucket(ctx); err != nil {
		return nil, err
	}
	if cfg.ObjectLock {
		if err := t.checkObjectLock(ctx); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// newUploader returns the transfer manager for the multipart uploads.
func newUploader(cfg Config, client *s3.Client) *transfermanager.Client {
	return transfermanager.New(partMD5Client{Client: client, md5: !cfg.DisableContentMD5}, func(o *transfermanager.Options) {
		o.PartSizeBytes = cfg.PartSize
		// The transfer manager is only given objects above our threshold,
		// which all go multipart.
		o.MultipartUploadThreshold = cfg.PartSize
		o.Concurrency = cfg.PartConcurrency
		o.FailTimeout = abortTimeout
		o.RequestChecksumCalculation = checksumCalculation(cfg.RequestChecksum)
	})
}

// loadAWSConfig builds the SDK configuration: our HTTP client, no SDK
// retries, the credentials and region.
func loadAWSConfig(ctx context.Context, cfg Config) (aws.Config, error) {
	httpClient := awshttp.NewBuildableClient().
		WithReadTimeout(cfg.Timeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = cfg.Timeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = cfg.MaxPoolConnections
			tr.MaxIdleConns = max(tr.MaxIdleConns, cfg.MaxPoolConnections)
			tr.TLSHandshakeTimeout = cfg.Timeout
			tr.ResponseHeaderTimeout = cfg.Timeout
			tr.Proxy = proxyFunc(cfg.HTTPProxy, cfg.HTTPSProxy)
			if cfg.InsecureSkipVerify {
				tr.TLSClientConfig.InsecureSkipVerify = true
			}
		})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithRequestChecksumCalculation(checksumCalculation(cfg.RequestChecksum)),
		config.WithResponseChecksumValidation(checksumValidation(cfg.RequestChecksum)),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	} else if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.CABundle != "" {
		pem, err := loadCABundle(cfg.CABundle)
		if err != nil {
			return aws.Config{}, err
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's messages name files and variables, not secrets.
		return aws.Config{}, fmt.Errorf("s3: loading the AWS SDK configuration (shared config files, AWS_* variables): %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	return awsCfg, nil
}

// proxyFunc returns the transport's proxy choice: the configured proxy for
// the endpoint's scheme, else the environment's.
func proxyFunc(httpProxy, httpsProxy string) func(*http.Request) (*url.URL, error) {
	if httpProxy == "" && httpsProxy == "" {
		return http.ProxyFromEnvironment
	}
	parse := func(s string) *url.URL {
		if s == "" {
			return nil
		}
		u, _ := url.Parse(s) // Validate checked it
		return u
	}
	hp, hsp := parse(httpProxy), parse(httpsProxy)
	return func(r *http.Request) (*url.URL, error) {
		p := hp
		if r.URL.Scheme == "https" {
			p = hsp
		}
		if p == nil {
			return http.ProxyFromEnvironment(r)
		}
		return p, nil
	}
}

func checksumCalculation(s string) aws.RequestChecksumCalculation {
	if s == ChecksumWhenRequired {
		return aws.RequestChecksumCalculationWhenRequired
	}
	return aws.RequestChecksumCalculationWhenSupported
}

func checksumValidation(s string) aws.ResponseChecksumValidation {
	if s == ChecksumWhenRequired {
		return aws.ResponseChecksumValidationWhenRequired
	}
	return aws.ResponseChecksumValidationWhenSupported
}

// checkBucket lists at most one key of the bucket: it tells a missing bucket
// and refused credentials apart (a HEAD reply would have no error code).
func (t *Target) checkBucket(ctx context.Context) error {
	_, err := t.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(t.cfg.Bucket), Prefix: aws.String(t.keyPrefix), MaxKeys: aws.Int32(1),
	})
	if err == nil {
		return nil
	}
	ferr := t.fail(ctx, "open", "", err)
	if !errors.Is(ferr, target.ErrNotFound) || !t.cfg.CreateBucket {
		return ferr
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(t.cfg.Bucket)}
	if t.cfg.ObjectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if t.region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(t.region)}
	}
	if _, err := t.client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) { // created meanwhile by another process
			return t.fail(ctx, "create bucket", "", err)
		}
	}
	return nil
}

// Close releases idle connections. The target must not be used afterwards.
func (t *Target) Close() error {
	if c, ok := t.client.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

// CinderLayout implements target.LayoutTarget: objects are laid out as
// Cinder's S3 driver lays them out.
func (t *Target) CinderLayout() target.Layout { return target.LayoutObject }

// UsesContentMD5 implements target.ContentMD5User: true unless
// Config.DisableContentMD5.
func (t *Target) UsesContentMD5() bool { return !t.cfg.DisableContentMD5 }

// RetryPolicy returns the retry policy of the target's configuration.
func (t *Target) RetryPolicy() target.RetryPolicy { return t.cfg.RetryPolicy() }

// String describes the target for messages, without credentials.
func (t *Target) String() string {
	return fmt.Sprintf("s3://%s/%s (%s)", t.cfg.Bucket, t.cfg.Prefix, t.endpointName())
}

// key returns the S3 key of the object name, checking the name.
func (t *Target) key(op, name string) (string, error) {
	if err := target.CheckName(name); err != nil {
		return "", fmt.Errorf("s3: %s: %w", op, err)
	}
	return t.keyPrefix + name, nil
}

// Put implements target.Target; see the package documentation for how.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	if opts.ContentMD5 != nil && len(opts.ContentMD5) != md5.Size {
		return fmt.Errorf("s3: put %q: PutOptions.ContentMD5 is %d bytes long, not %d: %w", name, len(opts.ContentMD5), md5.Size, target.ErrInvalidArgument)
	}
	key := t.keyPrefix + name
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: put %q: %w", name, err)
	}
	if body == nil {
		body = bytes.NewReader(nil)
	}
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("s3: put %q: the body cannot seek: %w: %w", name, err, target.ErrInvalidArgument)
	}
	// A HEAD first: the only check in IfNotExistsCheck mode, and in
	// conditional mode it saves uploading a large object for nothing. With
	// object lock too: radosgw (Pacific) ignores If-None-Match in a
	// versioned bucket.
	if opts.IfNotExists && (t.cfg.IfNotExists == IfNotExistsCheck || size > t.cfg.MultipartThreshold || t.cfg.ObjectLock) {
		_, err := t.head(ctx, key)
		switch {
		case err == nil:
			return fmt.Errorf("s3: put %q: %w", name, target.ErrExists)
		case !isNotFound(err):
			return t.fail(ctx, "put", name, err)
		}
	}
	// Conditional objects go up in one PUT whenever S3 allows it: some
	// stores (radosgw Pacific) honour If-None-Match on a PUT but ignore it
	// on CompleteMultipartUpload.
	if size > t.cfg.MultipartThreshold && (!opts.IfNotExists || size > maxSinglePut) {
		err = t.putMultipart(ctx, name, key, body, size, opts)
	} else {
		err = t.putSingle(ctx, name, key, newSection(body, start, size), size, opts)
	}
	if err != nil && opts.IfNotExists && ctx.Err() == nil && !hasStatus(err) {
		// A store that refuses a conditional PUT while the body is still
		// coming (MinIO) closes the connection, and the client may see the
		// reset and not the 412. If the object exists now, this Put did not
		// create it, or created it and lost the reply, which a retry would
		// report as ErrExists too.
		if _, herr := t.head(ctx, key); herr == nil {
			return fmt.Errorf("s3: put %q: %w (the upload failed, %v, and an object of that name exists now)", name, target.ErrExists, err)
		}
	}
	return err
}

// hasStatus reports whether err carries the HTTP status of a reply.
func hasStatus(err error) bool {
	var se *target.StatusError
	return errors.As(err, &se)
}

// putSingle stores the object with one PutObject.
func (t *Target) putSingle(ctx context.Context, name, key string, body *section, size int64, opts target.PutOptions) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(t.cfg.Bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
	}
	if !t.cfg.DisableContentMD5 {
		sum := opts.ContentMD5
		if sum == nil {
			var err error
			if sum, err = body.md5(); err != nil {
				return t.fail(ctx, "put", name, err)
			}
		}
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum))
	}
	if opts.IfNotExists && t.cfg.IfNotExists == IfNotExistsConditional {
		in.IfNoneMatch = aws.String("*")
	}
	if t.cfg.StorageClass != "" {
		in.StorageClass = types.StorageClass(t.cfg.StorageClass)
	}
	if t.sseKey != "" {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = t.sse()
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryption(t.cfg.ServerSideEncryption), t.kmsKeyID()
	in.ObjectLockMode, in.ObjectLockRetainUntilDate = t.lockMode(opts)
	_, err := t.client.PutObject(ctx, in)
	return t.fail(ctx, "put", name, err)
}

// putMultipart stores the object with a multipart upload through the
// transfer manager, which aborts the upload when it fails.
func (t *Target) putMultipart(ctx context.Context, name, key string, body io.Reader, size int64, opts target.PutOptions) error {
	var want []byte
	if !t.cfg.DisableContentMD5 {
		want = opts.ContentMD5
	}
	in := &transfermanager.UploadObjectInput{
		Bucket:        aws.String(t.cfg.Bucket),
		Key:           aws.String(key),
		Body:          newStreamBody(body, size, want),
		ContentLength: aws.Int64(size),
	}
	if opts.IfNotExists && t.cfg.IfNotExists == IfNotExistsConditional {
		in.IfNoneMatch = aws.String("*")
	}
	if t.cfg.StorageClass != "" {
		in.StorageClass = tmtypes.StorageClass(t.cfg.StorageClass)
	}
	if t.sseKey != "" {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = t.sse()
	}
	in.ServerSideEncryption, in.SSEKMSKeyID = tmtypes.ServerSideEncryption(t.cfg.ServerSideEncryption), t.kmsKeyID()
	mode, until := t.lockMode(opts)
	in.ObjectLockMode, in.ObjectLockRetainUntilDate = tmtypes.ObjectLockMode(mode), until
	_, err := t.uploader.UploadObject(ctx, in)
	if err == nil && until != nil {
		err = t.retain(ctx, key, mode, until)
	}
	return t.fail(ctx, "put", name, err)
}

func (t *Target) sse() (alg, key, keyMD5 *string) {
	return aws.String(t.cfg.SSECustomerAlgorithm), aws.String(t.sseKey), aws.String(t.sseKeyMD5)
}

// partMD5Client gives every part of a multipart upload a Content-MD5, which
// the transfer manager does not do itself.
type partMD5Client struct {
	*s3.Client
	md5 bool
}

func (c partMD5Client) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if rs, ok := in.Body.(io.ReadSeeker); c.md5 && ok && in.ContentMD5 == nil {
		h := md5.New()
		if _, err := io.Copy(h, rs); err != nil {
			return nil, err
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	return c.Client.UploadPart(ctx, in, opts...)
}

// Get implements target.Target.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	key, err := t.key("get", name)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: get %q: %w", name, err)
	}
	if length == 0 {
		// No byte to read: S3 has no empty range, so check the object and
		// the offset with a HEAD.
		return t.emptyRead(ctx, name, key, offset)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(t.cfg.Bucket), Key: aws.String(key)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	if t.sseKey != "" {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = t.sse()
	}
	out, err := t.client.GetObject(ctx, in)
	if err != nil {
		ferr := t.fail(ctx, "get", name, err)
		if errors.Is(ferr, target.ErrInvalidRange) {
			// S3 refuses a range that starts at the end of the object
			// (and any range of an empty object), which reads nothing.
			return t.emptyRead(ctx, name, key, offset)
		}
		return nil, ferr
	}
	return &reader{body: out.Body, t: t, ctx: ctx, name: name}, nil
}

// emptyRead returns an empty reader if the object exists and offset is not
// beyond its end.
func (t *Target) emptyRead(ctx context.Context, name, key string, offset int64) (io.ReadCloser, error) {
	out, err := t.head(ctx, key)
	if err != nil {
		return nil, t.fail(ctx, "get", name, err)
	}
	if size := aws.ToInt64(out.ContentLength); offset > size {
		return nil, fmt.Errorf("s3: get %q: offset %d is beyond the end of the object (%d bytes): %w", name, offset, size, target.ErrInvalidRange)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// reader is the body of a GET, with errors that name the object.
type reader struct {
	body io.ReadCloser
	t    *Target
	ctx  context.Context
	name string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		err = r.t.fail(r.ctx, "get", r.name, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.body.Close() }

func (t *Target) head(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(t.cfg.Bucket), Key: aws.String(key)}
	if t.sseKey != "" {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = t.sse()
	}
	return t.client.HeadObject(ctx, in)
}

// isNotFound reports whether an SDK error is a 404 (of the object, not of
// the bucket: a HEAD reply cannot tell them apart, the next call will).
func isNotFound(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	key, err := t.key("stat", name)
	if err != nil {
		return target.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return target.Info{}, fmt.Errorf("s3: stat %q: %w", name, err)
	}
	out, err := t.head(ctx, key)
	if err != nil {
		return target.Info{}, t.fail(ctx, "stat", name, err)
	}
	return target.Info{Name: name, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List implements target.Target. S3 lists keys in the byte order of their
// UTF-8 names, one page of up to 1000 at a time. Keys below the prefix that
// are not valid object names are skipped.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if strings.ContainsFunc(prefix, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("s3: list: prefix %q contains a control character: %w", prefix, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: list %q: %w", prefix, err)
	}
	if dir, _, ok := cutLast(prefix, "/"); ok && target.CheckName(dir) != nil {
		return nil // no valid name starts with this prefix (and stores may refuse it)
	}
	pages := s3.NewListObjectsV2Paginator(t.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(t.cfg.Bucket), Prefix: aws.String(t.keyPrefix + prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return t.fail(ctx, "list", prefix, err)
		}
		for _, obj := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(obj.Key), t.keyPrefix)
			if target.CheckName(name) != nil {
				continue
			}
			if err := fn(target.Info{Name: name, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutLast slices s around the last instance of sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// Delete implements target.Target.
func (t *Target) Delete(ctx context.Context, name string) error {
	key, err := t.key("delete", name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: delete %q: %w", name, err)
	}
	if t.cfg.ObjectLock {
		return t.deleteVersions(ctx, name, key)
	}
	_, err = t.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(t.cfg.Bucket), Key: aws.String(key)})
	if err != nil && isNotFound(err) {
		var api interface{ ErrorCode() string }
		if !errors.As(err, &api) || api.ErrorCode() != "NoSuchBucket" {
			return nil // some stores answer 404 for a missing object
		}
	}
	return t.fail(ctx, "delete", name, err)
}

// AbortIncompleteUploads aborts the multipart uploads in progress of the
// objects whose names start with prefix ("" for all of the target's) that
// were started more than olderThan ago, and returns how many it aborted.
// Put aborts its own failed uploads; this removes the parts of uploads whose
// process (or store) died before it could, which the store otherwise keeps,
// and bills, until a bucket lifecycle rule (AbortIncompleteMultipartUpload)
// or the store's own expiry removes them. Give an olderThan longer than any
// backup takes, so uploads in progress are left alone. MinIO lists uploads
// only for an exact object name, so there prefix must be a whole name.
func (t *Target) AbortIncompleteUploads(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(t.cfg.Bucket), Prefix: aws.String(t.keyPrefix + prefix)}
	aborted := 0
	for {
		out, err := t.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, t.fail(ctx, "list uploads", prefix, err)
		}
		for _, u := range out.Uploads {
			if u.Initiated != nil && u.Initiated.After(cutoff) {
				continue
			}
			_, err := t.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(t.cfg.Bucket), Key: u.Key, UploadId: u.UploadId,
			})
			if err != nil && !isNotFound(err) {
				return aborted, t.fail(ctx, "abort upload", strings.TrimPrefix(aws.ToString(u.Key), t.keyPrefix), err)
			}
			aborted++
		}
		if !aws.ToBool(out.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}
