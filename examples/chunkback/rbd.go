//go:build ceph

package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/ceph/rbd"
)

// isRBD reports whether a backup source or restore destination names an RBD
// image: rbd://pool/image[@snapshot].
func isRBD(name string) bool { return strings.HasPrefix(name, "rbd://") }

// rbdURL is a parsed rbd:// source or destination.
type rbdURL struct {
	ref          rbd.ImageRef
	cfg          rbd.Config
	create       bool // destination: create a missing image (default true)
	keepExcess   bool // destination: leave bytes past the backup's end
	maxSnapshots int  // source: backup snapshots to keep on the image
}

// parseRBD reads rbd://pool/image[@snap]?conf=FILE&id=USER&keyring=FILE
// &connect_timeout=DUR&create=BOOL&keep_excess=BOOL&max_snapshots=N. The
// cluster options not in the query come from CEPH_ARGS (--conf/-c,
// --id/--user, --name/-n client.ID, --keyring/-k), then librados's
// defaults ($CEPH_CONF, /etc/ceph/ceph.conf, client.admin).
func parseRBD(raw string) (*rbdURL, error) {
	bad := func(format string, args ...any) error {
		return usageError{fmt.Sprintf("rbd image %s: ", redactRBD(raw)) + fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("%v (write rbd://pool/image[@snapshot])", err)
	}
	ref, err := rbd.ParseImageRef(u.Host + u.Path)
	if err != nil {
		return nil, bad("%v", err)
	}
	r := &rbdURL{ref: ref, create: true}
	r.cfg = cephArgs(os.Getenv("CEPH_ARGS"))
	q := u.Query()
	for key, vals := range q {
		v := vals[len(vals)-1]
		switch key {
		case "conf":
			r.cfg.Conf = v
		case "id", "user":
			r.cfg.User = strings.TrimPrefix(v, "client.")
		case "keyring":
			r.cfg.Keyring = v
		case "connect_timeout", "op_timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, bad("%s=%q: use a duration such as 30s", key, v)
			}
			if key == "connect_timeout" {
				r.cfg.ConnectTimeout = d
			} else {
				r.cfg.OpTimeout = d
			}
		case "create", "keep_excess":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad("%s=%q: use true or false", key, v)
			}
			if key == "create" {
				r.create = b
			} else {
				r.keepExcess = b
			}
		case "max_snapshots":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, bad("max_snapshots=%q: use a count of snapshots to keep (0 keeps all)", v)
			}
			r.maxSnapshots = n
		default:
			return nil, bad("unknown option %q (use conf, id, keyring, connect_timeout, op_timeout, create, keep_excess, max_snapshots)", key)
		}
	}
	if err := r.cfg.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	return r, nil
}

// cephArgs takes the connection options from CEPH_ARGS, as the ceph tools
// read it.
func cephArgs(env string) rbd.Config {
	var cfg rbd.Config
	f := strings.Fields(env)
	for i := 0; i < len(f); i++ {
		name, val, hasVal := strings.Cut(f[i], "=")
		if !hasVal && i+1 < len(f) {
			val = f[i+1]
		}
		used := true
		switch name {
		case "--conf", "-c":
			cfg.Conf = val
		case "--id", "--user":
			cfg.User = val
		case "--name", "-n":
			cfg.User = strings.TrimPrefix(val, "client.")
		case "--keyring", "-k":
			cfg.Keyring = val
		default:
			used = false
		}
		if used && !hasVal {
			i++
		}
	}
	return cfg
}

// redactRBD drops the query (paths of credentials) from an rbd URL for
// messages.
func redactRBD(raw string) string {
	s, _, _ := strings.Cut(raw, "?")
	return s
}

// openRBDSource prepares the backup of an RBD image into e: it connects,
// takes a snapshot (unless the URL names one), and sets o's size and
// changed extents. finish must be called with the backup's outcome; it
// prunes or removes snapshots and closes the connection.
func openRBDSource(ctx context.Context, e *backup.Engine, raw string, o *backup.BackupOptions) (io.Reader, func(*backup.Result, error) error, error) {
	r, err := parseRBD(raw)
	if err != nil {
		return nil, nil, err
	}
	c, err := rbd.Connect(ctx, r.cfg)
	if err != nil {
		return nil, nil, err
	}
	p, err := rbd.PrepareBackup(ctx, e, c, rbd.BackupOptions{Image: r.ref, Backup: *o, MaxSnapshots: r.maxSnapshots})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	*o = p.Options
	finish := func(res *backup.Result, err error) error {
		defer c.Close()
		_, err = p.Finish(ctx, res, err)
		return err
	}
	return p.Source, finish, nil
}

// restoreRBD restores backup id from e into an RBD image, created at the
// backup's size when missing (unless create=false).
func restoreRBD(ctx context.Context, e *backup.Engine, id, raw string, opts backup.RestoreOptions) (*backup.RestoreResult, error) {
	r, err := parseRBD(raw)
	if err != nil {
		return nil, err
	}
	if r.ref.Snapshot != "" {
		return nil, usageError{fmt.Sprintf("rbd image %s: a snapshot is read-only: restore into the image (drop @%s)", redactRBD(raw), r.ref.Snapshot)}
	}
	c, err := rbd.Connect(ctx, r.cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res, err := rbd.Restore(ctx, e, c, id, rbd.RestoreOptions{Image: r.ref, Create: r.create, KeepExcessBytes: r.keepExcess, Restore: opts})
	if err != nil {
		return nil, err
	}
	return res.RestoreResult, nil
}
