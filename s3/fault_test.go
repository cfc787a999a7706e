package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/target"
)

func s3ErrorBody(code, msg string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>` + msg + `</Message></Error>`
}

// viaProxy returns a Config for s that reaches it through a fault-injecting
// proxy.
func viaProxy(t *testing.T, s server) (Config, *httpfault.Proxy) {
	t.Helper()
	p, err := httpfault.New(s.endpoint)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	cfg := s.config(t)
	cfg.Endpoint = p.URL
	return cfg, p
}

// Wrong credentials: New fails at once with one request, with an error
// that wraps ErrPermission, names the credential to check and does not
// hold it.
func TestS3BadCredentials(t *testing.T) {
	for _, s := range []server{minio(t), radosgw(t)} {
		t.Run(s.name, func(t *testing.T) {
			t.Run("SecretKey", func(t *testing.T) {
				cfg, p := viaProxy(t, s)
				cfg.SecretKey = "not-the-secret-0123456789"
				_, err := New(t.Context(), cfg)
				t.Log(err)
				require.ErrorIs(t, err, target.ErrPermission)
				assert.True(t, target.IsPermanent(err))
				assert.Contains(t, err.Error(), "secret key")
				assert.Contains(t, err.Error(), "AWS_SECRET_ACCESS_KEY")
				assert.NotContains(t, err.Error(), cfg.SecretKey)
				assert.NotContains(t, err.Error(), s.secret)
				assert.Equal(t, 1, p.Requests(), "requests for New with a wrong secret key")
			})
			t.Run("AccessKey", func(t *testing.T) {
				cfg, p := viaProxy(t, s)
				cfg.AccessKey = "NOSUCHACCESSKEY"
				_, err := New(t.Context(), cfg)
				require.ErrorIs(t, err, target.ErrPermission)
				assert.Contains(t, err.Error(), "access key ID")
				assert.NotContains(t, err.Error(), s.secret)
				assert.Equal(t, 1, p.Requests(), "requests for New with an unknown access key")
			})
			// Credentials revoked while the target is in use: the retry
			// decorator gives up after the first attempt.
			t.Run("NoRetryStorm", func(t *testing.T) {
				cfg, p := viaProxy(t, s)
				tg := open(t, cfg)
				rt, err := target.NewRetry(tg, cfg.RetryPolicy())
				require.NoError(t, err)
				p.SetRules(httpfault.Rule{Status: http.StatusForbidden, ContentType: "application/xml",
					Body: s3ErrorBody("InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records.")})
				before := p.Requests()
				err = rt.Put(t.Context(), "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{})
				require.ErrorIs(t, err, target.ErrPermission)
				assert.Contains(t, err.Error(), "access key ID")
				assert.Equal(t, 1, p.Requests()-before, "requests for one Put with refused credentials")
				p.SetRules()
			})
		})
	}
}

// 503 SlowDown, 429 and 500 are retried by target.NewRetry, after at least
// the Retry-After delay the store asked for, and the operations succeed.
func TestS3Throttling(t *testing.T) {
	for _, s := range []server{minio(t), radosgw(t)} {
		t.Run(s.name, func(t *testing.T) {
			cfg, p := viaProxy(t, s)
			tg := open(t, cfg)
			var mu sync.Mutex
			var events []target.RetryEvent
			policy := cfg.RetryPolicy()
			policy.OnRetry = func(e target.RetryEvent) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
			}
			rt, err := target.NewRetry(tg, policy)
			require.NoError(t, err)
			data := []byte("throttled but stored")

			p.SetRules(httpfault.Rule{Method: http.MethodPut, Status: http.StatusServiceUnavailable, RetryAfter: "1",
				ContentType: "application/xml", Body: s3ErrorBody("SlowDown", "Please reduce your request rate."), Times: 2})
			start := time.Now()
			require.NoError(t, rt.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
			assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "two Retry-After: 1 waits")
			assert.Equal(t, 2, p.Faults())
			require.Len(t, events, 2)
			for _, e := range events {
				var se *target.StatusError
				require.ErrorAs(t, e.Err, &se)
				assert.Equal(t, http.StatusServiceUnavailable, se.Code)
				assert.Equal(t, time.Second, se.RetryAfter)
				assert.ErrorIs(t, e.Err, target.ErrThrottled, "SlowDown is a throttle")
				assert.GreaterOrEqual(t, e.Delay, time.Second)
			}

			events = nil
			p.SetRules(httpfault.Rule{Method: http.MethodGet, Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 1},
				httpfault.Rule{Method: http.MethodHead, Status: http.StatusInternalServerError, Times: 1})
			start = time.Now()
			rc, err := rt.Get(t.Context(), "x", 0, -1)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			assert.Equal(t, data, got)
			assert.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1")
			info, err := rt.Stat(t.Context(), "x")
			require.NoError(t, err)
			assert.Equal(t, int64(len(data)), info.Size)
			require.Len(t, events, 2)
			assert.ErrorIs(t, events[0].Err, target.ErrThrottled, "429")
			assert.ErrorIs(t, events[1].Err, target.ErrUnavailable, "500")
		})
	}
}

// A missing bucket is a clear error, or is created when the Config asks.
func TestS3MissingBucket(t *testing.T) {
	for _, s := range []server{minio(t), radosgw(t)} {
		t.Run(s.name, func(t *testing.T) {
			cfg := s.config(t)
			cfg.Bucket = "chunkback-missing-" + randomHex(t)
			cfg.CreateBucket = false
			_, err := New(t.Context(), cfg)
			t.Log(err)
			require.ErrorIs(t, err, target.ErrNotFound)
			assert.Contains(t, err.Error(), cfg.Bucket)
			assert.Contains(t, err.Error(), "CreateBucket")

			cfg.CreateBucket = true
			tg, err := New(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cleanPrefix(t, ctx, tg)
				_, err := tg.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(cfg.Bucket)})
				assert.NoError(t, err, "DeleteBucket")
			})
			require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{}))
			// A second New finds the bucket there.
			tg2, err := New(t.Context(), cfg)
			require.NoError(t, err)
			_, err = tg2.Stat(t.Context(), "x")
			require.NoError(t, err)
		})
	}
}

// Config.HTTPProxy sends the requests through the proxy.
func TestS3HTTPProxy(t *testing.T) {
	s := minio(t)
	p, err := httpfault.New(s.endpoint)
	require.NoError(t, err)
	defer p.Close()
	cfg := s.config(t)
	cfg.HTTPProxy = p.URL
	tg := open(t, cfg)
	require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader([]byte("via proxy")), 9, target.PutOptions{}))
	info, err := tg.Stat(t.Context(), "x")
	require.NoError(t, err)
	assert.Equal(t, int64(9), info.Size)
	assert.GreaterOrEqual(t, p.Requests(), 3, "requests that went through the proxy (list, put, head)")
}

// A wrong Content-MD5 is refused by the store, and nothing is stored.
func TestS3WrongContentMD5(t *testing.T) {
	for _, s := range []server{minio(t), radosgw(t)} {
		t.Run(s.name, func(t *testing.T) {
			tg := open(t, s.config(t))
			data := []byte("the body")
			wrong := make([]byte, 16)
			err := tg.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{ContentMD5: wrong})
			var se *target.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, http.StatusBadRequest, se.Code)
			assert.Contains(t, err.Error(), "MD5")
			_, err = tg.Stat(t.Context(), "x")
			require.ErrorIs(t, err, target.ErrNotFound)

			err = tg.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{ContentMD5: []byte{1, 2}})
			require.ErrorIs(t, err, target.ErrInvalidArgument)
		})
	}
}

// Content-MD5 is sent on every upload request, single PUTs and parts, and
// not at all when disabled.
func TestS3ContentMD5Sent(t *testing.T) {
	s := minio(t)
	for _, disable := range []bool{false, true} {
		cfg := s.config(t)
		smallParts(&cfg)
		cfg.DisableContentMD5 = disable
		tg := open(t, cfg)
		assert.Equal(t, !disable, tg.UsesContentMD5())
		seen := map[bool]int{}
		var mu sync.Mutex
		counter := &md5Counter{next: http.DefaultTransport, seen: seen, mu: &mu}
		tg.client = s3.New(tg.client.Options(), func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: counter} })
		tg.uploader = newUploader(tg.cfg, tg.client)
		small := randomBytes(3, 1000)
		big := randomBytes(4, 11<<20)
		require.NoError(t, tg.Put(t.Context(), "small", bytes.NewReader(small), int64(len(small)), target.PutOptions{}))
		require.NoError(t, tg.Put(t.Context(), "big", bytes.NewReader(big), int64(len(big)), target.PutOptions{}))
		if disable {
			assert.Equal(t, 0, seen[true], "uploads with Content-MD5 although disabled")
			assert.Equal(t, 1+3, seen[false], "uploads (1 PUT, 3 parts)")
		} else {
			assert.Equal(t, 1+3, seen[true], "uploads with Content-MD5 (1 PUT, 3 parts)")
			assert.Equal(t, 0, seen[false], "uploads without Content-MD5")
		}
	}
}

// md5Counter counts the PUT requests with and without Content-MD5.
type md5Counter struct {
	next http.RoundTripper
	mu   *sync.Mutex
	seen map[bool]int
}

func (c *md5Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		c.mu.Lock()
		c.seen[r.Header.Get("Content-MD5") != ""]++
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

// IfNotExistsCheck mode (HEAD, then PUT) refuses existing names too.
func TestS3IfNotExistsCheckMode(t *testing.T) {
	for _, s := range []server{minio(t), radosgw(t)} {
		t.Run(s.name, func(t *testing.T) {
			cfg := s.config(t)
			cfg.IfNotExists = IfNotExistsCheck
			tg := open(t, cfg)
			excl := target.PutOptions{IfNotExists: true}
			require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader([]byte("a")), 1, excl))
			err := tg.Put(t.Context(), "x", bytes.NewReader([]byte("b")), 1, excl)
			require.ErrorIs(t, err, target.ErrExists)
			rc, err := tg.Get(t.Context(), "x", 0, -1)
			require.NoError(t, err)
			got, _ := io.ReadAll(rc)
			rc.Close()
			assert.Equal(t, "a", string(got))
		})
	}
}

// The storage class is sent: one the store knows works, an unknown one is a
// clear error.
func TestS3StorageClass(t *testing.T) {
	s := minio(t)
	cfg := s.config(t)
	cfg.StorageClass = "STANDARD"
	tg := open(t, cfg)
	require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{}))

	cfg.StorageClass = "NO_SUCH_CLASS"
	tg = open(t, cfg)
	err := tg.Put(t.Context(), "y", bytes.NewReader([]byte("y")), 1, target.PutOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NO_SUCH_CLASS")
	assert.True(t, target.IsPermanent(err), "an unknown storage class is not retried: %v", err)
}

// Request checksums "when_required" work against both stores (the SDK then
// sends no CRC32).
func TestS3ChecksumWhenRequired(t *testing.T) {
	for _, s := range []server{minio(t), radosgw(t)} {
		t.Run(s.name, func(t *testing.T) {
			cfg := s.config(t)
			smallParts(&cfg)
			cfg.RequestChecksum = ChecksumWhenRequired
			tg := open(t, cfg)
			for _, size := range []int{10, 9 << 20} {
				data := randomBytes(uint64(size), size)
				require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
				rc, err := tg.Get(t.Context(), "x", 0, -1)
				require.NoError(t, err)
				got, err := io.ReadAll(rc)
				require.NoError(t, err)
				rc.Close()
				require.True(t, bytes.Equal(data, got))
			}
		})
	}
}
