package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// Multipart uploads against every server: parts go up in parallel, the MD5
// of the whole object is checked, and an upload that fails for any reason
// is aborted, leaving neither an object nor an upload in progress.
func TestS3MultipartMinIO(t *testing.T)   { testMultipart(t, minio(t)) }
func TestS3MultipartRadosgw(t *testing.T) { testMultipart(t, radosgw(t)) }

const multipartSize = 23<<20 + 12345 // five parts of 5 MiB, the last short

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	return b
}

// cancelAfter serves a body and cancels a context once n bytes were read.
type cancelAfter struct {
	*bytes.Reader
	n      int64
	read   int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	c.read += int64(n)
	if c.read >= c.n {
		c.cancel()
	}
	return n, err
}

// failAfter fails once n bytes were read.
type failAfter struct {
	*bytes.Reader
	n    int64
	read int64
}

var errTestBody = errors.New("body failed on purpose")

func (f *failAfter) Read(p []byte) (int, error) {
	if f.read >= f.n {
		return 0, errTestBody
	}
	p = p[:min(int64(len(p)), f.n-f.read)]
	n, err := f.Reader.Read(p)
	f.read += int64(n)
	return n, err
}

func testMultipart(t *testing.T, s server) {
	data := randomBytes(1, multipartSize)
	sum := md5.Sum(data)
	newTarget := func(t *testing.T) *Target {
		cfg := s.config(t)
		smallParts(&cfg)
		return open(t, cfg)
	}
	requireGone := func(t *testing.T, tg *Target, name string) {
		t.Helper()
		_, err := tg.Stat(t.Context(), name)
		require.ErrorIs(t, err, target.ErrNotFound, "Stat %q after a failed multipart upload", name)
		require.Empty(t, uploadsLeft(t, tg, name), "multipart uploads left in progress")
	}

	t.Run("RoundTrip", func(t *testing.T) {
		tg := newTarget(t)
		require.NoError(t, tg.Put(t.Context(), "big", bytes.NewReader(data), int64(len(data)), target.PutOptions{ContentMD5: sum[:]}))
		rc, err := tg.Get(t.Context(), "big", 0, -1)
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.True(t, bytes.Equal(data, got), "content differs")
		require.Empty(t, uploadsLeft(t, tg, "big"))
	})

	t.Run("WrongMD5IsAborted", func(t *testing.T) {
		tg := newTarget(t)
		bad := md5.Sum([]byte("something else"))
		err := tg.Put(t.Context(), "big", bytes.NewReader(data), int64(len(data)), target.PutOptions{ContentMD5: bad[:]})
		require.ErrorIs(t, err, target.ErrInvalidArgument)
		require.ErrorIs(t, err, errMD5Mismatch)
		requireGone(t, tg, "big")
	})

	t.Run("CancelIsAborted", func(t *testing.T) {
		tg := newTarget(t)
		for _, at := range []int64{1 << 20, 12 << 20, multipartSize - 1} {
			ctx, cancel := context.WithCancel(t.Context())
			body := &cancelAfter{Reader: bytes.NewReader(data), n: at, cancel: cancel}
			err := tg.Put(ctx, "big", body, int64(len(data)), target.PutOptions{})
			cancel()
			require.ErrorIs(t, err, context.Canceled, "cancelled after %d bytes", at)
			requireGone(t, tg, "big")
		}
	})

	t.Run("BodyErrorIsAborted", func(t *testing.T) {
		tg := newTarget(t)
		for _, at := range []int64{0, 6 << 20, multipartSize - 1} {
			err := tg.Put(t.Context(), "big", &failAfter{Reader: bytes.NewReader(data), n: at}, int64(len(data)), target.PutOptions{})
			require.ErrorIs(t, err, errTestBody, "failing after %d bytes", at)
			requireGone(t, tg, "big")
		}
		// A body shorter than the size given.
		err := tg.Put(t.Context(), "big", bytes.NewReader(data[:20<<20]), int64(len(data)), target.PutOptions{})
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		requireGone(t, tg, "big")
	})

	t.Run("IfNotExists", func(t *testing.T) {
		tg := newTarget(t)
		excl := target.PutOptions{IfNotExists: true}
		require.NoError(t, tg.Put(t.Context(), "big", bytes.NewReader(data), int64(len(data)), excl))
		err := tg.Put(t.Context(), "big", bytes.NewReader(data[:9<<20]), 9<<20, excl)
		require.ErrorIs(t, err, target.ErrExists)
		info, err := tg.Stat(t.Context(), "big")
		require.NoError(t, err)
		require.Equal(t, int64(len(data)), info.Size)
		require.Empty(t, uploadsLeft(t, tg, "big"))
	})

	// A large conditional object goes up in one PUT, atomic on stores that
	// ignore If-None-Match on CompleteMultipartUpload: when the object
	// appears while the body goes up, the PUT must not replace it.
	t.Run("IfNotExistsRaceLarge", func(t *testing.T) {
		tg := newTarget(t)
		other := []byte("written while the upload ran")
		err := tg.Put(t.Context(), "big", raceBody(t, tg, "big", other, data), int64(len(data)), target.PutOptions{IfNotExists: true})
		require.ErrorIs(t, err, target.ErrExists, "a conditional upload replaced an object written meanwhile")
		requireSize(t, tg, "big", int64(len(other)))
		require.Empty(t, uploadsLeft(t, tg, "big"))
	})
}

// TestS3MultipartIfNoneMatchMinIO checks that a multipart upload itself
// (objects over 5 GiB take this path) sends If-None-Match with its
// completion, on MinIO, which honours it (radosgw Pacific does not).
func TestS3MultipartIfNoneMatchMinIO(t *testing.T) {
	s := minio(t)
	cfg := s.config(t)
	smallParts(&cfg)
	tg := open(t, cfg)
	data := randomBytes(2, multipartSize)
	other := []byte("written while the upload ran")
	key, err := tg.key("put", "big")
	require.NoError(t, err)
	err = tg.putMultipart(t.Context(), "big", key, raceBody(t, tg, "big", other, data), int64(len(data)), target.PutOptions{IfNotExists: true})
	require.ErrorIs(t, err, target.ErrExists, "a multipart upload with If-None-Match replaced an object written meanwhile")
	requireSize(t, tg, "big", int64(len(other)))
	require.Empty(t, uploadsLeft(t, tg, "big"))
}

// raceBody serves data and, once 12 MiB of it were read, stores other under
// name with a plain Put.
func raceBody(t *testing.T, tg *Target, name string, other, data []byte) io.ReadSeeker {
	var once sync.Once
	return &hookReader{Reader: bytes.NewReader(data), at: 12 << 20, hook: func() {
		once.Do(func() {
			err := tg.Put(t.Context(), name, bytes.NewReader(other), int64(len(other)), target.PutOptions{})
			assert.NoError(t, err, "the racing Put")
		})
	}}
}

func requireSize(t *testing.T, tg *Target, name string, size int64) {
	t.Helper()
	info, err := tg.Stat(t.Context(), name)
	require.NoError(t, err)
	require.Equal(t, size, info.Size, "size of %q", name)
}

// hookReader calls hook once at least at bytes were read.
type hookReader struct {
	*bytes.Reader
	at, read int64
	hook     func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.Reader.Read(p)
	h.read += int64(n)
	if h.read >= h.at {
		h.hook()
	}
	return n, err
}
