package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/target"
)

// proxied returns a per_user Config whose storage URL goes through a new
// fault-injecting proxy in front of s.
func proxied(t *testing.T, s server, rules ...httpfault.Rule) (Config, *httpfault.Proxy) {
	t.Helper()
	token, storage := s.token(t)
	u, err := url.Parse(storage)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := httpfault.New(u.Scheme+"://"+u.Host, rules...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	cfg := Config{Token: token, StorageURL: proxy.URL + u.Path, Container: testContainer, CreateContainer: true, Prefix: uniquePrefix(t)}
	return cfg, proxy
}

// quickRetry is cfg's retry policy with short backoffs, so that the waits
// the tests see are the servers' Retry-After.
func quickRetry(cfg Config) target.RetryPolicy {
	p := cfg.RetryPolicy()
	p.BaseDelay, p.MaxDelay = 10*time.Millisecond, 50*time.Millisecond
	return p
}

// TestSwiftRetryAfter: 503 and 429 with Retry-After, and Swift's own 498,
// from a proxy in front of the real server, are retried by target.NewRetry
// with the target's policy, waiting as long as asked, and succeed.
func TestSwiftRetryAfter(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		cfg, proxy := proxied(t, s)
		bare := open(t, cfg)
		rt, err := target.NewRetry(bare, quickRetry(cfg))
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		data := []byte("retried data")
		objPath := "/" + testContainer + "/" + cfg.Prefix + "/obj"

		// The bare target reports the status and the delay asked for.
		proxy.SetRules(httpfault.Rule{Method: http.MethodPut, Path: objPath, Status: 503, RetryAfter: "1", Times: 1})
		err = bare.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
		var se *target.StatusError
		if !errors.As(err, &se) || se.Code != 503 || se.RetryAfter != time.Second || !errors.Is(err, target.ErrUnavailable) {
			t.Fatalf("Put against a 503 = %v, want a StatusError 503 with RetryAfter 1s", err)
		}

		for _, rule := range []httpfault.Rule{
			{Method: http.MethodPut, Path: objPath, Status: 503, RetryAfter: "1", Times: 2},
			{Method: http.MethodGet, Path: objPath, Status: 429, RetryAfter: "1", Times: 1},
			{Method: http.MethodHead, Path: objPath, Status: 498, Times: 1},
		} {
			proxy.SetRules(rule)
			before := proxy.Faults()
			start := time.Now()
			switch rule.Method {
			case http.MethodPut:
				err = rt.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
			case http.MethodGet:
				var rc io.ReadCloser
				if rc, err = rt.Get(ctx, "obj", 0, -1); err == nil {
					got, _ := io.ReadAll(rc)
					rc.Close()
					if !bytes.Equal(got, data) {
						t.Errorf("Get after a 429 = %q", got)
					}
				}
			case http.MethodHead:
				_, err = rt.Stat(ctx, "obj")
			}
			if err != nil {
				t.Fatalf("%s with %d x HTTP %d: %v", rule.Method, rule.Times, rule.Status, err)
			}
			if n := proxy.Faults() - before; n != rule.Times {
				t.Errorf("%s: %d faults served, want %d", rule.Method, n, rule.Times)
			}
			if rule.RetryAfter != "" {
				if d, want := time.Since(start), time.Duration(rule.Times)*time.Second; d < want {
					t.Errorf("%s: succeeded after %v; Retry-After asked for %v", rule.Method, d, want)
				}
			}
		}
	})
}

// TestSwiftMissingContainer: a missing container is a clear error, or is
// created (with the storage policy asked for) when the Config says so.
func TestSwiftMissingContainer(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		cfg := s.config(t)
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Container = "chunkback-missing-" + hex.EncodeToString(b[:])
		cfg.CreateContainer = false
		_, err := New(t.Context(), cfg)
		if !errors.Is(err, target.ErrNotFound) || !strings.Contains(err.Error(), cfg.Container) || !strings.Contains(err.Error(), "Config.CreateContainer") {
			t.Fatalf("New on a missing container = %v, want ErrNotFound naming it and Config.CreateContainer", err)
		}

		cfg.CreateContainer = true
		cfg.StoragePolicy = s.storagePolicy
		var tg *Target
		t.Cleanup(func() { // after open's cleanup has emptied it
			if tg != nil {
				_ = tg.conn.ContainerDelete(context.Background(), cfg.Container)
			}
		})
		tg = open(t, cfg)
		_, hdrs, err := tg.conn.Container(t.Context(), cfg.Container)
		if err != nil {
			t.Fatalf("the container was not created: %v", err)
		}
		if s.storagePolicy != "" && hdrs["X-Storage-Policy"] != s.storagePolicy {
			t.Errorf("container created with policy %q, want %q", hdrs["X-Storage-Policy"], s.storagePolicy)
		}
		roundTrip(t, tg)
	})
}

