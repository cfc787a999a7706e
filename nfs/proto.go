package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"

	"github.com/chunkback/chunkback/target"
)

// This file holds the NFSv3 (RFC 1813) and MOUNT v3 procedures the target
// uses, on the message types of go-nfs-client. Its Target offers most of them
// too, but without a context, by path only (a LOOKUP from the root for
// every call), and without LINK, GUARDED CREATE, UNSTABLE WRITE with COMMIT
// verifiers or the error codes (it folds most of them into one string).

// maxIO bounds the bytes of one READ or WRITE, whatever the server offers.
const maxIO = 1 << 20

// NFSv3 procedures missing from go-nfs-client's constants.
const (
	procLink = 15
)

// NFSv3 CREATE modes and WRITE stability levels.
const (
	createGuarded = 1
	writeUnstable = 0
	writeFileSync = 2
)

// fsf3Link is the FSINFO property bit of servers that support hard links.
const fsf3Link = 0x0001

// statusError is an NFSv3 or MOUNT v3 status other than OK.
type statusError struct {
	proc   string // "LOOKUP", "MNT", ...
	status uint32
}

func (e *statusError) Error() string {
	name := statusName(e.status)
	if e.proc == "MNT" {
		name = strings.Replace(name, "NFS3ERR_", "MNT3ERR_", 1) // same codes
	}
	return fmt.Sprintf("%s: %s", e.proc, name)
}

// Is lets errors.Is match the io/fs errors of the POSIX errors the status
// stands for.
func (e *statusError) Is(t error) bool {
	switch t {
	case fs.ErrNotExist:
		return e.status == gonfs.NFS3ErrNoEnt
	case fs.ErrExist:
		return e.status == gonfs.NFS3ErrExist
	case fs.ErrPermission:
		return e.status == gonfs.NFS3ErrAcces || e.status == gonfs.NFS3ErrPerm
	}
	return false
}

// hasStatus reports whether err is an NFS status error with one of codes.
func hasStatus(err error, codes ...uint32) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.status == c {
			return true
		}
	}
	return false
}

// nfs3ErrJukebox is "try again later" (NFS3ERR_JUKEBOX).
const nfs3ErrJukebox = 10008

func statusName(s uint32) string {
	if s == nfs3ErrJukebox {
		return "NFS3ERR_JUKEBOX"
	}
	if err, ok := gonfs.NFS3Error(s).(*gonfs.Error); ok {
		return err.ErrorString
	}
	switch s {
	case gonfs.NFS3ErrPerm:
		return "NFS3ERR_PERM"
	case gonfs.NFS3ErrNoEnt:
		return "NFS3ERR_NOENT"
	case gonfs.NFS3ErrExist:
		return "NFS3ERR_EXIST"
	}
	return fmt.Sprintf("NFS status %d", s)
}

// client calls NFSv3 procedures on a pool of connections to one server.
type client struct {
	addr  string
	conns []*rpcConn
	next  atomic.Uint32
	cred  rpc.Auth
}

func (c *client) close() {
	for _, conn := range c.conns {
		conn.close()
	}
}

// call calls proc and checks its NFS status. The results follow the status
// in the returned reader.
func (c *client) call(ctx context.Context, name string, proc uint32, args ...any) (*bytes.Reader, error) {
	conn := c.conns[int(c.next.Add(1))%len(c.conns)]
	r, err := conn.call(ctx, gonfs.Nfs3Prog, gonfs.Nfs3Vers, proc, c.cred, args...)
	if err != nil {
		return nil, err
	}
	status, err := xdr.ReadUint32(r)
	if err != nil {
		return nil, malformed(name, err)
	}
	if status != gonfs.NFS3Ok {
		return nil, &statusError{proc: name, status: status}
	}
	return r, nil
}

func malformed(proc string, err error) error {
	return fmt.Errorf("malformed %s reply: %w: %w", proc, target.ErrUnavailable, err)
}

// attrs is what the target needs of a file's attributes.
type attrs struct {
	typ    uint32
	size   int64
	fileid uint64
	mtime  time.Time
}

func toAttrs(a *gonfs.Fattr) attrs {
	return attrs{typ: a.Type, size: int64(a.Filesize), fileid: a.Fileid, mtime: a.ModTime()}
}

func (a attrs) isDir() bool     { return a.typ == gonfs.NF3Dir }
func (a attrs) isRegular() bool { return a.typ == gonfs.NF3Reg }

func (c *client) getattr(ctx context.Context, fh []byte) (attrs, error) {
	r, err := c.call(ctx, "GETATTR", gonfs.NFSProc3GetAttr, fh)
	if err != nil {
		return attrs{}, err
	}
	var a gonfs.Fattr
	if err := xdr.Read(r, &a); err != nil {
		return attrs{}, malformed("GETATTR", err)
	}
	return toAttrs(&a), nil
}

