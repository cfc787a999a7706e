package swift

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/target"
)

// roundTrip puts, reads back, lists and deletes one object.
func roundTrip(t *testing.T, tg target.Target) {
	t.Helper()
	ctx := t.Context()
	data := []byte("hello, swift")
	if err := tg.Put(ctx, "dir/obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, err := tg.Get(ctx, "dir/obj", 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v; want %q", got, err, data)
	}
	var names []string
	if err := tg.List(ctx, "dir/", func(i target.Info) error { names = append(names, i.Name); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(names) != 1 || names[0] != "dir/obj" {
		t.Fatalf("List = %q", names)
	}
	if err := tg.Delete(ctx, "dir/obj"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// TestSwiftPerUser opens the target the way Cinder's per_user mode does:
// with a token and storage URL obtained elsewhere (here: auth v1).
func TestSwiftPerUser(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		token, storageURL := s.token(t)
		cfg := Config{Token: token, StorageURL: storageURL, Container: testContainer, CreateContainer: true, Prefix: uniquePrefix(t)}
		roundTrip(t, open(t, cfg))

		cfg.Token = "AUTH_tk00000000000000000000000000000000"
		_, err := New(t.Context(), cfg)
		if !errors.Is(err, target.ErrPermission) || !target.IsPermanent(err) {
			t.Fatalf("New with a bad token = %v, want a permanent ErrPermission", err)
		}
		if !strings.Contains(err.Error(), "Config.Token") || strings.Contains(err.Error(), cfg.Token) {
			t.Errorf("error %q should name Config.Token and not show it", err)
		}
	})
}

// TestSwiftBadCredentials: a wrong key gives one clear error, after no more
// than the SDK's two authentication requests (it tries a refused request
// once more), and the retry decorator does not retry it.
func TestSwiftBadCredentials(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		u, err := url.Parse(s.authURL)
		if err != nil {
			t.Fatal(err)
		}
		proxy, err := httpfault.New(u.Scheme + "://" + u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		cfg := s.config(t)
		cfg.AuthURL = proxy.URL + u.Path
		cfg.Key = "wrong-key-do-not-print"
		_, err = New(t.Context(), cfg)
		if !errors.Is(err, target.ErrPermission) || !target.IsPermanent(err) {
			t.Fatalf("New with a wrong key = %v, want a permanent ErrPermission", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "Config.User") || !strings.Contains(msg, "Config.Key") || strings.Contains(msg, cfg.Key) {
			t.Errorf("error %q should name Config.User and Config.Key and not show the key", msg)
		}
		if n := proxy.Requests(); n > 2 {
			t.Errorf("%d requests for one refused authentication, want at most 2", n)
		}
	})
}

// TestSwiftForbidden: a user whose token is good but who may not use the
// container gets ErrPermission naming what to check. (Swift only: the
// radosgw script makes one user.)
func TestSwiftForbidden(t *testing.T) {
	s := swiftServer(t)
	open(t, s.config(t)) // the container exists
	cfg := s.config(t)
	cfg.User, cfg.Key = s.readerUser, s.readerKey
	_, err := New(t.Context(), cfg)
	var se *target.StatusError
	if !errors.Is(err, target.ErrPermission) || !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("New as %s = %v, want ErrPermission with HTTP 403", s.readerUser, err)
	}
	if !strings.Contains(err.Error(), "Config.User") || !strings.Contains(err.Error(), testContainer) {
		t.Errorf("error %q should name Config.User and the container", err)
	}
}

// TestSwiftTokenRenewal: in single_user mode a token refused in the middle
// of a run (expired) is renewed once and the operation goes on.
func TestSwiftTokenRenewal(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		tg := open(t, s.config(t))
		tg.conn.AuthToken = "AUTH_tkexpired00000000000000000000000000" // what an expired token looks like to the client
		roundTrip(t, tg)
	})
}

// keystone is a fake Keystone (v2 and v3) whose service catalog points at a
// real storage URL, with a real token: the request the SDK builds from
// Config is checked here, and the storage it finds is the real server's.
// There is no real Keystone on this machine.
type keystone struct {
	srv                    *httptest.Server
	token, storage, region string
	refuse                 bool

	mu       sync.Mutex
	requests int
	body     map[string]any // the last request's JSON
	path     string
}

