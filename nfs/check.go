package nfs

import (
	"context"
	"fmt"
	"path"
	"strings"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/xdr"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// accessNeeded is what the target does in its directory: read and search
// it, create and write files, remove them.
const accessNeeded = gonfs.ACCESS3_READ | gonfs.ACCESS3_LOOKUP | gonfs.ACCESS3_MODIFY | gonfs.ACCESS3_EXTEND | gonfs.ACCESS3_DELETE

// Check implements target.Checker: it asks the MOUNT service for the
// export again (the server answers, exports the path and admits this
// client), looks the subdirectory up from the export's root (it still
// exists; nothing is created, whatever Config.CreateSubdirectory says), and
// asks the server with ACCESS whether the AUTH_SYS uid and gid may read,
// search, write and delete in it. Servers that check permissions only when
// an operation runs (nfs-ganesha's VFS export, go-nfs) grant every right in
// their ACCESS answer; there, only a write shows refused permissions (see
// target.Probe). With Config.MountPoint it is the posix target's Check of
// the mounted directory.
func (t *Target) Check(ctx context.Context) error {
	if t.local != nil {
		if err := t.local.Check(ctx); err != nil {
			return fmt.Errorf("nfs: %w", err)
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nfs: check: %w", err)
	}
	fh, err := t.mountExport(ctx)
	if err != nil {
		return fmt.Errorf("nfs: check %s: %w", t, err)
	}
	done := ""
	if t.cfg.Subdirectory != "" {
		for elem := range strings.SplitSeq(t.cfg.Subdirectory, "/") {
			done = path.Join(done, elem)
			next, a, err := t.c.lookup(ctx, fh, elem)
			switch {
			case hasStatus(err, gonfs.NFS3ErrNoEnt):
				return fmt.Errorf("nfs: check: the directory %s no longer exists on the export %s: create it, or open the target again with Config.CreateSubdirectory (--create): %w",
					done, t.export, target.ErrNotFound)
			case err != nil:
				return t.fail("check", done, err)
			case !a.isDir():
				return fmt.Errorf("nfs: check: %s on the export %s is not a directory: fix Config.Subdirectory: %w", done, t.export, target.ErrInvalidArgument)
			}
			fh = next
		}
	}
	granted, err := t.c.access(ctx, fh, accessNeeded)
	if err != nil {
		return t.fail("check", done, err)
	}
	if missing := accessNeeded &^ granted; missing != 0 {
		return fmt.Errorf("nfs: check: the server does not let AUTH_SYS uid %d gid %d %s in %s: check the owner and mode of the directory, the export's Squash (root_squash) and Access_Type, or set Config.UID/GID (?uid=&gid=): %w",
			t.uid, t.gid, accessWords(missing), t, target.ErrPermission)
	}
	return nil
}

// accessWords names the ACCESS3 bits of mask.
func accessWords(mask uint32) string {
	var words []string
	for _, b := range []struct {
		bit  uint32
		word string
	}{
		{gonfs.ACCESS3_READ, "read"}, {gonfs.ACCESS3_LOOKUP, "search"}, {gonfs.ACCESS3_MODIFY, "modify"},
		{gonfs.ACCESS3_EXTEND, "create files"}, {gonfs.ACCESS3_DELETE, "delete"},
	} {
		if mask&b.bit != 0 {
			words = append(words, b.word)
		}
	}
	return strings.Join(words, ", ")
}

// access asks the server which of the ACCESS3 rights in mask the
// credentials have on fh (RFC 1813 section 3.3.4).
func (c *client) access(ctx context.Context, fh []byte, mask uint32) (uint32, error) {
	r, err := c.call(ctx, "ACCESS", gonfs.NFSProc3Access, fh, mask)
	if err != nil {
		return 0, err
	}
	follows, err := xdr.ReadUint32(r) // post_op_attr
	if err != nil {
		return 0, malformed("ACCESS", err)
	}
	if follows != 0 {
		var a gonfs.Fattr
		if err := xdr.Read(r, &a); err != nil {
			return 0, malformed("ACCESS", err)
		}
	}
	granted, err := xdr.ReadUint32(r)
	if err != nil {
		return 0, malformed("ACCESS", err)
	}
	return granted, nil
}
