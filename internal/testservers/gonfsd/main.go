// Command gonfsd serves a directory over NFSv3 with github.com/willscott/go-nfs,
// the second, pure-Go server the nfs target is tested against (the first is
// nfs-ganesha). scripts/servers/gonfs.sh builds and starts it:
//
//	gonfsd -root DIR -listen 127.0.0.1:PORT
//
// The MOUNT and NFS programs share the one listening port, and there is no
// portmapper: clients dial the port directly. It is a test server: it checks
// no credentials (AUTH_SYS uid/gid are ignored; files belong to the user
// running it) and, as go-nfs does, keeps file handles in an in-memory cache,
// so handles do not survive a restart.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// handleCacheSize bounds the file handles the server remembers. The
// conformance suite's listing test alone writes 1000 objects, and go-nfs
// answers a handle that fell out of its cache with NFS3ERR_STALE.
const handleCacheSize = 1 << 16

func main() {
	root := flag.String("root", "", "directory to export (required)")
	listen := flag.String("listen", "127.0.0.1:2049", "address to serve MOUNT and NFS on")
	verbose := flag.Bool("v", false, "log every error go-nfs reports")
	flag.Parse()
	if *root == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gonfsd -root DIR [-listen 127.0.0.1:PORT] [-v]")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		log.Fatalf("gonfsd: root %q: %v", *root, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		log.Fatalf("gonfsd: root %s is not a directory (%v)", abs, err)
	}
	if !*verbose {
		nfs.Log.SetLevel(nfs.FatalLevel)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("gonfsd: %v", err)
	}
	log.Printf("gonfsd: serving %s on %s", abs, l.Addr())
	// BoundOS resolves every path below the root, symbolic links included.
	fs := changeFS{Filesystem: osfs.New(abs, osfs.WithBoundOS()), root: abs}
	handler := nfshelper.NewCachingHandler(nfshelper.NewNullAuthHandler(fs), handleCacheSize)
	log.Fatalf("gonfsd: %v", nfs.Serve(l, handler))
}

// changeFS adds billy.Change (chmod, chown, utimes) to an osfs file system,
// so that SETATTR and the modes given to CREATE and MKDIR work. Without it
// go-nfs refuses them.
type changeFS struct {
	billy.Filesystem
	root string
}

var _ billy.Change = changeFS{}

func (fs changeFS) abs(name string) string { return filepath.Join(fs.root, filepath.FromSlash(name)) }

// Chmod implements billy.Change.
func (fs changeFS) Chmod(name string, mode os.FileMode) error { return os.Chmod(fs.abs(name), mode) }

// Lchown implements billy.Change.
func (fs changeFS) Lchown(name string, uid, gid int) error { return os.Lchown(fs.abs(name), uid, gid) }

// Chown implements billy.Change.
func (fs changeFS) Chown(name string, uid, gid int) error { return os.Chown(fs.abs(name), uid, gid) }

// Chtimes implements billy.Change.
func (fs changeFS) Chtimes(name string, atime, mtime time.Time) error {
	return os.Chtimes(fs.abs(name), atime, mtime)
}
