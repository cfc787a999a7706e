//go:build gluster

package targeturl

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chunkback/chunkback/gluster"
)

// glusterParams are the query parameters a gluster:// URL may carry (none
// secret: GlusterFS's client has no password).
var glusterParams = []string{"log_file", "log_level", "connect_timeout", "max_attempts", "nosync"}

// openGluster opens gluster://host[:port]/volume/path with the gluster
// target (libgfapi): host and port are glusterd's (default port 24007),
// volume the GlusterFS volume (the host:volume of Cinder's
// glusterfs_backup_share) and path a directory inside it.
//
// Query parameters: log_file (libgfapi's log, default /dev/null),
// log_level (none|critical|error|warning|info|debug|trace),
// connect_timeout (Go duration or seconds, default 30s), max_attempts,
// nosync (bool). Options.Create creates a missing path.
//
// Closing the target takes about 10 seconds: libgfapi's glfs_fini.
func openGluster(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := glusterConfig(u)
	if err != nil {
		return scheme{}, err
	}
	cfg.CreatePath = o.Create
	cfg.NoSync = cfg.NoSync || o.NoSync
	t, err := gluster.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	// glfs_fini takes about 10 s whatever is left to do, and every Put is on
	// the bricks (fsynced, renamed) before it returns: so Close does not make
	// a command wait for it. A process that exits sooner just drops the
	// connection, as a crash would, which loses nothing.
	closeInBackground := func() error {
		go func() { _ = t.Close() }()
		return nil
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: closeInBackground}, nil
}

// glusterConfig builds the gluster.Config a gluster:// URL describes.
func glusterConfig(u *url.URL) (gluster.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %s: "+format, append([]any{u.Redacted()}, args...)...)
	}
	if u.User != nil {
		return gluster.Config{}, bad("GlusterFS has no credentials to put in the URL: use gluster://host[:port]/volume/path")
	}
	if u.Hostname() == "" {
		return gluster.Config{}, bad("no host: use gluster://host[:port]/volume/path (host:volume as Cinder's glusterfs_backup_share)")
	}
	volume, dir, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if volume == "" {
		return gluster.Config{}, bad("no volume: use gluster://host[:port]/volume/path")
	}
	q := u.Query()
	for k := range q {
		if !slices.Contains(glusterParams, k) {
			return gluster.Config{}, bad("unknown parameter %q (known: %s)", k, strings.Join(glusterParams, ", "))
		}
	}
	cfg := gluster.Config{
		Host:     u.Hostname(),
		Volume:   volume,
		Path:     strings.Trim(dir, "/"),
		LogFile:  q.Get("log_file"),
		LogLevel: q.Get("log_level"),
	}
	var err error
	if p := u.Port(); p != "" {
		if cfg.Port, err = strconv.Atoi(p); err != nil {
			return gluster.Config{}, bad("port %q: use a number", p)
		}
	}
	if v := q.Get("max_attempts"); v != "" {
		if cfg.MaxAttempts, err = strconv.Atoi(v); err != nil {
			return gluster.Config{}, bad("max_attempts=%q: use a whole number", v)
		}
	}
	if v := q.Get("nosync"); v != "" {
		if cfg.NoSync, err = strconv.ParseBool(v); err != nil {
			return gluster.Config{}, bad("nosync=%q: use true or false", v)
		}
	}
	if v := q.Get("connect_timeout"); v != "" {
		if secs, aerr := strconv.Atoi(v); aerr == nil {
			cfg.ConnectTimeout = time.Duration(secs) * time.Second
		} else if cfg.ConnectTimeout, err = time.ParseDuration(v); err != nil {
			return gluster.Config{}, bad("connect_timeout=%q: use seconds or a duration such as 90s", v)
		}
	}
	if err := cfg.Validate(); err != nil {
		return gluster.Config{}, fmt.Errorf("--target %s: %w", u.Redacted(), err)
	}
	return cfg, nil
}
