package gcs_test

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/target"
)

// tamperProxy forwards requests to the emulator and flips one byte of the
// body of an upload request, as a faulty network or proxy might (the length
// stays the same), or answers one upload request with an error. It rewrites
// the Location of resumable uploads, so that their chunks come through the
// proxy too (httpfault's proxy does not), and records what it saw.
type tamperProxy struct {
	URL string

	mu         sync.Mutex
	at         int64 // offset in the body of the request to damage
	request    int   // which upload request to damage (1 = the first)
	failAt     int   // which upload request to answer with failStatus
	failStatus int
	uploads    int // upload requests seen
	flipped    int // bodies damaged
	agents     []string
	auth       []string // Authorization headers seen
	// bucketInserts are the bodies of the requests that created buckets.
	bucketInserts []string
}

func newTamperProxy(t *testing.T, upstream string) *tamperProxy {
	up, err := url.Parse(upstream)
	require.NoError(t, err)
	p := &tamperProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			p.mu.Lock()
			defer p.mu.Unlock()
			if r.In.Method == http.MethodPost && r.In.URL.Path == "/storage/v1/b" {
				body, err := io.ReadAll(r.In.Body)
				if err == nil {
					p.bucketInserts = append(p.bucketInserts, string(body))
					r.Out.Body = io.NopCloser(bytes.NewReader(body))
				}
			}
			if isUpload(r.In) && p.uploads == p.request {
				r.Out.Body = &flipReader{r: r.In.Body, at: p.at}
				p.flipped++
			}
		},
		ModifyResponse: func(res *http.Response) error {
			if loc := res.Header.Get("Location"); loc != "" {
				res.Header.Set("Location", strings.Replace(loc, up.Host, strings.TrimPrefix(p.URL, "http://"), 1))
			}
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.mu.Lock()
		p.agents = append(p.agents, req.Header.Get("User-Agent"))
		p.auth = append(p.auth, req.Header.Get("Authorization"))
		fail := 0
		if isUpload(req) {
			p.uploads++
			if p.uploads == p.failAt {
				fail = p.failStatus
			}
		}
		p.mu.Unlock()
		if fail != 0 {
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fail)
			fmt.Fprintf(w, `{"error":{"code":%d,"message":"injected"}}`, fail)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// isUpload reports whether req sends object data.
func isUpload(req *http.Request) bool {
	return strings.HasPrefix(req.URL.Path, "/upload/") && req.ContentLength != 0
}

// fail makes the proxy answer the request-th upload request from now on
// with status.
func (p *tamperProxy) fail(request, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failAt, p.failStatus, p.uploads = request, status, 0
}

// uploadRequests returns how many upload requests came since damage or
// fail was last called.
func (p *tamperProxy) uploadRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.uploads
}

// damage makes the proxy flip the byte at offset at of the body of the
// request-th upload request from now on.
func (p *tamperProxy) damage(request int, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.request, p.at, p.uploads, p.flipped, p.failAt = request, at, 0, 0, 0
}

// seen returns the User-Agent and Authorization headers of the requests so
// far, and the bodies of the requests that created buckets.
func (p *tamperProxy) seen() (agents, auth, bucketInserts []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.agents...), append([]string(nil), p.auth...), append([]string(nil), p.bucketInserts...)
}

func (p *tamperProxy) flips() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flipped
}

type flipReader struct {
	r   io.ReadCloser
	at  int64
	pos int64
}

func (f *flipReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if f.at >= f.pos && f.at < f.pos+int64(n) {
		b[f.at-f.pos] ^= 0x01
	}
	f.pos += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }

