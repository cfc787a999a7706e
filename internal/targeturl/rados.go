//go:build ceph

package targeturl

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chunkback/chunkback/ceph"
	"github.com/chunkback/chunkback/target"
)

// radosParams are the query parameters a rados:// URL may carry. None is a
// secret: the key stays in the keyring file.
var radosParams = []string{
	"conf", "id", "keyring", "namespace", "chunk_size", "connect_timeout", "op_timeout", "max_attempts", "retry_interval",
}

// openRADOS opens rados://pool/prefix?conf=FILE&id=USER&keyring=FILE&namespace=NS
// with the ceph target.
//
// Query parameters: conf (ceph.conf; default $CEPH_CONF, then
// /etc/ceph/ceph.conf), id (cephx user without "client.", default cinder),
// keyring (default: the one ceph.conf names), namespace, chunk_size (bytes,
// default 134217728), connect_timeout and op_timeout (Go durations or
// seconds), max_attempts, retry_interval. Options.Create creates a missing
// pool.
func openRADOS(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := radosConfig(u)
	if err != nil {
		return scheme{}, err
	}
	cfg.CreatePool = o.Create
	t, err := ceph.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: t.Close}, nil
}

// radosConfig builds the ceph.Config a rados:// URL describes.
func radosConfig(u *url.URL) (ceph.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %s: "+format+": %w", append(append([]any{u.Redacted()}, args...), target.ErrInvalidArgument)...)
	}
	q, err := newQuery(u, radosParams, "credentials do not belong in the URL: give the path of a keyring with ?keyring=FILE", bad)
	if err != nil {
		return ceph.Config{}, err
	}
	if u.Host == "" {
		return ceph.Config{}, bad("no pool: use rados://pool/prefix")
	}
	cfg := ceph.Config{
		Pool:      u.Host,
		Prefix:    strings.Trim(u.Path, "/"),
		Conf:      q.Get("conf"),
		User:      q.Get("id"),
		Keyring:   q.Get("keyring"),
		Namespace: q.Get("namespace"),
	}
	if cfg.ChunkSize, err = radosInt(q.Values, "chunk_size"); err != nil {
		return ceph.Config{}, bad("%v", err)
	}
	attempts, err := radosInt(q.Values, "max_attempts")
	if err != nil {
		return ceph.Config{}, bad("%v", err)
	}
	cfg.MaxAttempts = int(attempts)
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{{"connect_timeout", &cfg.ConnectTimeout}, {"op_timeout", &cfg.OpTimeout}, {"retry_interval", &cfg.RetryInterval}} {
		if *d.to, err = radosDuration(q.Values, d.key); err != nil {
			return ceph.Config{}, bad("%v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return ceph.Config{}, bad("%w", err)
	}
	return cfg, nil
}

func radosInt(q url.Values, key string) (int64, error) {
	v := q.Get(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q is not a non-negative integer", key, v)
	}
	return n, nil
}

// radosDuration reads a Go duration ("90s") or a number of seconds.
func radosDuration(q url.Values, key string) (time.Duration, error) {
	v := q.Get(key)
	if v == "" {
		return 0, nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q is not a duration (such as 30s) or a number of seconds", key, v)
	}
	return d, nil
}