func newKeystone(t *testing.T, token, storage, region string) *keystone {
	k := &keystone{token: token, storage: storage, region: region}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *keystone) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	k.mu.Lock()
	k.requests++
	k.body, k.path = body, r.URL.Path
	refuse := k.refuse
	k.mu.Unlock()
	if refuse {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error": {"code": 401, "message": "The request you have made requires authentication."}}`)
		return
	}
	bogus := "http://127.0.0.1:1/v1/AUTH_wrong"
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v2.0/tokens":
		_ = json.NewEncoder(w).Encode(map[string]any{"access": map[string]any{
			"token": map[string]any{"id": k.token, "expires": "2999-01-01T00:00:00Z"},
			"serviceCatalog": []any{
				map[string]any{"type": "compute", "endpoints": []any{map[string]any{"region": k.region, "publicURL": bogus}}},
				map[string]any{"type": "object-store", "endpoints": []any{
					map[string]any{"region": "RegionOne", "publicURL": bogus, "internalURL": bogus},
					map[string]any{"region": k.region, "publicURL": k.storage, "internalURL": bogus},
				}},
			},
		}})
	case "/v3/auth/tokens":
		w.Header().Set("X-Subject-Token", k.token)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
			"expires_at": "2999-01-01T00:00:00Z",
			"catalog": []any{map[string]any{"type": "object-store", "endpoints": []any{
				map[string]any{"region": "RegionOne", "interface": "public", "url": bogus},
				map[string]any{"region": k.region, "interface": "internal", "url": bogus},
				map[string]any{"region": k.region, "interface": "public", "url": k.storage},
			}}},
		}})
	default:
		http.NotFound(w, r)
	}
}

// field returns the value at a path of keys in the last request's JSON.
func (k *keystone) field(keys ...string) any {
	k.mu.Lock()
	defer k.mu.Unlock()
	var v any = k.body
	for _, key := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

func TestSwiftKeystoneV2(t *testing.T) {
	s := swiftServer(t)
	token, storage := s.token(t)
	k := newKeystone(t, token, storage, "RegionTwo")
	cfg := s.config(t)
	cfg.AuthURL, cfg.AuthVersion, cfg.User, cfg.Key, cfg.Tenant, cfg.Region = k.srv.URL+"/v2.0", 2, "svc", "svc-password", "backups", "RegionTwo"
	roundTrip(t, open(t, cfg))
	for path, want := range map[string]string{
		"auth/passwordCredentials/username": "svc",
		"auth/passwordCredentials/password": "svc-password",
		"auth/tenantName":                   "backups",
	} {
		if got := k.field(strings.Split(path, "/")...); got != want {
			t.Errorf("v2 request %s = %v, want %q", path, got, want)
		}
	}

	k.mu.Lock()
	k.refuse = true
	k.requests = 0
	k.mu.Unlock()
	_, err := New(t.Context(), cfg)
	if !errors.Is(err, target.ErrPermission) || !strings.Contains(err.Error(), "Config.Tenant") || strings.Contains(err.Error(), "svc-password") {
		t.Errorf("refused v2 auth: %v; want ErrPermission naming Config.Tenant, without the password", err)
	}
}

func TestSwiftKeystoneV3(t *testing.T) {
	s := swiftServer(t)
	token, storage := s.token(t)
	k := newKeystone(t, token, storage, "RegionTwo")
	cfg := s.config(t)
	cfg.AuthURL, cfg.AuthVersion, cfg.User, cfg.Key = k.srv.URL+"/v3", 3, "svc", "svc-password"
	cfg.Project, cfg.UserDomain, cfg.ProjectDomain, cfg.Region = "backups", "users", "projects", "RegionTwo"
	roundTrip(t, open(t, cfg))
	for path, want := range map[string]string{
		"auth/identity/password/user/name":        "svc",
		"auth/identity/password/user/password":    "svc-password",
		"auth/identity/password/user/domain/name": "users",
		"auth/scope/project/name":                 "backups",
		"auth/scope/project/domain/name":          "projects",
	} {
		if got := k.field(strings.Split(path, "/")...); got != want {
			t.Errorf("v3 request %s = %v, want %q", path, got, want)
		}
	}

	// No ProjectDomain: the project is looked up in the user's domain.
	cfg.ProjectDomain = ""
	open(t, cfg)
	if got := k.field("auth", "scope", "project", "domain", "name"); got != "users" {
		t.Errorf("v3 project domain without ProjectDomain = %v, want the user's domain", got)
	}

	// A region the catalog does not have.
	cfg.Region = "Nowhere"
	_, err := New(t.Context(), cfg)
	if !errors.Is(err, target.ErrInvalidArgument) || !strings.Contains(err.Error(), "Config.Region") {
		t.Errorf("unknown region: %v; want ErrInvalidArgument naming Config.Region", err)
	}

	// The internal endpoint of RegionTwo is not the storage: a target that
	// asks for it fails to reach its container, proving Interface is used.
	cfg.Region, cfg.Interface = "RegionTwo", InterfaceInternal
	cfg.ConnectTimeout = 5e9
	if _, err := New(t.Context(), cfg); err == nil {
		t.Errorf("Interface internal reached the public endpoint")
	}

	cfg.Interface = ""
	k.mu.Lock()
	k.refuse = true
	k.requests = 0
	k.mu.Unlock()
	_, err = New(t.Context(), cfg)
	if !errors.Is(err, target.ErrPermission) || !strings.Contains(err.Error(), "Config.UserDomain") {
		t.Errorf("refused v3 auth: %v; want ErrPermission naming Config.UserDomain", err)
	}
	k.mu.Lock()
	n := k.requests
	k.mu.Unlock()
	if n > 2 {
		t.Errorf("%d requests for one refused authentication, want at most 2", n)
	}
}
