package gcs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/target"
)

// jsonError is an error document of the JSON API, as Google sends it.
func jsonError(code int, reason, message string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"message":%q,"errors":[{"message":%q,"domain":"global","reason":%q}]}}`,
		code, message, message, reason)
}

// faultyTarget opens a bucket of its own through an httpfault proxy in
// front of the emulator (the rules are set later, so New gets through).
func faultyTarget(t *testing.T) (*gcs.Target, *httpfault.Proxy, gcs.Config) {
	s := requireServer(t)
	proxy, err := httpfault.New(s.endpoint)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	cfg := s.config(uniqueBucket(t))
	cfg.Endpoint = proxy.URL
	return open(t, cfg), proxy, cfg
}

// retryEvents records the retries a decorator makes.
type retryEvents struct {
	mu     sync.Mutex
	events []target.RetryEvent
}

func (r *retryEvents) add(e target.RetryEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *retryEvents) list() []target.RetryEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]target.RetryEvent(nil), r.events...)
}

// retried wraps tg in the retry decorator of cfg's policy, with a short
// backoff so that the wait the tests see is the Retry-After the server
// asked for.
func retried(t *testing.T, tg target.Target, cfg gcs.Config) (target.Target, *retryEvents) {
	p := cfg.RetryPolicy()
	p.BaseDelay, p.MaxDelay = 10*time.Millisecond, 50*time.Millisecond
	ev := &retryEvents{}
	p.OnRetry = ev.add
	r, err := target.NewRetry(tg, p)
	require.NoError(t, err)
	return r, ev
}

func readAll(t *testing.T, tg target.Target, name string) []byte {
	t.Helper()
	rc, err := tg.Get(t.Context(), name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

func TestGCSFaultThrottledPutIsRetried(t *testing.T) {
	tg, proxy, cfg := faultyTarget(t)
	r, ev := retried(t, tg, cfg)
	proxy.SetRules(httpfault.Rule{
		Method: http.MethodPost, Path: "/upload/storage/v1/b/", Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 1,
		Body: jsonError(429, "rateLimitExceeded", "The object exceeded the rate limit"), ContentType: "application/json",
	})
	data := bytes.Repeat([]byte("x"), 100_000)
	start := time.Now()
	require.NoError(t, r.Put(t.Context(), "throttled", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 was not honoured")
	require.Equal(t, 1, proxy.Faults())
	events := ev.list()
	require.Len(t, events, 1)
	require.Equal(t, "put", events[0].Op)
	require.GreaterOrEqual(t, events[0].Delay, time.Second)
	require.ErrorIs(t, events[0].Err, target.ErrThrottled)
	require.Equal(t, data, readAll(t, tg, "throttled"))
}

func TestGCSFaultUnavailableGetIsRetried(t *testing.T) {
	tg, proxy, cfg := faultyTarget(t)
	r, ev := retried(t, tg, cfg)
	data := []byte("served after two 503s")
	require.NoError(t, tg.Put(t.Context(), "busy", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	proxy.SetRules(httpfault.Rule{
		Method: http.MethodGet, Query: "alt=media", Status: http.StatusServiceUnavailable, RetryAfter: "1", Times: 2,
		Body: jsonError(503, "backendError", "Backend Error"), ContentType: "application/json",
	})
	start := time.Now()
	require.Equal(t, data, readAll(t, r, "busy"))
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "Retry-After: 1 was not honoured twice")
	require.Equal(t, 2, proxy.Faults())
	events := ev.list()
	require.Len(t, events, 2)
	for _, e := range events {
		require.Equal(t, "get", e.Op)
		require.GreaterOrEqual(t, e.Delay, time.Second)
		require.ErrorIs(t, e.Err, target.ErrUnavailable)
	}
}

// TestGCSFaultOneAttempt shows that the target itself makes one request per
// operation (the client library's retries are off) and reports the status
// and the Retry-After of the answer.
func TestGCSFaultOneAttempt(t *testing.T) {
	tg, proxy, _ := faultyTarget(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("r"), 600<<10) // one request with the default 2 MiB chunks
	require.NoError(t, tg.Put(ctx, "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	proxy.SetRules(httpfault.Rule{
		Status: http.StatusServiceUnavailable, RetryAfter: "7",
		Body: jsonError(503, "backendError", "Backend Error"), ContentType: "application/json",
	})
	ops := map[string]func() error{
		"put": func() error {
			return tg.Put(ctx, "y", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
		},
		"get": func() error {
			_, err := tg.Get(ctx, "x", 0, -1)
			return err
		},
		"stat": func() error {
			_, err := tg.Stat(ctx, "x")
			return err
		},
		"list":   func() error { return tg.List(ctx, "", func(target.Info) error { return nil }) },
		"delete": func() error { return tg.Delete(ctx, "x") },
	}
	for op, fn := range ops {
		before := proxy.Requests()
		err := fn()
		require.Equal(t, 1, proxy.Requests()-before, "%s made more than one request", op)
		var se *target.StatusError
		require.True(t, errors.As(err, &se), "%s: %v", op, err)
		require.Equal(t, http.StatusServiceUnavailable, se.Code, op)
		require.Equal(t, op, se.Op)
		require.Equal(t, 7*time.Second, se.RetryAfter, op)
		require.ErrorIs(t, err, target.ErrUnavailable, op)
	}
}

func TestGCSFaultRetriesGiveUp(t *testing.T) {
	tg, proxy, cfg := faultyTarget(t)
	r, ev := retried(t, tg, cfg)
	proxy.SetRules(httpfault.Rule{Method: http.MethodGet, Status: http.StatusBadGateway, Body: jsonError(502, "backendError", "Bad Gateway"), ContentType: "application/json"})
	_, err := r.Stat(t.Context(), "never")
	require.ErrorContains(t, err, "giving up after 4 attempts") // Cinder's 3 retries
	require.ErrorIs(t, err, target.ErrUnavailable)
	require.Equal(t, 4, proxy.Faults())
	require.Len(t, ev.list(), 3)
}

// TestGCSFaultPermissionDenied: a 403 is one clear error, not retried.
func TestGCSFaultPermissionDenied(t *testing.T) {
	tg, proxy, cfg := faultyTarget(t)
	r, ev := retried(t, tg, cfg)
	proxy.SetRules(httpfault.Rule{
		Status: http.StatusForbidden, ContentType: "application/json",
		Body: jsonError(403, "forbidden", "anonymous caller does not have storage.objects.create access to the Google Cloud Storage object"),
	})
	data := []byte("denied")
	err := r.Put(t.Context(), "p", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, fmt.Sprintf("access to bucket %q denied", cfg.Bucket))
	require.ErrorContains(t, err, "no credentials were sent")
	require.Equal(t, 1, proxy.Faults(), "a 403 was retried")
	require.Empty(t, ev.list())

	// A 401 too.
	proxy.SetRules(httpfault.Rule{Status: http.StatusUnauthorized, ContentType: "application/json",
		Body: jsonError(401, "required", "Anonymous caller does not have storage.objects.get access")})
	_, err = r.Stat(t.Context(), "p")
	require.ErrorIs(t, err, target.ErrPermission)
	require.Equal(t, 2, proxy.Faults())
}

func TestGCSMissingBucket(t *testing.T) {
	s := requireServer(t)
	cfg := s.config(uniqueBucket(t))
	cfg.CreateBucket = false
	_, err := gcs.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, fmt.Sprintf("bucket %q does not exist", cfg.Bucket))
	require.ErrorContains(t, err, "Config.CreateBucket")

	// Created when asked, with Cinder's location and storage class (the
	// emulator ignores the storage class, so the request is checked).
	recorder := newTamperProxy(t, s.endpoint)
	cfg.Endpoint = recorder.URL
	cfg.CreateBucket = true
	tg := open(t, cfg)
	_, _, inserts := recorder.seen()
	require.Len(t, inserts, 1)
	var sent struct{ Name, Location, StorageClass string }
	require.NoError(t, json.Unmarshal([]byte(inserts[0]), &sent))
	require.Equal(t, cfg.Bucket, sent.Name)
	require.Equal(t, gcs.DefaultBucketLocation, sent.Location)
	require.Equal(t, gcs.DefaultStorageClass, sent.StorageClass)
	res, err := http.Get(s.endpoint + "/storage/v1/b/" + cfg.Bucket)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "the bucket was not created")

	// Other settings are sent as they are given.
	cfg2 := s.config(uniqueBucket(t))
	cfg2.Endpoint, cfg2.BucketLocation, cfg2.StorageClass = recorder.URL, "EUROPE-WEST1", "COLDLINE"
	open(t, cfg2)
	_, _, inserts = recorder.seen()
	require.Len(t, inserts, 2)
	require.NoError(t, json.Unmarshal([]byte(inserts[1]), &sent))
	require.Equal(t, "EUROPE-WEST1", sent.Location)
	require.Equal(t, "COLDLINE", sent.StorageClass)

	// Opening an existing bucket with CreateBucket is fine.
	open(t, cfg)

	// A bucket deleted after New: writes say so.
	req, err := http.NewRequest(http.MethodDelete, s.endpoint+"/storage/v1/b/"+cfg.Bucket, nil)
	require.NoError(t, err)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Less(t, res.StatusCode, 300, "deleting the bucket")
	err = tg.Put(t.Context(), "o", bytes.NewReader([]byte("o")), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, fmt.Sprintf("bucket %q does not exist", cfg.Bucket))
}

func TestGCSCreateBucketNeedsProject(t *testing.T) {
	s := requireServer(t)
	cfg := s.config(uniqueBucket(t))
	cfg.ProjectID = ""
	_, err := gcs.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.ErrorContains(t, err, "Config.ProjectID")
}