// TestGCSVerifiesWrites damages one byte of an upload on its way to the
// emulator. fake-gcs-server does not check the CRC32C the client sends with
// the last chunk of a resumable upload, so it stores the damaged object:
// Put must detect the damage from the object's checksums, delete the object
// and fail. Uploads in one request carry the CRC32C (and the MD5 when
// ContentMD5 is given) in their metadata, which the emulator checks, as
// Google does: it refuses the upload and Put fails the same way.
func TestGCSVerifiesWrites(t *testing.T) {
	s := requireServer(t)
	proxy := newTamperProxy(t, s.endpoint)
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	sum := md5.Sum(data)
	cases := []struct {
		name    string
		chunk   int
		request int   // the upload request to damage
		at      int64 // where in its body
		opts    target.PutOptions
		// refused: the emulator checks the MD5 or CRC32C sent with a
		// single request and refuses the upload (as Google does); the
		// target's own check catches the rest.
		refused bool
	}{
		// One request with the object as its body.
		{"SingleRequest", gcs.SingleRequest, 1, 1000, target.PutOptions{}, true},
		{"SingleRequestContentMD5", gcs.SingleRequest, 1, 1000, target.PutOptions{ContentMD5: sum[:]}, true},
		// The default: an object that fits in one chunk goes in one
		// request, with the CRC32C the client library computed.
		{"OneChunk", 0, 1, 1000, target.PutOptions{}, true},
		// A resumable upload of four 256 KiB chunks: the third is damaged
		// (the first request only starts the upload).
		{"Resumable", 256 << 10, 3, 5000, target.PutOptions{}, false},
		{"ResumableIfNotExists", 256 << 10, 5, 5000, target.PutOptions{IfNotExists: true}, false},
		{"ResumableContentMD5", 256 << 10, 2, 5000, target.PutOptions{ContentMD5: sum[:]}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config(uniqueBucket(t))
			cfg.Endpoint = proxy.URL
			cfg.WriterChunkSize = tc.chunk
			tg := open(t, cfg)
			ctx := t.Context()

			proxy.damage(tc.request, tc.at)
			err := tg.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), tc.opts)
			require.Equal(t, 1, proxy.flips(), "the proxy damaged no upload")
			require.ErrorIs(t, err, gcs.ErrChecksumMismatch)
			if tc.refused {
				require.ErrorContains(t, err, "the server refused the upload")
			} else {
				require.ErrorContains(t, err, "it was deleted")
			}
			require.False(t, target.IsPermanent(err), "damage in transit is worth a retry")
			_, err = tg.Stat(ctx, "obj")
			require.ErrorIs(t, err, target.ErrNotFound, "the damaged object is still there")

			// The same Put through an honest proxy is stored.
			proxy.damage(0, 0)
			require.NoError(t, tg.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), tc.opts))
			require.Equal(t, 0, proxy.flips())
			rc, err := tg.Get(ctx, "obj", 0, -1)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.True(t, bytes.Equal(data, got), "content read back differs")
		})
	}
}

// TestGCSFaultResumableChunkNotRetried: a chunk of a resumable upload that
// fails is not sent again by the client library (its retries are off); the
// retry decorator makes the whole Put again.
func TestGCSFaultResumableChunkNotRetried(t *testing.T) {
	s := requireServer(t)
	proxy := newTamperProxy(t, s.endpoint)
	cfg := s.config(uniqueBucket(t))
	cfg.Endpoint = proxy.URL
	cfg.WriterChunkSize = 256 << 10
	tg := open(t, cfg)
	data := bytes.Repeat([]byte("c"), 1<<20) // four chunks

	proxy.fail(3, http.StatusServiceUnavailable) // the second chunk
	err := tg.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
	var se *target.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, http.StatusServiceUnavailable, se.Code)
	require.Equal(t, 3, proxy.uploadRequests(), "the failed chunk was sent again")
	_, err = tg.Stat(t.Context(), "obj")
	require.ErrorIs(t, err, target.ErrNotFound)

	r, ev := retried(t, tg, cfg)
	proxy.fail(3, http.StatusServiceUnavailable)
	require.NoError(t, r.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	require.Len(t, ev.list(), 1)
	require.Equal(t, 3+5, proxy.uploadRequests(), "a new upload of five requests")
	require.Equal(t, data, readAll(t, tg, "obj"))
}

// TestGCSUserAgent: every request carries the configured User-Agent before
// the client library's.
func TestGCSUserAgent(t *testing.T) {
	s := requireServer(t)
	proxy := newTamperProxy(t, s.endpoint)
	cfg := s.config(uniqueBucket(t))
	cfg.Endpoint, cfg.UserAgent = proxy.URL, "backup-test/1.2"
	tg := open(t, cfg)
	require.NoError(t, tg.Put(t.Context(), "ua", bytes.NewReader([]byte("ua")), 2, target.PutOptions{}))
	_, err := tg.Stat(t.Context(), "ua")
	require.NoError(t, err)
	agents, auth, _ := proxy.seen()
	require.NotEmpty(t, agents)
	for i, ua := range agents {
		require.True(t, strings.HasPrefix(ua, "backup-test/1.2 "), "request %d has User-Agent %q", i, ua)
		require.Empty(t, auth[i], "an anonymous target sent credentials")
	}
}