// TestSwiftUnknownStoragePolicy: creating a container with a policy the
// cluster lacks fails naming Config.StoragePolicy. (Swift only: radosgw
// maps policies to placement targets.)
func TestSwiftUnknownStoragePolicy(t *testing.T) {
	s := swiftServer(t)
	cfg := s.config(t)
	cfg.Container, cfg.StoragePolicy = "chunkback-no-such-policy", "bronze"
	_, err := New(t.Context(), cfg)
	if !errors.Is(err, target.ErrInvalidArgument) || !strings.Contains(err.Error(), "Config.StoragePolicy") {
		t.Fatalf("New with policy bronze = %v, want ErrInvalidArgument naming Config.StoragePolicy", err)
	}
}

// flipper is a reverse proxy that alters one byte of the body of every
// object PUT into the container, as a faulty network or middlebox would.
func flipper(t *testing.T, storage string) string {
	t.Helper()
	u, err := url.Parse(storage)
	if err != nil {
		t.Fatal(err)
	}
	up := &url.URL{Scheme: u.Scheme, Host: u.Host}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(up)
		r.Out.Host = r.In.Host
		if r.In.Method == http.MethodPut && r.In.URL.Query().Get("multipart-manifest") == "" &&
			strings.Count(strings.TrimPrefix(r.In.URL.Path, u.Path+"/"), "/") > 0 && r.In.ContentLength > 10 {
			r.Out.Body = &flipReader{r: r.In.Body, at: 7}
		}
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

type flipReader struct {
	r   io.ReadCloser
	n   int64
	at  int64
	hit bool
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if !f.hit && f.at >= f.n && f.at < f.n+int64(n) {
		p[f.at-f.n] ^= 0xff
		f.hit = true
	}
	f.n += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }

// TestSwiftChecksum: data altered between the client and the server, or a
// wrong ContentMD5, fails with ErrChecksum and leaves no object (and an
// object being replaced keeps its old content when Swift refuses the new).
func TestSwiftChecksum(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		ctx := t.Context()
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16+3) // 1 MiB + 48 bytes
		sum := md5.Sum(data)
		wrong := md5.Sum([]byte("something else"))

		for _, segSize := range []int64{0, 1 << 20} { // one PUT; segments
			cfg := s.config(t)
			cfg.SegmentSize = segSize
			tg := open(t, cfg)
			old := []byte("old content")
			if err := tg.Put(ctx, "kept", bytes.NewReader(old), int64(len(old)), target.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"new", "kept"} {
				err := tg.Put(ctx, name, bytes.NewReader(data), int64(len(data)), target.PutOptions{ContentMD5: wrong[:]})
				if !errors.Is(err, ErrChecksum) {
					t.Errorf("segment size %d: Put %q with a wrong ContentMD5 = %v, want ErrChecksum", segSize, name, err)
				}
			}
			if _, err := tg.Stat(ctx, "new"); !errors.Is(err, target.ErrNotFound) {
				t.Errorf("segment size %d: an object refused for its checksum exists (%v)", segSize, err)
			}
			requireContent(t, tg, "kept", old)
			if segs := segmentNamesIn(t, tg, tg.prefix+"new"); len(segs) != 0 {
				t.Errorf("segment size %d: segments left after a checksum failure: %q", segSize, segs)
			}

			// Through a proxy that alters the data: the server verifies
			// ContentMD5; without it the client checks the ETag and deletes.
			ccfg := cfg
			ccfg.AuthStrategy, ccfg.Token, ccfg.StorageURL = AuthPerUser, "", ""
			ccfg.AuthURL, ccfg.User, ccfg.Key = "", "", ""
			ccfg.Token, ccfg.StorageURL = s.token(t)
			ccfg.StorageURL = flipper(t, ccfg.StorageURL)
			altered := open(t, ccfg)
			for _, opts := range []target.PutOptions{{ContentMD5: sum[:]}, {}} {
				err := altered.Put(ctx, "altered", bytes.NewReader(data), int64(len(data)), opts)
				if !errors.Is(err, ErrChecksum) {
					t.Errorf("segment size %d, ContentMD5 %v: Put altered on the way = %v, want ErrChecksum", segSize, opts.ContentMD5 != nil, err)
				}
				if _, err := tg.Stat(ctx, "altered"); !errors.Is(err, target.ErrNotFound) {
					t.Errorf("segment size %d, ContentMD5 %v: the altered object exists (%v)", segSize, opts.ContentMD5 != nil, err)
				}
			}
			if segs := segmentNamesIn(t, tg, tg.prefix+"altered"); len(segs) != 0 {
				t.Errorf("segment size %d: segments left after altered uploads: %q", segSize, segs)
			}
		}
	})
}

