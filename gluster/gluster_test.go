//go:build gluster

package gluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/gfapi"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// glfs_fini takes about 10 seconds, so the tests share one Volume, closed
// by TestMain.
var shared struct {
	once sync.Once
	vol  *Volume
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.vol != nil {
		if err := shared.vol.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// serverConfig is the Config of the test server's volume.
func serverConfig(t *testing.T) Config {
	t.Helper()
	env := servertest.Require(t, "gluster")
	port, err := strconv.Atoi(env.Get(t, "PORT"))
	require.NoError(t, err)
	return Config{Host: env.Get(t, "HOST"), Port: port, Volume: env.Get(t, "VOLUME")}
}

// sharedVolume returns the process's connection to the test volume.
func sharedVolume(t *testing.T) *Volume {
	t.Helper()
	cfg := serverConfig(t)
	shared.once.Do(func() { shared.vol, shared.err = Connect(context.Background(), cfg) })
	require.NoError(t, shared.err, "connecting to the gluster test volume")
	return shared.vol
}

// newTarget returns a target on a fresh directory of the test volume,
// removed with its contents when the test ends, and that directory's path.
func newTarget(t *testing.T) (*Target, string) {
	t.Helper()
	v := sharedVolume(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	dir := "/gluster-test/" + hex.EncodeToString(rnd[:])
	tg, err := v.Open(t.Context(), dir, true)
	require.NoError(t, err)
	t.Cleanup(func() {
		removeAll(t, v.fs, dir)
		_ = v.fs.Rmdir("/gluster-test") // when no other test uses it
	})
	return tg, dir
}

func removeAll(t *testing.T, f *gfapi.FS, p string) {
	st, err := f.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	if !st.IsDir() {
		require.NoError(t, f.Unlink(p))
		return
	}
	for _, n := range rawNames(t, f, p) {
		removeAll(t, f, p+"/"+n)
	}
	require.NoError(t, f.Rmdir(p))
}

// rawNames lists a directory of the volume as it is, temporary files
// included, without "." and "..", sorted.
func rawNames(t *testing.T, f *gfapi.FS, dir string) []string {
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

func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) target.Target {
		tg, _ := newTarget(t)
		return tg
	})
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Host: "gluster1.example.com", Volume: "backups"}
	require.NoError(t, ok.Validate())
	for _, c := range []Config{
		{Host: "192.0.2.1", Volume: "v", Path: "/a/b/", Port: 24007, Transport: "tcp", LogLevel: "debug", FileMode: 0o600, DirMode: 0o700},
		{Host: "2001:db8::1", Volume: "v"},
		{Host: "/run/glusterd.socket", Transport: "unix", Volume: "v"},
	} {
		require.NoError(t, c.Validate(), "%+v", c)
	}
	for _, tc := range []struct {
		change func(*Config)
		field  string
	}{
		{func(c *Config) { c.Host = "" }, "Host"},
		{func(c *Config) { c.Host = "bad host" }, "Host"},
		{func(c *Config) { c.Host = "[2001:db8::1]" }, "Host"},
		{func(c *Config) { c.Port = 70000 }, "Port"},
		{func(c *Config) { c.Port = -1 }, "Port"},
		{func(c *Config) { c.Transport = "rdma" }, "Transport"},
		{func(c *Config) { c.Volume = "" }, "Volume"},
		{func(c *Config) { c.Volume = "vol/dir" }, "Volume"},
		{func(c *Config) { c.Path = "a/../b" }, "Path"},
		{func(c *Config) { c.Path = "a//b" }, "Path"},
		{func(c *Config) { c.Path = "a/" + target.ReservedPrefix + "x" }, "Path"},
		{func(c *Config) { c.FileMode = 0o400 }, "FileMode"},
		{func(c *Config) { c.FileMode = fs.ModeDir | 0o600 }, "FileMode"},
		{func(c *Config) { c.DirMode = 0o600 }, "DirMode"},
		{func(c *Config) { c.LogLevel = "loud" }, "LogLevel"},
		{func(c *Config) { c.ConnectTimeout = -time.Second }, "ConnectTimeout"},
		{func(c *Config) { c.MaxAttempts = -1 }, "MaxAttempts"},
	} {
		c := ok
		tc.change(&c)
		err := c.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument, "%+v", c)
		assert.Contains(t, err.Error(), "Config."+tc.field, "the error names the field")
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Host: "h", Volume: "v"}.withDefaults()
	assert.Equal(t, 24007, c.Port)
	assert.Equal(t, "tcp", c.Transport)
	assert.Equal(t, "/dev/null", c.LogFile)
	assert.Equal(t, "warning", c.LogLevel)
	assert.Equal(t, 30*time.Second, c.ConnectTimeout)
	assert.Equal(t, fs.FileMode(0o660), c.FileMode)
	assert.Equal(t, fs.FileMode(0o770), c.DirMode)
	assert.Equal(t, target.RetryPolicy{MaxAttempts: 7}, Config{MaxAttempts: 7}.RetryPolicy())
	assert.Equal(t, target.RetryPolicy{}, Config{}.RetryPolicy(), "the target package's defaults")
}

