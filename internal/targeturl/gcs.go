package targeturl

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/target"
)

// gcsQuery returns the query parameters of gs:// URLs.
func gcsQuery() []string {
	return []string{"endpoint", "anonymous", "project", "reader_chunk_size", "writer_chunk_size", "num_retries",
		"retry_error_codes", "location", "storage_class", "proxy", "user_agent"}
}

// openGCS opens gs://bucket/prefix with the gcs target:
//
//   - the path below the bucket, if any, is the prefix of the objects;
//   - endpoint=URL points at another server (an emulator: add
//     anonymous=true, or set STORAGE_EMULATOR_HOST instead), project=ID is
//     the project a bucket is created in, reader_chunk_size and
//     writer_chunk_size are in bytes (-1: one request), num_retries and
//     retry_error_codes=429,408 configure the retries, location and
//     storage_class the bucket that --create makes, proxy=URL an HTTP
//     proxy and user_agent the product named in requests (see gcs.Config
//     for the defaults, which are those of Cinder's GCS driver).
//
// Credentials come from the environment only: GOOGLE_APPLICATION_CREDENTIALS
// names a credentials file (a service-account key); without it, the other
// Application Default Credentials (gcloud's, the machine's service
// account, workload identity). STORAGE_EMULATOR_HOST=host:port points the
// client at an emulator and sends no credentials. GOOGLE_CLOUD_PROJECT is
// the project when project= is not given. Options.Create creates a missing
// bucket.
func openGCS(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := gcsConfig(u, os.Getenv)
	if err != nil {
		return scheme{}, err
	}
	cfg.CreateBucket = o.Create
	t, err := gcs.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: t.Close}, nil
}

// gcsConfig turns a gs:// URL and the environment into the target's
// configuration.
func gcsConfig(u *url.URL, getenv func(string) string) (gcs.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %q: "+format+"; the form is gs://bucket/prefix (credentials from GOOGLE_APPLICATION_CREDENTIALS): %w",
			append(append([]any{u.Redacted()}, args...), target.ErrInvalidArgument)...)
	}
	var cfg gcs.Config
	q, err := newQuery(u, gcsQuery(), "gs URLs take no user or password: set GOOGLE_APPLICATION_CREDENTIALS to a credentials file", bad)
	if err != nil {
		return cfg, err
	}
	if u.Port() != "" {
		return cfg, bad("the host of a gs URL is the bucket, not host:port (for an emulator add ?endpoint=http://host:port)")
	}
	cfg.Bucket = u.Hostname()
	if cfg.Bucket == "" {
		return cfg, bad("no bucket")
	}
	cfg.Prefix = strings.Trim(u.Path, "/")
	cfg.Endpoint = q.Get("endpoint")
	cfg.ProjectID = q.Get("project")
	if cfg.ProjectID == "" {
		cfg.ProjectID = getenv("GOOGLE_CLOUD_PROJECT")
	}
	cfg.CredentialsFile = getenv("GOOGLE_APPLICATION_CREDENTIALS")
	q.boolean("anonymous", &cfg.Anonymous)
	if cfg.Anonymous {
		cfg.CredentialsFile = "" // anonymous wins over the environment
	}
	q.integer("reader_chunk_size", &cfg.ReaderChunkSize)
	q.integer("writer_chunk_size", &cfg.WriterChunkSize)
	q.integer("num_retries", &cfg.NumRetries)
	if q.err != nil {
		return cfg, q.err
	}
	if v := q.Get("retry_error_codes"); v != "" {
		for code := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(code))
			if err != nil {
				return cfg, bad("retry_error_codes=%q is not a comma-separated list of HTTP statuses such as 429,408", v)
			}
			cfg.RetryErrorCodes = append(cfg.RetryErrorCodes, n)
		}
	}
	cfg.BucketLocation = q.Get("location")
	cfg.StorageClass = strings.ToUpper(q.Get("storage_class"))
	cfg.ProxyURL = q.Get("proxy")
	cfg.UserAgent = q.Get("user_agent")
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("--target %q: %w", u.Redacted(), err)
	}
	return cfg, nil
}
