package gcs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// server is fake-gcs-server as scripts/servers/fakegcs.sh started it.
type server struct {
	endpoint, host, project string
}

func requireServer(t *testing.T) server {
	t.Helper()
	env := servertest.Require(t, "fakegcs")
	return server{endpoint: env.Get(t, "ENDPOINT"), host: env.Get(t, "HOST"), project: env.Get(t, "PROJECT")}
}

// config returns a Config for the emulator: anonymous, with a bucket of
// its own that New creates.
func (s server) config(bucket string) gcs.Config {
	return gcs.Config{
		Bucket:       bucket,
		Endpoint:     s.endpoint,
		Anonymous:    true,
		ProjectID:    s.project,
		CreateBucket: true,
	}
}

// uniqueBucket returns a bucket name no other test run uses.
func uniqueBucket(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "chunkback-test-" + hex.EncodeToString(b)
}

// open opens cfg and closes the target, after deleting what it stored, when
// the test ends (the emulator keeps everything in memory).
func open(t *testing.T, cfg gcs.Config) *gcs.Target {
	t.Helper()
	tg, err := gcs.New(t.Context(), cfg)
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

func TestGCSConformance(t *testing.T) {
	s := requireServer(t)
	for _, tc := range []struct {
		name          string
		reader, write int
		opts          targettest.Options
	}{
		// Cinder's defaults: 2 MiB chunks both ways.
		{"DefaultChunks", 0, 0, targettest.Options{}},
		// Everything in one request.
		{"SingleRequest", gcs.SingleRequest, gcs.SingleRequest, targettest.Options{}},
		// Small chunks, so most objects of the suite take many requests.
		// A read in chunks fails when the object is replaced between two of
		// them (see TestGCSChunkedReadOfReplacedObject), so the objects that
		// are overwritten while they are read fit in one chunk here, as
		// they do with the default chunk size.
		{"SmallChunks", 300 << 10, 256 << 10, targettest.Options{ConcurrentSize: 256 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := uniqueBucket(t)
			var n atomic.Int64
			targettest.RunWithOptions(t, func(t *testing.T) target.Target {
				cfg := s.config(bucket)
				cfg.Prefix = fmt.Sprintf("suite/%d", n.Add(1))
				cfg.ReaderChunkSize, cfg.WriterChunkSize = tc.reader, tc.write
				return open(t, cfg)
			}, tc.opts)
		})
	}
}

// TestGCSNoPrefix runs objects at the top of a bucket, as Cinder stores them.
func TestGCSNoPrefix(t *testing.T) {
	s := requireServer(t)
	tg := open(t, s.config(uniqueBucket(t)))
	body := strings.NewReader("top level")
	require.NoError(t, tg.Put(t.Context(), "volume_x/20260101120000/az_nova_backup_y-00001", body, body.Size(), target.PutOptions{}))
	var names []string
	require.NoError(t, tg.List(t.Context(), "", func(info target.Info) error {
		names = append(names, info.Name)
		return nil
	}))
	require.Equal(t, []string{"volume_x/20260101120000/az_nova_backup_y-00001"}, names)
	require.Equal(t, target.LayoutObject, tg.CinderLayout())
	require.True(t, target.UsesContentMD5(tg))
}

// TestGCSChunkedReadOfReplacedObject shows what a read in chunks does when
// the object is replaced between two chunks: it fails with a clear error
// and never returns bytes of two versions.
func TestGCSChunkedReadOfReplacedObject(t *testing.T) {
	s := requireServer(t)
	cfg := s.config(uniqueBucket(t))
	cfg.ReaderChunkSize = 64 << 10
	tg := open(t, cfg)
	ctx := t.Context()
	old := bytes.Repeat([]byte("o"), 256<<10)
	require.NoError(t, tg.Put(ctx, "obj", bytes.NewReader(old), int64(len(old)), target.PutOptions{}))

	rc, err := tg.Get(ctx, "obj", 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	first := make([]byte, 64<<10)
	_, err = io.ReadFull(rc, first)
	require.NoError(t, err)
	require.Equal(t, old[:len(first)], first)

	repl := bytes.Repeat([]byte("n"), 256<<10)
	require.NoError(t, tg.Put(ctx, "obj", bytes.NewReader(repl), int64(len(repl)), target.PutOptions{}))
	rest, err := io.ReadAll(rc)
	require.ErrorContains(t, err, "replaced or deleted while it was read")
	require.NotContains(t, string(rest), "n", "bytes of the new version mixed into the old")
}
