package nfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func TestNFSUnreachableServer(t *testing.T) {
	port := closedPort(t)
	start := time.Now()
	_, err := New(t.Context(), Config{Share: "127.0.0.1:/export", NFSPort: port, MountPort: port})
	took := time.Since(start)
	require.Error(t, err)
	t.Logf("error after %v: %v", took, err)
	// Cinder's 3 attempts, with 1 s and 2 s between them.
	assert.Less(t, took, 10*time.Second, "an unreachable server must fail quickly")
	assert.GreaterOrEqual(t, took, 3*time.Second, "the mount is tried 3 times, with a backoff")
	msg := err.Error()
	assert.Contains(t, msg, "after 3 attempts")
	assert.Contains(t, msg, "127.0.0.1:"+strconv.Itoa(port))
	assert.Contains(t, msg, "connection refused")
	assert.Contains(t, msg, "Config.MountPort", "the error says what to check")
	assert.Equal(t, 1, strings.Count(msg, "cannot talk to"), "one error, not one per attempt")
}

func TestNFSUnreachableHostTimesOut(t *testing.T) {
	// 192.0.2.0/24 (TEST-NET-1) is never routed: the connect either fails
	// at once (no route) or hangs until DialTimeout.
	start := time.Now()
	_, err := New(t.Context(), Config{Share: "192.0.2.1:/export", MountAttempts: 1, DialTimeout: time.Second})
	took := time.Since(start)
	require.Error(t, err)
	t.Logf("error after %v: %v", took, err)
	assert.Less(t, took, 5*time.Second)
	assert.Contains(t, err.Error(), "192.0.2.1:20048")
}

func TestNFSCancelledMount(t *testing.T) {
	port := closedPort(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(ctx, Config{Share: "127.0.0.1:/export", NFSPort: port, MountPort: port, MountAttempts: 10})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second, "the backoff honours the context")
}

func TestNFSRefusedExport(t *testing.T) {
	s := requireServer(t, "ganesha")
	cfg := s.config(t)
	cfg.Share = s.env.Get(t, "HOST") + ":/no/such/export"
	start := time.Now()
	_, err := New(t.Context(), cfg)
	require.Error(t, err)
	t.Logf("error: %v", err)
	// ganesha answers MNT3ERR_ACCES for a path it does not export.
	require.ErrorIs(t, err, target.ErrPermission)
	assert.True(t, target.IsPermanent(err))
	assert.Less(t, time.Since(start), 2*time.Second, "a refused export is not retried")
	msg := err.Error()
	assert.Contains(t, msg, `"/no/such/export"`, "the error names the export")
	assert.Contains(t, msg, "MNT3ERR_ACCES")
	assert.Contains(t, msg, "Config.Share")
	assert.NotContains(t, msg, "attempts")
}

func TestNFSMissingSubdirectory(t *testing.T) {
	s := requireServer(t, "ganesha")
	cfg := s.config(t)
	cfg.CreateSubdirectory = false
	_, err := New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrNotFound)
	assert.Contains(t, err.Error(), "CreateSubdirectory")

	cfg.CreateSubdirectory = true
	newTarget(t, cfg)
	fi, err := os.Stat(s.dir(cfg))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, os.FileMode(0o770), fi.Mode().Perm(), "created with DirMode")
}

func TestNFSPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory another uid cannot write")
	}
	s := requireServer(t, "ganesha")
	cfg := s.config(t)
	require.NoError(t, os.MkdirAll(s.dir(cfg), 0o755)) // root's, not writable by others
	uid, gid := uint32(54321), uint32(54322)
	cfg.UID, cfg.GID = &uid, &gid
	tg := newTarget(t, cfg)
	data := []byte("x")
	err := tg.Put(t.Context(), "obj", bytes.NewReader(data), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrPermission)
	t.Logf("error: %v", err)
	assert.Contains(t, err.Error(), "uid 54321 gid 54322")
	assert.Contains(t, err.Error(), "Config.UID/GID")
	assert.True(t, target.IsPermanent(err), "not retried")
}

// patternBody is a seekable body of size bytes that calls onRead with the
// number of bytes served so far.
type patternBody struct {
	size, pos int64
	onRead    func(served int64)
}

func (b *patternBody) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-b.pos))
	for i := range n {
		p[i] = byte((b.pos + int64(i)) * 7 >> 3)
	}
	b.pos += int64(n)
	if b.onRead != nil {
		b.onRead(b.pos)
	}
	return n, nil
}

func (b *patternBody) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		b.pos = off
	case io.SeekCurrent:
		b.pos += off
	default:
		return 0, errors.New("unsupported whence")
	}
	return b.pos, nil
}

// TestNFSTempNameUntilComplete watches the export's directory on the server
// while a large Put runs: the object's name appears only once Put returns,
// complete, and the bytes go to a temporary name meanwhile.
func TestNFSTempNameUntilComplete(t *testing.T) {
	for _, name := range []string{"ganesha", "gonfs"} {
		t.Run(name, func(t *testing.T) {
			s := requireServer(t, name)
			cfg := s.config(t)
			tg := newTarget(t, cfg)
			const size = 48 << 20
			dir := filepath.Join(s.dir(cfg), "d")
			var sawTemp, sawReal atomic.Bool
			check := func() {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), target.ReservedPrefix) {
						sawTemp.Store(true)
					}
					if e.Name() == "big" {
						sawReal.Store(true)
					}
				}
				if _, err := tg.Stat(t.Context(), "d/big"); !errors.Is(err, target.ErrNotFound) {
					sawReal.Store(true)
				}
			}
			body := &patternBody{size: size, onRead: func(served int64) {
				if served%(4<<20) == 0 {
					check()
				}
			}}
			require.NoError(t, tg.Put(t.Context(), "d/big", body, size, target.PutOptions{}))
			assert.True(t, sawTemp.Load(), "the data went to a temporary name")
			assert.False(t, sawReal.Load(), "the object's name was visible before Put returned")
			fi, err := os.Stat(filepath.Join(dir, "big"))
			require.NoError(t, err)
			assert.Equal(t, int64(size), fi.Size())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left")
		})
	}
}

