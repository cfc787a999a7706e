package targeturl

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/swift"
	"github.com/chunkback/chunkback/target"
)

// swiftParams are the query parameters a swift:// URL may carry (none secret).
var swiftParams = []string{
	"auth", "auth_version", "region", "interface", "storage_policy", "ca_file", "insecure",
	"segment_size", "segment_container", "retry_attempts", "retry_backoff", "timeout", "connect_timeout",
}

// openSwift opens swift://container/prefix?auth_version=1&region=R&...
//
// Query parameters: auth (per_user|single_user; default per_user when
// OS_AUTH_TOKEN is set, single_user otherwise), auth_version (1|2|3),
// region, interface (public|internal|admin), storage_policy (for a container
// --create makes), ca_file, insecure (bool), segment_size (bytes; larger
// objects are stored as static large objects), segment_container,
// retry_attempts, retry_backoff, timeout and connect_timeout (Go durations
// or seconds).
//
// Environment: single_user: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD,
// OS_AUTH_VERSION (or OS_IDENTITY_API_VERSION; default: read from the auth
// URL's path, else 1), OS_TENANT_NAME (v2), OS_PROJECT_NAME,
// OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME (v3), OS_REGION_NAME,
// OS_INTERFACE; per_user: OS_AUTH_TOKEN and OS_STORAGE_URL; both: OS_CACERT,
// OS_INSECURE.
func openSwift(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := swiftConfigFromURL(u, os.Getenv)
	if err != nil {
		return scheme{}, err
	}
	cfg.CreateContainer = o.Create
	t, err := swift.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: t.Close}, nil
}

// swiftConfigFromURL builds the swift.Config a swift:// URL and the
// environment (getenv) describe.
func swiftConfigFromURL(u *url.URL, getenv func(string) string) (swift.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %s: "+format+": %w", append(append([]any{u.Redacted()}, args...), target.ErrInvalidArgument)...)
	}
	q, err := newQuery(u, swiftParams, "credentials do not belong in the URL: set OS_USERNAME and OS_PASSWORD (or OS_AUTH_TOKEN and OS_STORAGE_URL)", bad)
	if err != nil {
		return swift.Config{}, err
	}
	if u.Host == "" {
		return swift.Config{}, bad("no container: use swift://container/prefix")
	}
	param := func(name, env string) string {
		if v := q.Get(name); v != "" {
			return v
		}
		if env == "" {
			return ""
		}
		return getenv(env)
	}
	cfg := swift.Config{
		Container:        u.Host,
		Prefix:           strings.Trim(u.Path, "/"),
		Region:           param("region", "OS_REGION_NAME"),
		Interface:        strings.TrimSuffix(param("interface", "OS_INTERFACE"), "URL"), // publicURL is the catalog's old spelling
		StoragePolicy:    q.Get("storage_policy"),
		CAFile:           param("ca_file", "OS_CACERT"),
		SegmentContainer: q.Get("segment_container"),
	}
	switch a := q.Get("auth"); {
	case a == string(swift.AuthPerUser), a == "" && getenv("OS_AUTH_TOKEN") != "":
		cfg.AuthStrategy = swift.AuthPerUser
		cfg.Token, cfg.StorageURL = getenv("OS_AUTH_TOKEN"), getenv("OS_STORAGE_URL")
	case a == string(swift.AuthSingleUser), a == "":
		cfg.AuthStrategy = swift.AuthSingleUser
		cfg.AuthURL = getenv("OS_AUTH_URL")
		cfg.User, cfg.Key = getenv("OS_USERNAME"), getenv("OS_PASSWORD")
		cfg.Tenant, cfg.Project = getenv("OS_TENANT_NAME"), getenv("OS_PROJECT_NAME")
		cfg.UserDomain, cfg.ProjectDomain = getenv("OS_USER_DOMAIN_NAME"), getenv("OS_PROJECT_DOMAIN_NAME")
	default:
		return swift.Config{}, bad("auth=%q: use per_user (OS_AUTH_TOKEN, OS_STORAGE_URL) or single_user (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD)", a)
	}
	if v := q.Get("auth_version"); v != "" {
		if cfg.AuthVersion, err = strconv.Atoi(v); err != nil {
			return swift.Config{}, bad("auth_version=%q: use 1, 2 or 3", v)
		}
	} else if v := cmp.Or(getenv("OS_AUTH_VERSION"), getenv("OS_IDENTITY_API_VERSION")); v != "" {
		// OS_IDENTITY_API_VERSION may say "3" or "3.0".
		v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), ".")
		if cfg.AuthVersion, err = strconv.Atoi(v); err != nil {
			return swift.Config{}, bad("OS_AUTH_VERSION=%q: use 1, 2 or 3", v)
		}
	} else if cfg.AuthStrategy == swift.AuthSingleUser {
		cfg.AuthVersion = authVersionOf(cfg.AuthURL)
	}
	if cfg.AuthVersion == 2 {
		// OS_PROJECT_NAME is the v3 name of OS_TENANT_NAME.
		cfg.Tenant = cmp.Or(cfg.Tenant, cfg.Project)
		cfg.Project, cfg.UserDomain, cfg.ProjectDomain = "", "", ""
	}
	if cfg.AuthVersion == 3 && cfg.Project == "" {
		cfg.Project = cfg.Tenant
	}
	if cfg.AuthVersion != 2 {
		cfg.Tenant = ""
	}
	if cfg.AuthVersion <= 1 {
		cfg.Project, cfg.UserDomain, cfg.ProjectDomain = "", "", ""
	}

	if q.Get("insecure") != "" {
		q.boolean("insecure", &cfg.Insecure)
	} else if v := getenv("OS_INSECURE"); v != "" {
		if cfg.Insecure, err = strconv.ParseBool(v); err != nil {
			return swift.Config{}, bad("OS_INSECURE=%q: use true or false", v)
		}
	}
	q.size("segment_size", &cfg.SegmentSize)
	q.integer("retry_attempts", &cfg.RetryAttempts)
	q.duration("retry_backoff", &cfg.RetryBackoff)
	q.duration("timeout", &cfg.Timeout)
	q.duration("connect_timeout", &cfg.ConnectTimeout)
	if q.err != nil {
		return swift.Config{}, q.err
	}
	if err := cfg.Validate(); err != nil {
		return swift.Config{}, fmt.Errorf("--target %s: %w", u.Redacted(), err)
	}
	return cfg, nil
}

// authVersionOf guesses the auth version from an auth URL's path
// (.../v3, .../v2.0, .../auth/v1.0), as the swift client does; 1 otherwise.
func authVersionOf(authURL string) int {
	u, err := url.Parse(authURL)
	if err != nil {
		return 1
	}
	switch p := u.Path; {
	case strings.Contains(p, "v3"):
		return 3
	case strings.Contains(p, "v2"):
		return 2
	}
	return 1
}
