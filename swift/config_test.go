package swift

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chunkback/chunkback/target"
)

func validSingleUser() Config {
	return Config{AuthStrategy: AuthSingleUser, AuthURL: "http://127.0.0.1:8080/auth/v1.0", User: "test:tester", Key: "testing"}
}

func TestSwiftConfigValidate(t *testing.T) {
	v2 := validSingleUser()
	v2.AuthURL, v2.AuthVersion, v2.Tenant = "https://keystone:5000/v2.0", 2, "demo"
	v3 := validSingleUser()
	v3.AuthURL, v3.AuthVersion, v3.Project, v3.UserDomain = "https://keystone:5000/v3", 3, "demo", "Default"

	ok := []struct {
		name string
		cfg  Config
	}{
		{"single_user v1", validSingleUser()},
		{"per_user", Config{Token: "t", StorageURL: "http://127.0.0.1:8080/v1/AUTH_test"}},
		{"v2", v2},
		{"v3", v3},
		{"v3 with project domain, region, interface", func() Config {
			c := v3
			c.ProjectDomain, c.Region, c.Interface = "other", "RegionTwo", InterfaceInternal
			return c
		}()},
		{"prefix with trailing slash", func() Config { c := validSingleUser(); c.Prefix = "a/b/"; return c }()},
		{"sizes", func() Config {
			c := validSingleUser()
			c.ObjectSize, c.BlockSize, c.SegmentSize = 65536, 4096, 1<<20
			return c
		}()},
	}
	for _, tc := range ok {
		if err := tc.cfg.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", tc.name, err)
		}
	}

	bad := []struct {
		name  string
		cfg   Config
		field string // the error must name it
	}{
		{"zero Config (per_user without token)", Config{}, "Token"},
		{"per_user without storage URL", Config{Token: "t"}, "StorageURL"},
		{"per_user with a bad storage URL", Config{Token: "t", StorageURL: "ftp://x/v1"}, "StorageURL"},
		{"unknown strategy", Config{AuthStrategy: "shared"}, "AuthStrategy"},
		{"no auth URL", func() Config { c := validSingleUser(); c.AuthURL = ""; return c }(), "AuthURL"},
		{"auth URL with credentials", func() Config { c := validSingleUser(); c.AuthURL = "http://u:secret@h/auth/v1.0"; return c }(), "AuthURL"},
		{"auth URL without host", func() Config { c := validSingleUser(); c.AuthURL = "http:///auth"; return c }(), "AuthURL"},
		{"auth version 4", func() Config { c := validSingleUser(); c.AuthVersion = 4; return c }(), "AuthVersion"},
		{"no user", func() Config { c := validSingleUser(); c.User = ""; return c }(), "User"},
		{"no key", func() Config { c := validSingleUser(); c.Key = ""; return c }(), "Key"},
		{"v2 without tenant", func() Config { c := v2; c.Tenant = ""; return c }(), "Tenant"},
		{"v2 with v3 fields", func() Config { c := v2; c.UserDomain = "Default"; return c }(), "UserDomain"},
		{"v3 without project", func() Config { c := v3; c.Project = ""; return c }(), "Project"},
		{"v3 without user domain", func() Config { c := v3; c.UserDomain = ""; return c }(), "UserDomain"},
		{"v3 with tenant", func() Config { c := v3; c.Tenant = "demo"; return c }(), "Tenant"},
		{"v1 with keystone fields", func() Config { c := validSingleUser(); c.Project = "p"; return c }(), "Project"},
		{"bad interface", func() Config { c := v3; c.Interface = "publicURL"; return c }(), "Interface"},
		{"container with slash", func() Config { c := validSingleUser(); c.Container = "a/b"; return c }(), "Container"},
		{"container too long", func() Config { c := validSingleUser(); c.Container = strings.Repeat("c", 257); return c }(), "Container"},
		{"segment container is the container", func() Config {
			c := validSingleUser()
			c.Container, c.SegmentContainer = "x", "x"
			return c
		}(), "SegmentContainer"},
		{"bad prefix", func() Config { c := validSingleUser(); c.Prefix = "/abs"; return c }(), "Prefix"},
		{"prefix with ..", func() Config { c := validSingleUser(); c.Prefix = "a/../b"; return c }(), "Prefix"},
		{"object size not a multiple of block size", func() Config {
			c := validSingleUser()
			c.ObjectSize = DefaultObjectSize + 1
			return c
		}(), "ObjectSize"},
		{"negative block size", func() Config { c := validSingleUser(); c.BlockSize = -1; return c }(), "BlockSize"},
		{"negative object size", func() Config { c := validSingleUser(); c.ObjectSize = -1; return c }(), "ObjectSize"},
		{"negative backoff", func() Config { c := validSingleUser(); c.RetryBackoff = -time.Second; return c }(), "RetryBackoff"},
		{"segment size too small", func() Config { c := validSingleUser(); c.SegmentSize = 1000; return c }(), "SegmentSize"},
		{"segment size too large", func() Config { c := validSingleUser(); c.SegmentSize = 6 << 30; return c }(), "SegmentSize"},
		{"negative timeout", func() Config { c := validSingleUser(); c.Timeout = -1; return c }(), "Timeout"},
		{"negative connect timeout", func() Config { c := validSingleUser(); c.ConnectTimeout = -1; return c }(), "ConnectTimeout"},
		{"CA file and insecure", func() Config { c := validSingleUser(); c.CAFile, c.Insecure = "/x.pem", true; return c }(), "CAFile"},
	}
	for _, tc := range bad {
		err := tc.cfg.Validate()
		if !errors.Is(err, target.ErrInvalidArgument) {
			t.Errorf("%s: Validate = %v, want an error wrapping ErrInvalidArgument", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("%s: error %q does not name Config.%s", tc.name, err, tc.field)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "testing") {
			t.Errorf("%s: error %q shows a credential", tc.name, err)
		}
	}
}

func TestSwiftConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	switch {
	case d.AuthStrategy != AuthPerUser:
		t.Errorf("AuthStrategy = %q, want per_user (Cinder's default)", d.AuthStrategy)
	case d.AuthVersion != 1:
		t.Errorf("AuthVersion = %d, want 1", d.AuthVersion)
	case d.Container != "volumebackups":
		t.Errorf("Container = %q, want volumebackups", d.Container)
	case d.SegmentContainer != "volumebackups_segments":
		t.Errorf("SegmentContainer = %q", d.SegmentContainer)
	case d.ObjectSize != 52428800 || d.BlockSize != 32768:
		t.Errorf("ObjectSize, BlockSize = %d, %d; want Cinder's 52428800, 32768", d.ObjectSize, d.BlockSize)
	case d.RetryAttempts != 3 || d.RetryBackoff != 2*time.Second:
		t.Errorf("RetryAttempts, RetryBackoff = %d, %v; want 3, 2s", d.RetryAttempts, d.RetryBackoff)
	case d.SegmentSize != 5<<30:
		t.Errorf("SegmentSize = %d, want 5 GiB", d.SegmentSize)
	case d.Interface != InterfacePublic:
		t.Errorf("Interface = %q", d.Interface)
	}
}

func TestSwiftConfigRetryPolicy(t *testing.T) {
	p := Config{}.RetryPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.MaxAttempts != 4 || p.BaseDelay != 2*time.Second || p.MaxDelay != 64*time.Second {
		t.Errorf("default policy %+v: want 4 attempts (3 retries), 2s doubling to 64s", p)
	}
	for _, code := range []int{408, 422, 429, 498, 500, 502, 503, 504} {
		found := false
		for _, c := range p.RetryStatusCodes {
			found = found || c == code
		}
		if !found {
			t.Errorf("status %d is not retried", code)
		}
	}
	if p := (Config{RetryAttempts: -1}).RetryPolicy(); p.MaxAttempts != 1 {
		t.Errorf("RetryAttempts -1: MaxAttempts = %d, want 1", p.MaxAttempts)
	}
	if p := (Config{RetryAttempts: 7, RetryBackoff: 100 * time.Second}).RetryPolicy(); p.MaxAttempts != 8 || p.BaseDelay != 100*time.Second || p.MaxDelay < p.BaseDelay {
		t.Errorf("RetryAttempts 7, backoff 100s: %+v", p)
	} else if err := p.Validate(); err != nil {
		t.Error(err)
	}
}

func TestSwiftConfigCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{notPEM, filepath.Join(dir, "missing.pem")} {
		c := validSingleUser()
		c.CAFile = file
		_, err := New(t.Context(), c)
		if !errors.Is(err, target.ErrInvalidArgument) || !strings.Contains(err.Error(), "Config.CAFile") {
			t.Errorf("CAFile %s: New = %v, want an ErrInvalidArgument naming Config.CAFile", file, err)
		}
	}
}
