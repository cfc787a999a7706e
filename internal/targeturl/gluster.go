//go:build gluster

package targeturl

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/gluster"
	"github.com/chunkback/chunkback/target"
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
		return fmt.Errorf("--target %s: "+format+": %w", append(append([]any{u.Redacted()}, args...), target.ErrInvalidArgument)...)
	}
	q, err := newQuery(u, glusterParams, "GlusterFS has no credentials to put in the URL: use gluster://host[:port]/volume/path", bad)
	if err != nil {
		return gluster.Config{}, err
	}
	if u.Hostname() == "" {
		return gluster.Config{}, bad("no host: use gluster://host[:port]/volume/path (host:volume as Cinder's glusterfs_backup_share)")
	}
	volume, dir, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if volume == "" {
		return gluster.Config{}, bad("no volume: use gluster://host[:port]/volume/path")
	}
	cfg := gluster.Config{
		Host:     u.Hostname(),
		Volume:   volume,
		Path:     strings.Trim(dir, "/"),
		LogFile:  q.Get("log_file"),
		LogLevel: q.Get("log_level"),
	}
	if p := u.Port(); p != "" {
		if cfg.Port, err = strconv.Atoi(p); err != nil {
			return gluster.Config{}, bad("port %q: use a number", p)
		}
	}
	q.integer("max_attempts", &cfg.MaxAttempts)
	q.boolean("nosync", &cfg.NoSync)
	q.duration("connect_timeout", &cfg.ConnectTimeout)
	if q.err != nil {
		return gluster.Config{}, q.err
	}
	if err := cfg.Validate(); err != nil {
		return gluster.Config{}, fmt.Errorf("--target %s: %w", u.Redacted(), err)
	}
	return cfg, nil
}
