//go:build ceph

package ceph_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/ceph"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// clusterConfig returns a Config for the test cluster (scripts/servers/ceph.sh)
// in a namespace of its own, so tests never see each other's objects.
func clusterConfig(t *testing.T) ceph.Config {
	t.Helper()
	env := servertest.Require(t, "ceph")
	return ceph.Config{
		Conf:           env.Get(t, "CONF"),
		User:           env.Get(t, "CLIENT_ID"),
		Keyring:        env.Get(t, "KEYRING"),
		Pool:           env.Get(t, "POOL"),
		Namespace:      "test-" + randomHex(6),
		ConnectTimeout: 20 * time.Second,
		OpTimeout:      30 * time.Second,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// open opens a target and, at the end of the test, deletes what is left in
// it and closes it.
func open(t *testing.T, cfg ceph.Config) *ceph.Target {
	t.Helper()
	tg, err := ceph.New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		var names []string
		_ = tg.List(ctx, "", func(info target.Info) error {
			names = append(names, info.Name)
			return nil
		})
		for _, name := range names {
			_ = tg.Delete(ctx, name)
		}
		require.NoError(t, tg.Close())
	})
	return tg
}

// rawIOContext opens cfg's pool and namespace with go-ceph directly, to look
// at the RADOS objects behind the target.
func rawIOContext(t *testing.T, cfg ceph.Config) *rados.IOContext {
	t.Helper()
	conn, err := rados.NewConnWithUser(cfg.User)
	require.NoError(t, err)
	require.NoError(t, conn.ReadConfigFile(cfg.Conf))
	require.NoError(t, conn.SetConfigOption("keyring", cfg.Keyring))
	require.NoError(t, conn.Connect())
	ioctx, err := conn.OpenIOContext(cfg.Pool)
	require.NoError(t, err)
	ioctx.SetNamespace(cfg.Namespace)
	t.Cleanup(func() {
		ioctx.Destroy()
		conn.Shutdown()
	})
	return ioctx
}

// radosObjects lists the RADOS objects of ioctx's namespace whose names
// start with prefix.
func radosObjects(t *testing.T, ioctx *rados.IOContext, prefix string) []string {
	t.Helper()
	var names []string
	require.NoError(t, ioctx.ListObjects(func(oid string) {
		if strings.HasPrefix(oid, prefix) {
			names = append(names, oid)
		}
	}))
	return names
}

func TestRADOSConformance(t *testing.T) {
	cfg := clusterConfig(t)
	n := 0
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		n++
		c := cfg
		c.Prefix = fmt.Sprintf("conformance/%d", n)
		return open(t, c)
	}, targettest.Options{})
}

// TestRADOSConformanceStriped runs the suite with data objects of a little
// over 1 MiB, so that most objects are striped and reads and writes cross
// stripe boundaries at odd offsets.
func TestRADOSConformanceStriped(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.ChunkSize = 1<<20 + 3
	n := 0
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		n++
		c := cfg
		c.Prefix = fmt.Sprintf("striped/%d", n)
		return open(t, c)
	}, targettest.Options{LargeSize: 9<<20 + 11, ManyObjects: 300})
}