func TestParseShare(t *testing.T) {
	for _, tc := range []struct {
		share, host, volume, path string
	}{
		{"1.2.3.4:backup_vol", "1.2.3.4", "backup_vol", ""},
		{"gluster.example.com:backups", "gluster.example.com", "backups", ""},
		{"host:/vol", "host", "vol", ""},
		{"host:/vol/cinder/backups/", "host", "vol", "cinder/backups"},
		{"[2001:db8::1]:vol", "2001:db8::1", "vol", ""},
		{"[2001:db8::1]:/vol/dir", "2001:db8::1", "vol", "dir"},
		{"2001:db8::1:vol", "2001:db8::1", "vol", ""},
	} {
		c, err := ParseShare(tc.share)
		require.NoError(t, err, tc.share)
		assert.Equal(t, Config{Host: tc.host, Volume: tc.volume, Path: tc.path}, c, tc.share)
	}
	for _, share := range []string{"", "host", "host:", ":vol", "[::1:vol", "host:/", "host:/vol/../x", "bad host:vol"} {
		_, err := ParseShare(share)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "%q", share)
	}
}

// TestUnreachable: a server that refuses the connection, and one that
// accepts it and never answers, each give one clear error, the second
// within the connect timeout.
func TestUnreachable(t *testing.T) {
	ctx := t.Context()
	vol := serverConfig(t).Volume

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close()) // now nothing listens there
	_, err = New(ctx, Config{Host: "127.0.0.1", Port: port, Volume: vol})
	require.ErrorIs(t, err, target.ErrUnavailable)
	msg := err.Error()
	assert.Contains(t, msg, fmt.Sprintf("127.0.0.1:%d", port), "names the server")
	assert.Contains(t, msg, "Config.Host", "says what to check")
	assert.Equal(t, 1, strings.Count(msg, "gluster:"), "one error, not a chain of repeats: %s", msg)

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	start := time.Now()
	_, err = New(ctx, Config{Host: "127.0.0.1", Port: silent.Addr().(*net.TCPAddr).Port, Volume: vol, ConnectTimeout: time.Second})
	took := time.Since(start)
	require.ErrorIs(t, err, target.ErrUnavailable)
	assert.Contains(t, err.Error(), "ConnectTimeout")
	assert.GreaterOrEqual(t, took, time.Second)
	assert.Less(t, took, 3*time.Second, "New returns at the connect timeout")

	// A cancelled context ends the wait too.
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = New(cctx, Config{Host: "127.0.0.1", Port: silent.Addr().(*net.TCPAddr).Port, Volume: vol})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestNoSuchVolume(t *testing.T) {
	cfg := serverConfig(t)
	cfg.Volume = "no-such-volume"
	start := time.Now()
	_, err := New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrNotFound)
	msg := err.Error()
	assert.Contains(t, msg, `volume "no-such-volume" does not exist`)
	assert.Contains(t, msg, "Config.Volume")
	assert.Equal(t, 1, strings.Count(msg, "gluster:"), "one error: %s", msg)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestMissingPath(t *testing.T) {
	v := sharedVolume(t)
	_, err := v.Open(t.Context(), "no/such/dir", false)
	require.ErrorIs(t, err, target.ErrNotFound)
	assert.Contains(t, err.Error(), "CreatePath")
	_, err = v.Open(t.Context(), "bad/../path", true)
	require.ErrorIs(t, err, target.ErrInvalidArgument)

	tg, dir := newTarget(t)
	put(t, tg, "file", "x")
	_, err = v.Open(t.Context(), dir+"/file", true)
	require.ErrorIs(t, err, target.ErrInvalidArgument, "a file is not a root")
	_, err = v.Open(t.Context(), dir+"/file/below", true)
	require.Error(t, err)
}

func put(t *testing.T, tg target.Target, name, data string) {
	t.Helper()
	require.NoError(t, tg.Put(t.Context(), name, strings.NewReader(data), int64(len(data)), target.PutOptions{}), "Put %q", name)
}

