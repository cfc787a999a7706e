//go:build gluster

package gfapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
)

// glfs_fini takes about 10 seconds, so the tests share one FS, released
// by TestMain.
var shared struct {
	once sync.Once
	fs   *FS
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.fs != nil {
		if err := shared.fs.Fini(); err != nil {
			fmt.Fprintln(os.Stderr, "gfapi: Fini:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// connect returns a new, initialised FS of volume on the test server.
func connect(t *testing.T, env servertest.Env, volume string) (*FS, error) {
	t.Helper()
	f, err := New(volume)
	require.NoError(t, err)
	port, err := strconv.Atoi(env.Get(t, "PORT"))
	require.NoError(t, err)
	require.NoError(t, f.SetVolfileServer("tcp", env.Get(t, "HOST"), port))
	require.NoError(t, f.SetLogging("/dev/null", LogNone))
	return f, f.Init()
}

// testDir returns the shared FS and a fresh directory on it, removed with
// everything in it when the test ends.
func testDir(t *testing.T) (*FS, string) {
	t.Helper()
	env := servertest.Require(t, "gluster")
	shared.once.Do(func() { shared.fs, shared.err = connect(t, env, env.Get(t, "VOLUME")) })
	require.NoError(t, shared.err, "connecting to the gluster test volume")
	f := shared.fs
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	dir := "/gfapi-test-" + hex.EncodeToString(rnd[:])
	require.NoError(t, f.Mkdir(dir, 0o755))
	t.Cleanup(func() { removeAll(t, f, dir) })
	return f, dir
}

func removeAll(t *testing.T, f *FS, p string) {
	st, err := f.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	if !st.IsDir() {
		require.NoError(t, f.Unlink(p))
		return
	}
	for _, n := range readNames(t, f, p) {
		removeAll(t, f, p+"/"+n)
	}
	require.NoError(t, f.Rmdir(p))
}

// readNames lists a directory, without "." and "..", sorted.
func readNames(t *testing.T, f *FS, dir string) []string {
	t.Helper()
	d, err := f.OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	var names []string
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if e.Name != "." && e.Name != ".." {
			names = append(names, e.Name)
		}
	}
	slices.Sort(names)
	return names
}

func requireErrno(t *testing.T, err error, want syscall.Errno, msg string) {
	t.Helper()
	require.Error(t, err, msg)
	var errno syscall.Errno
	require.True(t, errors.As(err, &errno), "%s: %v is not a syscall.Errno", msg, err)
	require.Equal(t, want, errno, "%s: %v", msg, err)
}

func TestFileRoundTrip(t *testing.T) {
	f, dir := testDir(t)
	p := dir + "/file"
	fl, err := f.Creat(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	require.NoError(t, err)
	assert.Equal(t, p, fl.Name())

	data := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: several RPCs
	n, err := fl.WriteAt(data[100:], 100)
	require.NoError(t, err)
	require.Equal(t, len(data)-100, n)
	n, err = fl.WriteAt(data[:100], 0)
	require.NoError(t, err)
	require.Equal(t, 100, n)
	require.NoError(t, fl.Sync())

	st, err := fl.Stat()
	require.NoError(t, err)
	assert.True(t, st.IsRegular())
	assert.False(t, st.IsDir())
	assert.Equal(t, int64(len(data)), st.Size)
	assert.Equal(t, uint32(0o640), st.Mode&0o777)
	assert.WithinDuration(t, time.Now(), st.ModTime, time.Minute)

	got := make([]byte, len(data))
	n, err = fl.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	require.True(t, bytes.Equal(data, got), "content read back differs")

	// A read that runs past the end returns what there is and io.EOF.
	tail := make([]byte, 50)
	n, err = fl.ReadAt(tail, int64(len(data)-20))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, 20, n)
	require.Equal(t, data[len(data)-20:], tail[:20])
	n, err = fl.ReadAt(tail, int64(len(data)+5))
	require.ErrorIs(t, err, io.EOF)
	require.Zero(t, n)
	n, err = fl.ReadAt(nil, 0)
	require.NoError(t, err)
	require.Zero(t, n)

	require.NoError(t, fl.Truncate(10))
	require.NoError(t, fl.Chmod(0o600))
	require.NoError(t, fl.Close())

	st, err = f.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, int64(10), st.Size)
	assert.Equal(t, uint32(0o600), st.Mode&0o777)

	// O_EXCL refuses an existing file, with the errno.
	_, err = f.Creat(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	requireErrno(t, err, syscall.EEXIST, "Creat O_EXCL of an existing file")
	require.ErrorIs(t, err, fs.ErrExist)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, p, pe.Path)
	// (libgfapi does not check an fd's access mode: a WriteAt on a file
	// opened O_RDONLY succeeds. The gluster target never does that.)
}

func TestErrnos(t *testing.T) {
	f, dir := testDir(t)
	fl, err := f.Creat(dir+"/file", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	require.NoError(t, fl.Close())
	require.NoError(t, f.Mkdir(dir+"/sub", 0o755))
	fl, err = f.Creat(dir+"/sub/inner", os.O_WRONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, fl.Close())

	_, err = f.Stat(dir + "/missing")
	requireErrno(t, err, syscall.ENOENT, "Stat of a missing file")
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = f.Lstat(dir + "/file/below")
	requireErrno(t, err, syscall.ENOTDIR, "Lstat below a file")
	_, err = f.Open(dir+"/missing", os.O_RDONLY)
	requireErrno(t, err, syscall.ENOENT, "Open of a missing file")
	_, err = f.OpenDir(dir + "/missing")
	requireErrno(t, err, syscall.ENOENT, "OpenDir of a missing directory")
	requireErrno(t, f.Mkdir(dir+"/sub", 0o755), syscall.EEXIST, "Mkdir of an existing directory")
	requireErrno(t, f.Rmdir(dir+"/sub"), syscall.ENOTEMPTY, "Rmdir of a non-empty directory")
	requireErrno(t, f.Unlink(dir+"/missing"), syscall.ENOENT, "Unlink of a missing file")
	requireErrno(t, f.Rmdir(dir+"/file"), syscall.ENOTDIR, "Rmdir of a file")

	err = f.Link(dir+"/file", dir+"/sub/inner")
	requireErrno(t, err, syscall.EEXIST, "Link onto an existing file")
	var le *os.LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, dir+"/sub/inner", le.New)
	requireErrno(t, f.Rename(dir+"/missing", dir+"/x"), syscall.ENOENT, "Rename of a missing file")
	err = f.Rename(dir+"/file", dir+"/sub")
	require.Error(t, err, "Rename of a file onto a directory")
	require.True(t, errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY), "Rename onto a directory: %v", err)
}

func TestLinkRenameUnlink(t *testing.T) {
	f, dir := testDir(t)
	write := func(p, s string) {
		fl, err := f.Creat(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		require.NoError(t, err)
		_, err = fl.WriteAt([]byte(s), 0)
		require.NoError(t, err)
		require.NoError(t, fl.Close())
	}
	read := func(p string) string {
		fl, err := f.Open(p, os.O_RDONLY)
		require.NoError(t, err)
		defer fl.Close()
		b := make([]byte, 100)
		n, err := fl.ReadAt(b, 0)
		require.ErrorIs(t, err, io.EOF)
		return string(b[:n])
	}
	write(dir+"/a", "old")
	write(dir+"/b", "new")
	require.NoError(t, f.Link(dir+"/b", dir+"/c"))
	a, err := f.Stat(dir + "/b")
	require.NoError(t, err)
	c, err := f.Stat(dir + "/c")
	require.NoError(t, err)
	assert.True(t, a.SameFile(c), "a hard link is the same file")
	assert.Equal(t, uint64(2), c.Nlink)

	// An open file keeps its content when another is renamed over its name.
	old, err := f.Open(dir+"/a", os.O_RDONLY)
	require.NoError(t, err)
	require.NoError(t, f.Rename(dir+"/b", dir+"/a"))
	assert.Equal(t, "new", read(dir+"/a"))
	b := make([]byte, 3)
	_, err = old.ReadAt(b, 0)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	require.NoError(t, old.Close())

	require.NoError(t, f.Unlink(dir+"/c"))
	assert.Equal(t, []string{"a"}, readNames(t, f, dir))
}

func TestReadDir(t *testing.T) {
	f, dir := testDir(t)
	want := []string{"d"}
	require.NoError(t, f.Mkdir(dir+"/d", 0o700))
	for i := range 300 { // more than one readdirp reply
		n := fmt.Sprintf("file-%03d-%s", i, bytes.Repeat([]byte("n"), i%200))
		fl, err := f.Creat(dir+"/"+n, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		require.NoError(t, err)
		_, err = fl.WriteAt(make([]byte, i), 0)
		require.NoError(t, err)
		require.NoError(t, fl.Close())
		want = append(want, n)
	}
	slices.Sort(want)

	d, err := f.OpenDir(dir)
	require.NoError(t, err)
	var got []string
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if e.Name == "." || e.Name == ".." {
			continue
		}
		got = append(got, e.Name)
		require.True(t, e.HasStat, "readdirplus gives %q a stat", e.Name)
		if e.Name == "d" {
			assert.True(t, e.Stat.IsDir())
			continue
		}
		assert.True(t, e.Stat.IsRegular(), e.Name)
		var i int
		_, err = fmt.Sscanf(e.Name, "file-%03d-", &i)
		require.NoError(t, err)
		assert.Equal(t, int64(i), e.Stat.Size, e.Name)
	}
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "a second Close does nothing")
	slices.Sort(got)
	require.Equal(t, want, got)
	_, err = d.Next()
	require.ErrorIs(t, err, ErrClosed)
}

func TestClosedHandles(t *testing.T) {
	f, dir := testDir(t)
	fl, err := f.Creat(dir+"/x", os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, fl.Close())
	require.NoError(t, fl.Close(), "a second Close does nothing")
	_, err = fl.ReadAt(make([]byte, 1), 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, syscall.EBADF)
	_, err = fl.WriteAt([]byte("x"), 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, fl.Sync(), ErrClosed)
	_, err = fl.Stat()
	require.ErrorIs(t, err, ErrClosed)
}

func TestConcurrentReadAt(t *testing.T) {
	f, dir := testDir(t)
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	fl, err := f.Creat(dir+"/big", os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer fl.Close()
	_, err = fl.WriteAt(data, 0)
	require.NoError(t, err)

	const readers = 8
	var wg sync.WaitGroup
	errs := make([]error, readers)
	for i := range readers {
		wg.Go(func() {
			part := len(data) / readers
			buf := make([]byte, part)
			for range 5 {
				if _, err := fl.ReadAt(buf, int64(i*part)); err != nil {
					errs[i] = err
					return
				}
				if !bytes.Equal(buf, data[i*part:(i+1)*part]) {
					errs[i] = fmt.Errorf("reader %d read other bytes", i)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestInitErrors(t *testing.T) {
	env := servertest.Require(t, "gluster")
	start := time.Now()
	f, err := connect(t, env, "no-such-volume")
	requireErrno(t, err, syscall.ENOENT, "Init of a volume glusterd does not have")
	assert.Contains(t, err.Error(), "no-such-volume")
	require.Error(t, f.Fini(), "glfs_fini after a failed init reports EIO")
	require.NoError(t, f.Fini(), "a second Fini does nothing")
	assert.Less(t, time.Since(start), 5*time.Second, "a failed init is quick to fail and to release")

	// Nothing listens on port 1 of the loopback.
	f, err = New(env.Get(t, "VOLUME"))
	require.NoError(t, err)
	require.NoError(t, f.SetVolfileServer("tcp", "127.0.0.1", 1))
	err = f.Init()
	requireErrno(t, err, syscall.ENOTCONN, "Init against a closed port")
	_ = f.Fini()
	require.ErrorIs(t, f.Init(), ErrClosed, "Init after Fini")
	_, err = f.Stat("/")
	require.ErrorIs(t, err, ErrClosed, "Stat after Fini")
}

// TestGuard checks that closing waits for the calls in flight and refuses
// new ones.
func TestGuard(t *testing.T) {
	var g guard
	require.True(t, g.enter())
	require.True(t, g.enter())
	closed := make(chan bool)
	go func() { closed <- g.close() }()
	select {
	case <-closed:
		t.Fatal("close returned with calls in flight")
	case <-time.After(50 * time.Millisecond):
	}
	g.exit()
	select {
	case <-closed:
		t.Fatal("close returned with a call in flight")
	case <-time.After(50 * time.Millisecond):
	}
	require.False(t, g.enter(), "enter while closing")
	g.exit()
	require.True(t, <-closed)
	require.False(t, g.close(), "second close")
	require.False(t, g.enter(), "enter after close")
}
