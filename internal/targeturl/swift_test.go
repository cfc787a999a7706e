package targeturl

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	goswift "github.com/ncw/swift/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/swift"
	"github.com/chunkback/chunkback/target"
)

func TestSwiftConfigFromURL(t *testing.T) {
	env := map[string]string{
		"OS_AUTH_URL": "https://keystone:5000/v3", "OS_USERNAME": "svc", "OS_PASSWORD": "secret",
		"OS_PROJECT_NAME": "backups", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "projects",
		"OS_REGION_NAME": "RegionOne", "OS_CACERT": "/ca.pem", "OS_INTERFACE": "internal",
	}
	getenv := func(k string) string { return env[k] }
	u, err := url.Parse("swift://volumebackups/ci/host1/?region=RegionTwo&storage_policy=gold&segment_size=1073741824" +
		"&segment_container=segs&retry_attempts=5&retry_backoff=3&timeout=90s&connect_timeout=20")
	require.NoError(t, err)
	got, err := swiftConfigFromURL(u, getenv)
	require.NoError(t, err)
	assert.Equal(t, swift.Config{
		AuthStrategy: swift.AuthSingleUser, AuthURL: "https://keystone:5000/v3", AuthVersion: 3,
		User: "svc", Key: "secret", Project: "backups", UserDomain: "Default", ProjectDomain: "projects",
		Region: "RegionTwo", Interface: "internal", Container: "volumebackups", Prefix: "ci/host1",
		StoragePolicy: "gold", CAFile: "/ca.pem", SegmentSize: 1 << 30, SegmentContainer: "segs",
		RetryAttempts: 5, RetryBackoff: 3 * time.Second, Timeout: 90 * time.Second, ConnectTimeout: 20 * time.Second,
	}, got)

	// v1 (the auth URL says so), Keystone variables ignored.
	env = map[string]string{"OS_AUTH_URL": "http://127.0.0.1:8080/auth/v1.0", "OS_USERNAME": "test:tester", "OS_PASSWORD": "testing", "OS_PROJECT_NAME": "x"}
	u, _ = url.Parse("swift://c")
	got, err = swiftConfigFromURL(u, getenv)
	require.NoError(t, err)
	assert.Equal(t, swift.Config{AuthStrategy: swift.AuthSingleUser, AuthURL: env["OS_AUTH_URL"], AuthVersion: 1,
		User: "test:tester", Key: "testing", Container: "c"}, got)
	assert.Equal(t, 4, got.RetryPolicy().MaxAttempts, "Cinder's 3 retries")

	// v2 with OS_PROJECT_NAME as the tenant; publicURL spelling.
	env = map[string]string{"OS_AUTH_URL": "http://k:5000/v2.0", "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_NAME": "t", "OS_INTERFACE": "publicURL"}
	got, err = swiftConfigFromURL(u, getenv)
	require.NoError(t, err)
	assert.Equal(t, 2, got.AuthVersion)
	assert.Equal(t, "t", got.Tenant)
	assert.Equal(t, "public", got.Interface)

	// per_user when a token is given.
	env = map[string]string{"OS_AUTH_TOKEN": "tok", "OS_STORAGE_URL": "http://127.0.0.1:8080/v1/AUTH_test", "OS_INSECURE": "true"}
	got, err = swiftConfigFromURL(u, getenv)
	require.NoError(t, err)
	assert.Equal(t, swift.Config{AuthStrategy: swift.AuthPerUser, Token: "tok", StorageURL: env["OS_STORAGE_URL"], Container: "c", Insecure: true}, got)

	env = map[string]string{"OS_AUTH_URL": "http://127.0.0.1:8080/auth/v1.0", "OS_USERNAME": "u", "OS_PASSWORD": "secret"}
	for _, raw := range []string{
		"swift:///prefix",
		"swift://user:secret@c/p",
		"swift://c/p?nosuch=1",
		"swift://c/p?auth=shared",
		"swift://c/p?auth=per_user",
		"swift://c/p?auth_version=x",
		"swift://c/p?auth_version=4",
		"swift://c/p?insecure=maybe",
		"swift://c/p?segment_size=big",
		"swift://c/p?segment_size=100",
		"swift://c/p?retry_backoff=soon",
		"swift://c/../p",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = swiftConfigFromURL(u, getenv)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "secret", raw)
	}
	_, err = swiftConfigFromURL(u, func(string) string { return "" })
	require.ErrorContains(t, err, "OS_AUTH_URL", "no credentials at all")
}

// The URL each start script writes opens the real server, with the CLI's
// environment variables, and stores and reads an object; and a token with
// its storage URL opens it in per_user mode.
func TestSwiftOpenURL(t *testing.T) {
	for _, server := range []string{"swift", "ceph"} {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			for _, k := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_AUTH_VERSION"} {
				t.Setenv(k, env.Get(t, "CLI_"+k))
			}
			t.Setenv("OS_AUTH_TOKEN", "")
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			prefix := "targeturl-" + hex.EncodeToString(b)
			raw := env.Get(t, "URL_SWIFT") + "/" + prefix
			o, err := Open(t.Context(), raw, Options{Create: true})
			require.NoError(t, err, raw)
			defer o.Close()
			assert.Equal(t, "swift", o.Scheme)
			lt, ok := target.As[target.LayoutTarget](o)
			require.True(t, ok)
			assert.Equal(t, target.LayoutObject, lt.CinderLayout())
			assert.True(t, target.UsesContentMD5(o))
			putGet(t, o)

			// per_user: a token from auth v1, and the storage URL.
			c := &goswift.Connection{AuthUrl: env.Get(t, "CLI_OS_AUTH_URL"), AuthVersion: 1,
				UserName: env.Get(t, "CLI_OS_USERNAME"), ApiKey: env.Get(t, "CLI_OS_PASSWORD"), Transport: http.DefaultTransport}
			require.NoError(t, c.Authenticate(t.Context()))
			t.Setenv("OS_AUTH_URL", "")
			t.Setenv("OS_AUTH_TOKEN", c.AuthToken)
			t.Setenv("OS_STORAGE_URL", c.StorageUrl)
			p, err := Open(t.Context(), raw, Options{})
			require.NoError(t, err, "per_user")
			defer p.Close()
			putGet(t, p)

			// A missing container without --create: a clear error.
			missing := strings.Replace(raw, "swift://", "swift://no-such-container-", 1)
			_, err = Open(t.Context(), missing, Options{})
			require.ErrorIs(t, err, target.ErrNotFound)
			assert.Contains(t, err.Error(), "CreateContainer")
		})
	}
}

func putGet(t *testing.T, o target.Target) {
	t.Helper()
	ctx := t.Context()
	data := []byte("through the URL")
	require.NoError(t, o.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	rc, err := o.Get(ctx, "obj", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, errors.Join(err, rc.Close()))
	assert.Equal(t, data, got)
	require.NoError(t, o.Delete(ctx, "obj"))
}