func requireContent(t *testing.T, tg target.Target, name string, want []byte) {
	t.Helper()
	rc, err := tg.Get(t.Context(), name, 0, -1)
	if err != nil {
		t.Fatalf("Get %q: %v", name, err)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get %q: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
	}
}

// TestSwiftTLS reaches the real server through a TLS front with its own
// CA: trusted with Config.CAFile, refused without it (never retried), and
// accepted with Config.Insecure.
func TestSwiftTLS(t *testing.T) {
	s := swiftServer(t)
	token, storage := s.token(t)
	u, err := url.Parse(storage)
	if err != nil {
		t.Fatal(err)
	}
	up := &url.URL{Scheme: u.Scheme, Host: u.Host}
	front := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(up)
		r.Out.Host = r.In.Host
	}})
	defer front.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{Token: token, StorageURL: front.URL + u.Path, Container: testContainer, CreateContainer: true, Prefix: uniquePrefix(t)}

	cfg := base
	cfg.CAFile = caFile
	roundTrip(t, open(t, cfg))

	_, err = New(t.Context(), base)
	if !errors.Is(err, target.ErrPermanent) || !target.IsPermanent(err) || !strings.Contains(err.Error(), "Config.CAFile") {
		t.Fatalf("New without the CA = %v, want a permanent error naming Config.CAFile", err)
	}

	cfg = base
	cfg.Insecure = true
	roundTrip(t, open(t, cfg))
}

// cutter is a reverse proxy that breaks the connection of the first object
// PUT once it has forwarded cut bytes of its body, as a server that dies in
// the middle of an upload does.
func cutter(t *testing.T, storage string, cut int64) string {
	t.Helper()
	u, err := url.Parse(storage)
	if err != nil {
		t.Fatal(err)
	}
	up := &url.URL{Scheme: u.Scheme, Host: u.Host}
	var once sync.Once
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(up)
		r.Out.Host = r.In.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit := false
		if r.Method == http.MethodPut && r.ContentLength > cut {
			once.Do(func() { hit = true })
		}
		if !hit {
			rp.ServeHTTP(w, r)
			return
		}
		// Read part of the body, forward nothing, and drop the connection.
		_, _ = io.CopyN(io.Discard, r.Body, cut)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

// TestSwiftConnectionLost: an upload whose connection breaks in the middle
// (the server or the network dies) fails, leaves nothing under the name,
// and the next upload succeeds.
func TestSwiftConnectionLost(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		data := make([]byte, 3<<20)
		_, _ = rand.Read(data)
		for _, segSize := range []int64{0, 1 << 20} {
			token, storage := s.token(t)
			tg := open(t, Config{Token: token, StorageURL: cutter(t, storage, 1<<19), Container: testContainer,
				Prefix: uniquePrefix(t), SegmentSize: segSize})
			err := tg.Put(t.Context(), "lost", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
			if err == nil {
				t.Fatalf("segment size %d: Put through a broken connection succeeded", segSize)
			}
			if _, err := tg.Stat(t.Context(), "lost"); !errors.Is(err, target.ErrNotFound) {
				t.Errorf("segment size %d: after a broken upload Stat = %v, want ErrNotFound", segSize, err)
			}
			if err := tg.Put(t.Context(), "lost", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
				t.Fatalf("segment size %d: the next Put: %v", segSize, err)
			}
			requireContent(t, tg, "lost", data)
			if segSize > 0 {
				if n := len(segmentNamesIn(t, tg, tg.prefix+"lost")); n != 3 {
					t.Errorf("%d segments after a broken and a good upload, want 3", n)
				}
			}
		}
	})
}
