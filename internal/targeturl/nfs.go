package targeturl

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chunkback/chunkback/nfs"
	"github.com/chunkback/chunkback/target"
)

// nfsQuery lists the query parameters of nfs:// URLs.
var nfsQuery = []string{"export", "mount_port", "uid", "gid", "mount_attempts", "timeout", "connections", "privileged_port"}

// openNFS opens nfs://host[:port]/export/path?mount_port=N&uid=U&gid=G with
// the nfs target, which speaks NFSv3 itself (no kernel mount):
//
//   - host is a host name, an IPv4 address or a bracketed IPv6 address;
//     port is the NFS port (default 2049);
//   - the first element of the path is the export and the rest the
//     directory below it that holds the backups; for an export of several
//     elements, name it with export=/srv/nfs (the path must start with it);
//   - mount_port is the MOUNT port (default 20048; no portmapper is
//     asked), uid and gid the AUTH_SYS credentials (default: the user
//     running the command), mount_attempts the mount tries (default 3),
//     timeout the bound of each call (a Go duration, default 60s),
//     connections the TCP connections (default 4), privileged_port=true
//     a source port below 1024 for "secure" exports.
//
// No credentials are involved: AUTH_SYS sends the uid and gid as they are.
// Options.Create creates the directory below the export.
func openNFS(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := nfsConfig(u)
	if err != nil {
		return scheme{}, err
	}
	cfg.CreateSubdirectory = o.Create
	cfg.NoSync = o.NoSync
	t, err := nfs.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: t.Close}, nil
}

// nfsConfig turns an nfs:// URL into the target's configuration.
func nfsConfig(u *url.URL) (nfs.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %q: "+format+"; the form is nfs://host[:port]/export/path?mount_port=N&uid=U&gid=G: %w",
			append(append([]any{u.Redacted()}, args...), target.ErrInvalidArgument)...)
	}
	var cfg nfs.Config
	q, err := newQuery(u, nfsQuery, "nfs URLs take no user or password (AUTH_SYS sends uid and gid: use ?uid=&gid=)", bad)
	if err != nil {
		return cfg, err
	}
	host := u.Hostname()
	if host == "" {
		return cfg, bad("no host")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return cfg, bad("port %q is not a TCP port", p)
		}
		cfg.NFSPort = n
	}
	p := "/" + strings.Trim(u.Path, "/")
	if p == "/" {
		return cfg, bad("no export path")
	}
	export := q.Get("export")
	switch {
	case export != "":
		export = "/" + strings.Trim(export, "/")
		rest, ok := strings.CutPrefix(p, export)
		if !ok || (rest != "" && rest[0] != '/') {
			return cfg, bad("the path %s does not start with the export %s", p, export)
		}
		cfg.Subdirectory = strings.Trim(rest, "/")
	default:
		first, rest, _ := strings.Cut(p[1:], "/")
		export, cfg.Subdirectory = "/"+first, rest
	}
	cfg.Share = host + ":" + export

	intParam := func(key string, dst *int) error {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return bad("%s=%q is not a positive number", key, v)
			}
			*dst = n
		}
		return nil
	}
	for key, dst := range map[string]*int{"mount_port": &cfg.MountPort, "mount_attempts": &cfg.MountAttempts, "connections": &cfg.Connections} {
		if err := intParam(key, dst); err != nil {
			return cfg, err
		}
	}
	for key, dst := range map[string]**uint32{"uid": &cfg.UID, "gid": &cfg.GID} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return cfg, bad("%s=%q is not a numeric id", key, v)
			}
			id := uint32(n)
			*dst = &id
		}
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, bad("timeout=%q is not a positive duration such as 30s", v)
		}
		cfg.Timeout = d
	}
	if q.boolean("privileged_port", &cfg.PrivilegedPort); q.err != nil {
		return cfg, q.err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("--target %q: %w", u.Redacted(), err)
	}
	return cfg, nil
}