func TestRADOSStriping(t *testing.T) {
	ctx := t.Context()
	cfg := clusterConfig(t)
	cfg.ChunkSize = 1<<20 + 3
	cfg.Prefix = "stripes"
	tg := open(t, cfg)
	ioctx := rawIOContext(t, cfg)
	dataObjects := func() []string { return radosObjects(t, ioctx, "stripes/chunkback.data.") }

	data := make([]byte, 5<<20+7)
	_, _ = rand.Read(data)
	require.NoError(t, tg.Put(ctx, "big", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	require.Len(t, dataObjects(), 5, "5 MiB + 7 bytes in chunks of 1 MiB + 3: 5 data objects")
	for _, oid := range dataObjects() {
		st, err := ioctx.Stat(oid)
		require.NoError(t, err)
		require.LessOrEqual(t, st.Size, uint64(cfg.ChunkSize), "data object %s", oid)
	}
	for _, r := range [][2]int64{
		{0, -1}, {1<<20 + 2, 2}, {1<<20 + 3, 1}, {1<<20 - 5, 3 << 20}, {4 * (1<<20 + 3), -1}, {int64(len(data)) - 1, 10},
	} {
		rc, err := tg.Get(ctx, "big", r[0], r[1])
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		end := int64(len(data))
		if r[1] >= 0 {
			end = min(end, r[0]+r[1])
		}
		require.True(t, bytes.Equal(data[r[0]:end], got), "Get(big, %d, %d): %d bytes differ", r[0], r[1], len(got))
	}

	// An overwrite replaces the data objects; a delete removes them.
	small := []byte("small now")
	require.NoError(t, tg.Put(ctx, "big", bytes.NewReader(small), int64(len(small)), target.PutOptions{}))
	require.Len(t, dataObjects(), 1, "the overwritten object's data objects must be gone")
	require.NoError(t, tg.Delete(ctx, "big"))
	require.Empty(t, dataObjects(), "Delete must remove the data objects")

	// A failed IfNotExists leaves no data behind either.
	require.NoError(t, tg.Put(ctx, "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{IfNotExists: true}))
	err := tg.Put(ctx, "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{IfNotExists: true})
	require.ErrorIs(t, err, target.ErrExists)
	require.Len(t, dataObjects(), 5)
}

// TestRADOSLargeObject stores an object larger than Ceph's default
// osd_max_object_size (128 MiB) with the default chunk size.
func TestRADOSLargeObject(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 130 MiB")
	}
	ctx := t.Context()
	cfg := clusterConfig(t)
	tg := open(t, cfg)
	const size = 130 << 20
	body := io.NewSectionReader(patternReader{}, 0, size)
	require.NoError(t, tg.Put(ctx, "large", body, size, target.PutOptions{}))
	info, err := tg.Stat(ctx, "large")
	require.NoError(t, err)
	require.Equal(t, int64(size), info.Size)
	rc, err := tg.Get(ctx, "large", 128<<20-10, 20)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	want := make([]byte, 20)
	_, _ = patternReader{}.ReadAt(want, 128<<20-10)
	require.Equal(t, want, got)
	require.NoError(t, rc.Close())
}

// patternReader is an endless reproducible byte pattern.
type patternReader struct{}

func (patternReader) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		x := uint64(off + int64(i))
		p[i] = byte(x ^ x>>8 ^ x>>16)
	}
	return len(p), nil
}

func TestRADOSNamespacesAndPrefixesAreSeparate(t *testing.T) {
	ctx := t.Context()
	base := clusterConfig(t)
	cfgs := []ceph.Config{base, base, base}
	cfgs[1].Namespace += "-other"
	cfgs[2].Prefix = "p"
	for i, cfg := range cfgs {
		tg := open(t, cfg)
		name := fmt.Sprintf("only-%d", i)
		require.NoError(t, tg.Put(ctx, name, bytes.NewReader([]byte(name)), int64(len(name)), target.PutOptions{}))
	}
	for i, cfg := range cfgs {
		tg := open(t, cfg)
		var names []string
		require.NoError(t, tg.List(ctx, "", func(info target.Info) error {
			names = append(names, info.Name)
			return nil
		}))
		require.Equal(t, []string{fmt.Sprintf("only-%d", i)}, names, "target %d", i)
	}
}

func TestRADOSWrongCredentials(t *testing.T) {
	base := clusterConfig(t)
	wrongKey := filepath.Join(t.TempDir(), "wrong.keyring")
	// A well-formed key that is not client.admin's.
	key := "AQBQs3JnAAAAABAAcGlVwu4HWtcoS2yPdoKUBQ=="
	require.NoError(t, os.WriteFile(wrongKey, []byte("[client.admin]\n\tkey = "+key+"\n"), 0o600))

	cases := []struct {
		name     string
		mutate   func(*ceph.Config)
		mentions []string
	}{
		{"wrong key", func(c *ceph.Config) { c.Keyring = wrongKey }, []string{"client.admin", wrongKey}},
		{"unknown user", func(c *ceph.Config) { c.User = "nosuchuser" }, []string{"client.nosuchuser", base.Keyring}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.ConnectTimeout = 10 * time.Second
			tc.mutate(&cfg)
			start := time.Now()
			tg, err := ceph.New(t.Context(), cfg)
			if err == nil {
				tg.Close()
			}
			require.ErrorIs(t, err, target.ErrPermission)
			require.True(t, target.IsPermanent(err), "a refused credential must not be retried: %v", err)
			require.Less(t, time.Since(start), cfg.ConnectTimeout, "the refusal must come at once, not at the timeout")
			for _, m := range tc.mentions {
				require.Contains(t, err.Error(), m)
			}
			require.NotContains(t, err.Error(), key)
			t.Logf("%s: %v (after %v)", tc.name, err, time.Since(start).Round(time.Millisecond))
		})
	}
}

func TestRADOSUnreachableMonitorTimesOut(t *testing.T) {
	base := clusterConfig(t)
	// A ceph.conf whose monitor address nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	conf := filepath.Join(t.TempDir(), "ceph.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("[global]\nmon_host = v2:127.0.0.1:%d\n", l)), 0o644))
	cfg := base
	cfg.Conf = conf
	cfg.ConnectTimeout = 2 * time.Second
	start := time.Now()
	tg, err := ceph.New(t.Context(), cfg)
	if err == nil {
		tg.Close()
	}
	require.Error(t, err)
	require.ErrorIs(t, err, target.ErrUnavailable)
	require.Contains(t, err.Error(), conf)
	require.Less(t, time.Since(start), 15*time.Second, "ConnectTimeout must bound New")
	t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
}

func TestRADOSReadOnlyUser(t *testing.T) {
	ctx := t.Context()
	cfg := clusterConfig(t)
	// ceph.sh makes client.readonly: mon 'allow r', osd 'allow r pool=backups'.
	cfg.User = "readonly"
	cfg.Keyring = filepath.Join(filepath.Dir(cfg.Keyring), "client.readonly.keyring")
	tg, err := ceph.New(ctx, cfg)
	require.NoError(t, err, "a user who may read the pool opens it")
	defer tg.Close()
	err = tg.Put(ctx, "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrPermission)
	require.Contains(t, err.Error(), "client.readonly")
	_, err = tg.Stat(ctx, "x")
	require.ErrorIs(t, err, target.ErrNotFound)
}

func TestRADOSMissingPool(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.Pool = "chunkback-test-" + randomHex(4)
	_, err := ceph.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrNotFound)
	require.Contains(t, err.Error(), fmt.Sprintf("pool %q does not exist", cfg.Pool))
	require.Contains(t, err.Error(), "CreatePool")

	cfg.CreatePool = true
	tg, err := ceph.New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := rados.NewConnWithUser(cfg.User)
		require.NoError(t, err)
		defer conn.Shutdown()
		require.NoError(t, conn.ReadConfigFile(cfg.Conf))
		require.NoError(t, conn.SetConfigOption("keyring", cfg.Keyring))
		require.NoError(t, conn.Connect())
		require.NoError(t, conn.DeletePool(cfg.Pool))
	})
	defer tg.Close()
	require.NoError(t, tg.Put(t.Context(), "a", bytes.NewReader([]byte("a")), 1, target.PutOptions{}))
	info, err := tg.Stat(t.Context(), "a")
	require.NoError(t, err)
	require.Equal(t, int64(1), info.Size)
}