func get(t *testing.T, tg target.Target, name string) string {
	t.Helper()
	rc, err := tg.Get(t.Context(), name, 0, -1)
	require.NoError(t, err, "Get %q", name)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

// TestLayout checks where the files go and their modes: Cinder's posix
// layout on the volume, below the target's directory.
func TestLayout(t *testing.T) {
	tg, dir := newTarget(t)
	assert.Equal(t, target.LayoutPosix, tg.CinderLayout())
	assert.Equal(t, "gluster://"+tg.cfg.Host+"/"+tg.cfg.Volume+dir, tg.String())
	name := "ab/cd/abcd1234/volume_v_20240101000000_backup_abcd1234-00001"
	put(t, tg, name, "chunk")
	f := tg.vol.fs
	st, err := f.Stat(dir + "/" + name)
	require.NoError(t, err)
	assert.Equal(t, uint32(0o660), st.Mode&0o7777)
	for _, d := range []string{"ab", "ab/cd", "ab/cd/abcd1234"} {
		st, err := f.Stat(dir + "/" + d)
		require.NoError(t, err)
		assert.True(t, st.IsDir())
		assert.Equal(t, uint32(0o770), st.Mode&0o7777, d)
	}
	require.NoError(t, tg.Delete(t.Context(), name))
	assert.Empty(t, rawNames(t, f, dir), "Delete removes the directories it emptied")
}

// blockingBody is a body that gives its first half and then blocks until
// its context is done.
type blockingBody struct {
	ctx     context.Context
	data    []byte
	half    int
	pos     int
	reached chan struct{}
	once    sync.Once
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if b.pos >= b.half {
		b.once.Do(func() { close(b.reached) })
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	n := copy(p, b.data[b.pos:b.half])
	b.pos += n
	return n, nil
}

func (b *blockingBody) Seek(off int64, whence int) (int64, error) {
	if off != 0 || whence != io.SeekCurrent {
		return 0, errors.New("blockingBody: only Seek(0, io.SeekCurrent)")
	}
	return int64(b.pos), nil
}

// TestTempNeverVisible: while a Put is half done, its data sits in a
// temporary file that Stat, Get and List do not show, and the real name
// holds nothing (or the old object); a cancelled Put leaves no trace.
func TestTempNeverVisible(t *testing.T) {
	for _, ifNotExists := range []bool{false, true} {
		t.Run(fmt.Sprintf("IfNotExists=%v", ifNotExists), func(t *testing.T) {
			tg, dir := newTarget(t)
			ctx := t.Context()
			put(t, tg, "other", "x")
			if !ifNotExists {
				put(t, tg, "dir/obj", "old")
			}
			data := bytes.Repeat([]byte("new data "), 400_000) // 3.6 MB: a few chunks are written before the body blocks
			pctx, cancel := context.WithCancel(ctx)
			body := &blockingBody{ctx: pctx, data: data, half: len(data) / 2, reached: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				done <- tg.Put(pctx, "dir/obj", body, int64(len(data)), target.PutOptions{IfNotExists: ifNotExists})
			}()
			select {
			case <-body.reached:
			case err := <-done:
				t.Fatalf("Put returned before its body blocked: %v", err)
			}
			// The temporary file is there, with data in it.
			raw := rawNames(t, tg.fs, dir+"/dir")
			var tmp []string
			for _, n := range raw {
				if strings.HasPrefix(n, target.ReservedPrefix) {
					tmp = append(tmp, n)
				}
			}
			require.Len(t, tmp, 1, "one temporary file in %v", raw)
			st, err := tg.fs.Stat(dir + "/dir/" + tmp[0])
			require.NoError(t, err)
			assert.Positive(t, st.Size, "data was written to the temporary file")

			// Nothing of it shows under the real name.
			var names []string
			require.NoError(t, tg.List(ctx, "", func(i target.Info) error { names = append(names, i.Name); return nil }))
			if ifNotExists {
				assert.Equal(t, []string{"other"}, names)
				_, err := tg.Stat(ctx, "dir/obj")
				require.ErrorIs(t, err, target.ErrNotFound)
				_, err = tg.Get(ctx, "dir/obj", 0, -1)
				require.ErrorIs(t, err, target.ErrNotFound)
			} else {
				assert.Equal(t, []string{"dir/obj", "other"}, names)
				assert.Equal(t, "old", get(t, tg, "dir/obj"))
			}
			_, err = tg.Stat(ctx, "dir/"+tmp[0])
			require.ErrorIs(t, err, target.ErrInvalidArgument, "a temporary name is no object name")

			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
			if ifNotExists {
				assert.Equal(t, []string{"other"}, rawNames(t, tg.fs, dir), "no temporary file and no directory left")
			} else {
				assert.Equal(t, []string{"obj"}, rawNames(t, tg.fs, dir+"/dir"), "no temporary file left")
				assert.Equal(t, "old", get(t, tg, "dir/obj"))
			}
		})
	}
}

// TestErrors: the errors a caller can act on name what to fix.
func TestErrors(t *testing.T) {
	tg, _ := newTarget(t)
	ctx := t.Context()
	put(t, tg, "a/b", "x")
	err := tg.Put(ctx, "a", strings.NewReader("y"), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrInvalidArgument, "an object where a directory is")
	assert.Contains(t, err.Error(), "a directory of that name exists")
	err = tg.Put(ctx, "a", strings.NewReader("y"), 1, target.PutOptions{IfNotExists: true})
	require.ErrorIs(t, err, target.ErrInvalidArgument, "IfNotExists where a directory is")
	err = tg.Put(ctx, "a/b/c", strings.NewReader("y"), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrInvalidArgument, "a directory where an object is")
	assert.Contains(t, err.Error(), "is a file")
	err = tg.Put(ctx, "a/b", strings.NewReader("y"), 1, target.PutOptions{IfNotExists: true})
	require.ErrorIs(t, err, target.ErrExists)
	assert.Equal(t, "x", get(t, tg, "a/b"))
}