// lookup returns the handle and attributes of name in the directory dir.
func (c *client) lookup(ctx context.Context, dir []byte, name string) ([]byte, attrs, error) {
	r, err := c.call(ctx, "LOOKUP", gonfs.NFSProc3Lookup, gonfs.Diropargs3{FH: dir, Filename: name})
	if err != nil {
		return nil, attrs{}, err
	}
	var res struct {
		FH   []byte
		Attr gonfs.PostOpAttr
	}
	if err := xdr.Read(r, &res); err != nil {
		return nil, attrs{}, malformed("LOOKUP", err)
	}
	if !res.Attr.IsSet {
		a, err := c.getattr(ctx, res.FH)
		return res.FH, a, err
	}
	return res.FH, toAttrs(&res.Attr.Attr), nil
}

// newHandle reads the optional handle of a CREATE or MKDIR reply, and looks
// the name up when the server left it out.
func (c *client) newHandle(ctx context.Context, proc string, r io.Reader, dir []byte, name string) ([]byte, error) {
	var res gonfs.PostOpFH3
	if err := xdr.Read(r, &res); err != nil {
		return nil, malformed(proc, err)
	}
	if res.IsSet {
		return res.FH, nil
	}
	fh, _, err := c.lookup(ctx, dir, name)
	return fh, err
}

func modeAttr(mode fs.FileMode) gonfs.Sattr3 {
	return gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: uint32(mode.Perm())}}
}

// createGuarded creates the regular file name in dir, failing with
// NFS3ERR_EXIST if it exists.
func (c *client) createGuarded(ctx context.Context, dir []byte, name string, mode fs.FileMode) ([]byte, error) {
	r, err := c.call(ctx, "CREATE", gonfs.NFSProc3Create,
		gonfs.Diropargs3{FH: dir, Filename: name}, uint32(createGuarded), modeAttr(mode))
	if err != nil {
		return nil, err
	}
	return c.newHandle(ctx, "CREATE", r, dir, name)
}

func (c *client) mkdir(ctx context.Context, dir []byte, name string, mode fs.FileMode) ([]byte, error) {
	r, err := c.call(ctx, "MKDIR", gonfs.NFSProc3Mkdir, gonfs.Diropargs3{FH: dir, Filename: name}, modeAttr(mode))
	if err != nil {
		return nil, err
	}
	return c.newHandle(ctx, "MKDIR", r, dir, name)
}

// write writes data at offset and returns how much the server took, whether
// it is already stable, and the server's write verifier.
func (c *client) write(ctx context.Context, fh []byte, offset uint64, data []byte, stable uint32) (n int, synced bool, verf uint64, err error) {
	r, err := c.call(ctx, "WRITE", gonfs.NFSProc3Write, struct {
		FH     []byte
		Offset uint64
		Count  uint32
		Stable uint32
		Data   []byte
	}{fh, offset, uint32(len(data)), stable, data})
	if err != nil {
		return 0, false, 0, err
	}
	var res struct {
		Wcc       gonfs.WccData
		Count     uint32
		Committed uint32
		Verf      uint64
	}
	if err := xdr.Read(r, &res); err != nil {
		return 0, false, 0, malformed("WRITE", err)
	}
	if int(res.Count) > len(data) {
		return 0, false, 0, malformed("WRITE", fmt.Errorf("the server wrote %d bytes of %d", res.Count, len(data)))
	}
	return int(res.Count), res.Committed == writeFileSync, res.Verf, nil
}

// commit flushes the file's unstable writes and returns the write verifier.
func (c *client) commit(ctx context.Context, fh []byte) (uint64, error) {
	r, err := c.call(ctx, "COMMIT", gonfs.NFSProc3Commit, struct {
		FH     []byte
		Offset uint64
		Count  uint32
	}{FH: fh})
	if err != nil {
		return 0, err
	}
	var res struct {
		Wcc  gonfs.WccData
		Verf uint64
	}
	if err := xdr.Read(r, &res); err != nil {
		return 0, malformed("COMMIT", err)
	}
	return res.Verf, nil
}

// read reads up to len(p) bytes at offset into p. It returns the file's
// attributes after the read when the server sent them.
func (c *client) read(ctx context.Context, fh []byte, offset uint64, p []byte) (n int, eof bool, after *attrs, err error) {
	r, err := c.call(ctx, "READ", gonfs.NFSProc3Read, struct {
		FH     []byte
		Offset uint64
		Count  uint32
	}{fh, offset, uint32(len(p))})
	if err != nil {
		return 0, false, nil, err
	}
	var res struct {
		Attr  gonfs.PostOpAttr
		Count uint32
		EOF   bool
		Len   uint32
	}
	if err := xdr.Read(r, &res); err != nil {
		return 0, false, nil, malformed("READ", err)
	}
	if res.Len > uint32(len(p)) || res.Len != res.Count {
		return 0, false, nil, malformed("READ", fmt.Errorf("%d bytes of data for %d asked", res.Len, len(p)))
	}
	if _, err := io.ReadFull(r, p[:res.Len]); err != nil {
		return 0, false, nil, malformed("READ", err)
	}
	if res.Attr.IsSet {
		a := toAttrs(&res.Attr.Attr)
		after = &a
	}
	return int(res.Len), res.EOF, after, nil
}