// TestNFSServerStoppedMidWrite kills a private ganesha (same script, own
// ports and directory, so the shared one keeps serving other tests) by its
// pid file during a large Put, restarts it with ganesha.sh start, and checks
// that nothing is stored under the object's name and that the target works
// again.
func TestNFSServerStoppedMidWrite(t *testing.T) {
	requireServer(t, "ganesha") // honours CHUNKBACK_SKIP_SERVERS; needs ganesha installed
	state := t.TempDir()
	nfsPort, mountPort := closedPort(t), closedPort(t)
	script := func(action string) {
		cmd := exec.Command("bash", "../scripts/servers/ganesha.sh", action)
		cmd.Env = append(os.Environ(), "CHUNKBACK_SERVERS_DIR="+state,
			"GANESHA_NFS_PORT="+strconv.Itoa(nfsPort), "GANESHA_MOUNT_PORT="+strconv.Itoa(mountPort))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ganesha.sh %s: %s", action, out)
	}
	script("start")
	t.Cleanup(func() { script("stop") })
	exportDir := filepath.Join(state, "ganesha", "export")
	pidFile := filepath.Join(state, "ganesha", "ganesha.pid")

	tg := newTarget(t, Config{
		Share: "127.0.0.1:/export", NFSPort: nfsPort, MountPort: mountPort,
		Subdirectory: "crash", CreateSubdirectory: true,
		Timeout: 5 * time.Second, DialTimeout: time.Second,
	})
	const size = 256 << 20
	killed := make(chan struct{})
	var once atomic.Bool
	body := &patternBody{size: size, onRead: func(served int64) {
		if served >= 16<<20 && once.CompareAndSwap(false, true) {
			pid, err := os.ReadFile(pidFile)
			if err == nil {
				n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
				err = syscall.Kill(n, syscall.SIGKILL)
			}
			assert.NoError(t, err, "killing ganesha")
			close(killed)
		}
	}}
	start := time.Now()
	err := tg.Put(t.Context(), "vol/big", body, size, target.PutOptions{})
	took := time.Since(start)
	<-killed
	require.Error(t, err, "Put must fail when the server dies")
	t.Logf("Put failed after %v: %v", took, err)
	assert.False(t, target.IsPermanent(err), "a dead server is a transient failure")
	assert.Less(t, took, 20*time.Second, "bounded by the timeouts")

	// Nothing under the real name on the server's disk, dead or alive.
	requireNoObject := func() {
		t.Helper()
		entries, _ := os.ReadDir(filepath.Join(exportDir, "crash", "vol"))
		for _, e := range entries {
			assert.True(t, strings.HasPrefix(e.Name(), target.ReservedPrefix), "only temporary files may be left, found %q", e.Name())
		}
	}
	requireNoObject()

	script("start")
	requireNoObject()
	_, err = tg.Stat(t.Context(), "vol/big")
	require.ErrorIs(t, err, target.ErrNotFound)
	var names []string
	require.NoError(t, tg.List(t.Context(), "", func(i target.Info) error { names = append(names, i.Name); return nil }))
	assert.Empty(t, names)

	// The same target reconnects to the restarted server.
	data := []byte("after the restart")
	require.NoError(t, tg.Put(t.Context(), "vol/small", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	got, err := os.ReadFile(filepath.Join(exportDir, "crash", "vol", "small"))
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

// TestNFSGoNFSRestart restarts the gonfs server, which keeps file handles in
// memory only: the target mounts again by itself.
func TestNFSReadReplacedMidStream(t *testing.T) {
	for _, name := range []string{"ganesha", "gonfs"} {
		t.Run(name, func(t *testing.T) {
			s := requireServer(t, name)
			tg := newTarget(t, s.config(t))
			const size = 6 << 20
			old := bytes.Repeat([]byte("old!"), size/4)
			put := func(data []byte) {
				require.NoError(t, tg.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
			}
			put(old)
			rc, err := tg.Get(t.Context(), "obj", 0, -1)
			require.NoError(t, err)
			defer rc.Close()
			first := make([]byte, 2<<20)
			_, err = io.ReadFull(rc, first)
			require.NoError(t, err)
			put(bytes.Repeat([]byte("NEW!"), size/4))
			rest, err := io.ReadAll(rc)
			got := append(first, rest...)
			if err != nil {
				// The object was replaced: the read must fail rather than
				// mix versions.
				t.Logf("read failed as it should: %v", err)
				require.ErrorIs(t, err, target.ErrUnavailable)
				return
			}
			// Or the server still serves the old file (its handle pins it).
			require.True(t, bytes.Equal(old, got), "a read across a replacement returned neither version alone")
			t.Log("the server kept serving the replaced file whole")
		})
	}
}
