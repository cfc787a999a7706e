package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

// A store killed in the middle of a Put leaves no object under the name,
// and once it is back the next Put succeeds. The test kills the HTTPS MinIO
// (which only these tests use) through its pid file, and restarts it with
// scripts/servers/minio.sh start.
func TestS3ServerKilledMidUpload(t *testing.T) {
	s := minio(t)
	pidFile := servertest.Require(t, "minio").Get(t, "TLS_PID_FILE")
	cfg := tlsConfig(t, s)
	smallParts(&cfg)
	cfg.Timeout = 10 * time.Second
	data := randomBytes(8, 30<<20)

	for _, tc := range []struct {
		name string
		size int64 // over 8 MiB: a multipart upload
	}{{"single", 7 << 20}, {"multipart", int64(len(data))}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := open(t, cfg)
			require.NoError(t, tg.Put(t.Context(), "before", bytes.NewReader([]byte("x")), 1, target.PutOptions{}))

			// With the MD5 given and over TLS, the SDK reads the body once,
			// as it sends it: the server dies in the middle of the transfer.
			sum := md5.Sum(data[:tc.size])
			var once sync.Once
			body := &hookReader{Reader: bytes.NewReader(data[:tc.size]), at: tc.size / 2, hook: func() {
				once.Do(func() { killServer(t, pidFile) })
			}}
			err := tg.Put(t.Context(), "obj", body, tc.size, target.PutOptions{ContentMD5: sum[:]})
			require.Error(t, err, "Put while the server was killed")
			t.Log(err)
			assert.False(t, target.IsPermanent(err), "a dead server is a transient failure: %v", err)

			restartMinIO(t)
			tg = open(t, cfg) // a client of its own, as after a process restart
			_, err = tg.Stat(t.Context(), "obj")
			require.ErrorIs(t, err, target.ErrNotFound, "an object of the Put the server died in")
			names := []string{}
			require.NoError(t, tg.List(t.Context(), "", func(i target.Info) error { names = append(names, i.Name); return nil }))
			require.Equal(t, []string{"before"}, names)

			// Parts of the upload the server died in may be left; they
			// are removed by AbortIncompleteUploads.
			n, err := tg.AbortIncompleteUploads(t.Context(), "obj", 0)
			require.NoError(t, err)
			t.Logf("aborted %d incomplete uploads", n)
			if tc.name == "multipart" {
				assert.Equal(t, 1, n, "uploads left by the server's death")
			}
			require.Empty(t, uploadsLeft(t, tg, "obj"))

			require.NoError(t, tg.Put(t.Context(), "obj", bytes.NewReader(data[:tc.size]), tc.size, target.PutOptions{}))
			requireGet(t, tg, "obj", data[:tc.size])
		})
	}
}

func killServer(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if !assert.NoError(t, err, "pid file of the MinIO to kill") {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if !assert.NoError(t, err) {
		return
	}
	assert.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "kill MinIO %d", pid)
	// Wait until it is gone or a zombie (which init reaps late here), so
	// that the upload fails now and minio.sh sees it down.
	for range 1000 {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("MinIO %d did not die", pid)
}

func restartMinIO(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "../scripts/servers/minio.sh", "start").CombinedOutput()
	require.NoError(t, err, "minio.sh start: %s", out)
}