func TestRADOSChunkSizeAboveObjectLimit(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.ChunkSize = 1 << 30
	_, err := ceph.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.Contains(t, err.Error(), "Config.ChunkSize")
}

func TestRADOSRetryDecorator(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.MaxAttempts = 2
	cfg.RetryInterval = 10 * time.Millisecond
	tg := open(t, cfg)
	r, err := target.NewRetry(tg, cfg.RetryPolicy())
	require.NoError(t, err)
	require.Equal(t, target.LayoutObject, r.(target.LayoutTarget).CinderLayout())
	require.NoError(t, r.Put(t.Context(), "a", bytes.NewReader([]byte("abc")), 3, target.PutOptions{}))
	_, err = r.Stat(t.Context(), "missing")
	require.ErrorIs(t, err, target.ErrNotFound)
}

// TestRADOSOSDStoppedMidPut stops the OSD of the pool backups-fault (osd.1,
// which serves no other pool) while a Put is writing, and checks that the
// Put fails with a retryable timeout and leaves no object that looks
// complete; then it restarts the OSD with ceph.sh start.
func TestRADOSOSDStoppedMidPut(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts an OSD")
	}
	ctx := t.Context()
	cfg := clusterConfig(t)
	cfg.Pool = "backups-fault"
	cfg.ChunkSize = 1 << 20
	cfg.OpTimeout = 3 * time.Second
	tg := open(t, cfg)
	pidFile := filepath.Join(filepath.Dir(cfg.Conf), "run", "osd.1.pid")
	restart := func() {
		t.Helper()
		cmd := exec.Command("bash", "../scripts/servers/ceph.sh", "start")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ceph.sh start: %s", out)
	}
	t.Cleanup(func() { // runs before open's cleanup, which needs the OSD
		if !processAlive(pidFile) {
			restart()
		}
	})

	before := []byte("stored before the fault")
	require.NoError(t, tg.Put(ctx, "before", bytes.NewReader(before), int64(len(before)), target.PutOptions{}))

	data := make([]byte, 24<<20)
	_, _ = rand.Read(data)
	body := &stopAfter{Reader: bytes.NewReader(data), at: 6 << 20, stop: func() { stopProcess(t, pidFile) }}
	start := time.Now()
	err := tg.Put(ctx, "during", body, int64(len(data)), target.PutOptions{})
	elapsed := time.Since(start)
	require.True(t, body.stopped, "the OSD was not stopped: the body was read only %d bytes", body.served)
	require.Error(t, err, "a Put whose OSD stopped midway must fail")
	require.ErrorIs(t, err, target.ErrUnavailable, "an OSD that stops answering is a retryable timeout")
	require.False(t, target.IsPermanent(err))
	require.Less(t, elapsed, 30*time.Second, "OpTimeout must bound the Put")
	t.Logf("Put failed after %v: %v", elapsed.Round(time.Millisecond), err)

	started := time.Now()
	restart()
	t.Logf("ceph.sh start restarted the OSD in %v", time.Since(started).Round(time.Millisecond))

	_, err = tg.Stat(ctx, "during")
	require.ErrorIs(t, err, target.ErrNotFound, "the interrupted object must not exist")
	_, err = tg.Get(ctx, "during", 0, -1)
	require.ErrorIs(t, err, target.ErrNotFound)
	var names []string
	require.NoError(t, tg.List(ctx, "", func(info target.Info) error {
		names = append(names, info.Name)
		return nil
	}))
	require.Equal(t, []string{"before"}, names)
	rc, err := tg.Get(ctx, "before", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, before, got)
	orphans := radosObjects(t, rawIOContext(t, cfg), "chunkback.data.")
	t.Logf("data objects left by the interrupted Put (invisible, garbage): %d", len(orphans))

	// The same target works again once the OSD is back.
	require.NoError(t, tg.Put(ctx, "during", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	info, err := tg.Stat(ctx, "during")
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), info.Size)
}

// stopAfter serves its Reader and calls stop once, after at bytes.
type stopAfter struct {
	*bytes.Reader
	at, served int64
	stop       func()
	stopped    bool
}

func (s *stopAfter) Read(p []byte) (int, error) {
	if !s.stopped && s.served >= s.at {
		s.stop()
		s.stopped = true
	}
	n, err := s.Reader.Read(p)
	s.served += int64(n)
	return n, err
}

func processAlive(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// stopProcess sends SIGTERM to the process in pidFile and waits until it is
// gone.
func stopProcess(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(string(b), &pid)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