func (c *client) remove(ctx context.Context, dir []byte, name string) error {
	_, err := c.call(ctx, "REMOVE", gonfs.NFSProc3Remove, gonfs.Diropargs3{FH: dir, Filename: name})
	return err
}

func (c *client) rmdir(ctx context.Context, dir []byte, name string) error {
	_, err := c.call(ctx, "RMDIR", gonfs.NFSProc3RmDir, gonfs.Diropargs3{FH: dir, Filename: name})
	return err
}

// rename renames from in fromDir to to in toDir, replacing a file there.
func (c *client) rename(ctx context.Context, fromDir []byte, from string, toDir []byte, to string) error {
	_, err := c.call(ctx, "RENAME", gonfs.NFSProc3Rename,
		gonfs.Diropargs3{FH: fromDir, Filename: from}, gonfs.Diropargs3{FH: toDir, Filename: to})
	return err
}

// link makes name in dir a hard link to the file fh, failing with
// NFS3ERR_EXIST if name exists.
func (c *client) link(ctx context.Context, fh, dir []byte, name string) error {
	_, err := c.call(ctx, "LINK", procLink, fh, gonfs.Diropargs3{FH: dir, Filename: name})
	return err
}

// fsinfo returns the server's transfer sizes and properties for the file
// system of fh.
func (c *client) fsinfo(ctx context.Context, fh []byte) (*gonfs.FSInfo, error) {
	r, err := c.call(ctx, "FSINFO", gonfs.NFSProc3FSInfo, fh)
	if err != nil {
		return nil, err
	}
	var res gonfs.FSInfo
	if err := xdr.Read(r, &res); err != nil {
		return nil, malformed("FSINFO", err)
	}
	return &res, nil
}

// readDirPlus calls fn for every entry of the directory dir ("." and ".."
// excluded), page by page.
func (c *client) readDirPlus(ctx context.Context, dir []byte, fn func(*gonfs.EntryPlus)) error {
	var cookie, verf uint64
	for {
		r, err := c.call(ctx, "READDIRPLUS", gonfs.NFSProc3ReadDirPlus, struct {
			FH         []byte
			Cookie     uint64
			CookieVerf uint64
			DirCount   uint32
			MaxCount   uint32
		}{dir, cookie, verf, 32 << 10, 128 << 10})
		if err != nil {
			return err
		}
		var head struct {
			DirAttr    gonfs.PostOpAttr
			CookieVerf uint64
		}
		if err := xdr.Read(r, &head); err != nil {
			return malformed("READDIRPLUS", err)
		}
		verf = head.CookieVerf
		n := 0
		for {
			var item struct {
				Follows bool            `xdr:"union"`
				Entry   gonfs.EntryPlus `xdr:"unioncase=1"`
			}
			if err := xdr.Read(r, &item); err != nil {
				return malformed("READDIRPLUS", err)
			}
			if !item.Follows {
				break
			}
			n++
			cookie = item.Entry.Cookie
			if item.Entry.FileName != "." && item.Entry.FileName != ".." {
				fn(&item.Entry)
			}
		}
		eof, err := xdr.ReadUint32(r)
		if err != nil {
			return malformed("READDIRPLUS", err)
		}
		if eof != 0 {
			return nil
		}
		if n == 0 {
			return malformed("READDIRPLUS", errors.New("a page without entries and without EOF"))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Mount v3 (RFC 1813 appendix I).
const (
	mountProg    = 100005
	mountVers    = 3
	mountProcMnt = 1
	authNull     = 0
	authSys      = 1
)

// mount asks the MOUNT server on conn for the root handle of export.
func mount(ctx context.Context, conn *rpcConn, cred rpc.Auth, export string) ([]byte, error) {
	r, err := conn.call(ctx, mountProg, mountVers, mountProcMnt, cred, export)
	if err != nil {
		return nil, err
	}
	status, err := xdr.ReadUint32(r)
	if err != nil {
		return nil, malformed("MNT", err)
	}
	if status != 0 {
		return nil, &statusError{proc: "MNT", status: status}
	}
	var res struct {
		FH      []byte
		Flavors []uint32
	}
	if err := xdr.Read(r, &res); err != nil {
		return nil, malformed("MNT", err)
	}
	// AUTH_SYS is what this client speaks; servers that list only
	// AUTH_NULL (go-nfs) take it too. An export for Kerberos only does not.
	ok := len(res.Flavors) == 0
	for _, f := range res.Flavors {
		ok = ok || f == authSys || f == authNull
	}
	if !ok {
		return nil, fmt.Errorf("the export %q accepts only the RPC security flavors %v, and this client speaks AUTH_SYS (sec=sys) only: allow sec=sys on the export: %w",
			export, res.Flavors, target.ErrPermission)
	}
	return res.FH, nil
}
