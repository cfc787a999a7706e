package targeturl

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/chunkback/chunkback/s3"
	"github.com/chunkback/chunkback/target"
)

// s3Params are the query parameters an s3:// URL may carry (none secret).
var s3Params = []string{
	"endpoint", "region", "path_style", "checksum", "ca_bundle", "insecure", "storage_class",
	"max_attempts", "retry_mode", "md5", "timeout", "max_pool_connections", "if_not_exists",
	"part_size", "multipart_threshold", "part_concurrency", "profile", "sse", "sse_kms_key_id", "object_lock",
}

// openS3 opens s3://bucket/prefix?endpoint=URL&region=R&path_style=true&...
//
// Query parameters: endpoint, region, path_style (bool), checksum
// (when_supported|when_required), ca_bundle (file), insecure (bool),
// storage_class, max_attempts, retry_mode (legacy|standard|adaptive), md5
// (bool, default true), timeout (Go duration or seconds), max_pool_connections,
// if_not_exists (conditional|check), part_size, multipart_threshold (bytes),
// part_concurrency, profile, sse (AES256 for SSE-S3, aws:kms for SSE-KMS),
// sse_kms_key_id (the KMS key of SSE-KMS: an ID, ARN or alias, not secret),
// object_lock (bool: S3 object lock on every object, for write-once backups;
// with --create, a new bucket is made with object lock enabled).
//
// Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
// (without them the SDK's default credential chain: AWS_PROFILE, shared
// files, web identity, instance role), AWS_REGION, AWS_CA_BUNDLE,
// CHUNKBACK_S3_SSE_C_KEY (base64 of a 32-byte SSE-C key), HTTP_PROXY,
// HTTPS_PROXY, NO_PROXY.
func openS3(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := s3ConfigFromURL(u, os.Getenv)
	if err != nil {
		return scheme{}, err
	}
	cfg.CreateBucket = o.Create
	t, err := s3.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: t.Close}, nil
}

// s3ConfigFromURL builds the s3.Config an s3:// URL and the environment
// (getenv) describe.
func s3ConfigFromURL(u *url.URL, getenv func(string) string) (s3.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %s: "+format+": %w", append(append([]any{u.Redacted()}, args...), target.ErrInvalidArgument)...)
	}
	q, err := newQuery(u, s3Params, "credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", bad)
	if err != nil {
		return s3.Config{}, err
	}
	if u.Host == "" {
		return s3.Config{}, bad("no bucket: use s3://bucket/prefix")
	}
	cfg := s3.Config{
		Bucket:       u.Host,
		Prefix:       strings.Trim(u.Path, "/"),
		Endpoint:     q.Get("endpoint"),
		Region:       q.Get("region"),
		AccessKey:    getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"),
		Profile:      q.Get("profile"),
		CABundle:     q.Get("ca_bundle"),
		StorageClass: q.Get("storage_class"),
		RetryMode:    q.Get("retry_mode"),
		IfNotExists:  s3.IfNotExistsMode(q.Get("if_not_exists")),

		ServerSideEncryption: q.Get("sse"),
		SSEKMSKeyID:          q.Get("sse_kms_key_id"),
	}
	if cfg.AccessKey == "" {
		cfg.SessionToken = "" // belongs to the default chain's keys, which the SDK reads itself
	}
	switch c := q.Get("checksum"); c {
	case "", s3.ChecksumWhenSupported, s3.ChecksumWhenRequired:
		cfg.RequestChecksum = c
	default:
		return s3.Config{}, bad("checksum=%q: use when_supported or when_required", c)
	}
	md5 := true
	q.boolean("path_style", &cfg.PathStyle)
	q.boolean("insecure", &cfg.InsecureSkipVerify)
	q.boolean("md5", &md5)
	q.boolean("object_lock", &cfg.ObjectLock)
	cfg.DisableContentMD5 = !md5
	q.integer("max_attempts", &cfg.MaxAttempts)
	q.integer("max_pool_connections", &cfg.MaxPoolConnections)
	q.integer("part_concurrency", &cfg.PartConcurrency)
	q.size("part_size", &cfg.PartSize)
	q.size("multipart_threshold", &cfg.MultipartThreshold)
	q.duration("timeout", &cfg.Timeout)
	if q.err != nil {
		return s3.Config{}, q.err
	}
	if k := getenv("CHUNKBACK_S3_SSE_C_KEY"); k != "" {
		if cfg.SSECustomerKey, err = base64.StdEncoding.DecodeString(k); err != nil {
			return s3.Config{}, bad("CHUNKBACK_S3_SSE_C_KEY is not base64: give the 32-byte key base64-encoded (openssl rand -base64 32)")
		}
	}
	if err := cfg.Validate(); err != nil {
		return s3.Config{}, fmt.Errorf("--target %s: %w", u.Redacted(), err)
	}
	return cfg, nil
}
