package targeturl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"testing"

	azblobcontainer "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

func TestAzureConfigFromURL(t *testing.T) {
	keyEnv := map[string]string{envAzureAccount: "acct", envAzureKey: azuriteKey}
	for _, tc := range []struct {
		raw  string
		env  map[string]string
		want azure.Config
	}{
		{"azblob://backups", keyEnv, azure.Config{Container: "backups", AccountName: "acct", AccountKey: azuriteKey}},
		{"azblob://backups/ci/nightly/", keyEnv, azure.Config{Container: "backups", Prefix: "ci/nightly", AccountName: "acct", AccountKey: azuriteKey}},
		{
			"azblob://backups/ci?endpoint=http://127.0.0.1:10000/devstoreaccount1&access_tier=Cool&block_size=4194304&concurrency=8&single_put_threshold=1048576&max_retries=5",
			map[string]string{envAzureKey: azuriteKey},
			azure.Config{
				Container: "backups", Prefix: "ci", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountKey: azuriteKey,
				AccessTier: "Cool", BlockSize: 4 << 20, Concurrency: 8, SinglePutThreshold: 1 << 20, MaxRetries: 5,
			},
		},
		{"azblob://backups?max_retries=0", keyEnv, azure.Config{Container: "backups", AccountName: "acct", AccountKey: azuriteKey, MaxRetries: -1}},
		{
			"azblob://backups", map[string]string{envAzureEndpoint: "http://127.0.0.1:10000/devstoreaccount1", envAzureSASToken: "sv=1&sig=abc"},
			azure.Config{Container: "backups", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", SASToken: "sv=1&sig=abc"},
		},
		{
			// A connection string wins over a stray account and endpoint.
			"azblob://backups", map[string]string{envAzureConnectionString: "UseDevelopmentStorage=true", envAzureAccount: "other", envAzureEndpoint: "http://x/y"},
			azure.Config{Container: "backups", ConnectionString: "UseDevelopmentStorage=true"},
		},
		{
			// No secret: DefaultAzureCredential.
			"azblob://backups/p", map[string]string{envAzureAccount: "acct"},
			azure.Config{Container: "backups", Prefix: "p", AccountName: "acct"},
		},
	} {
		u, err := url.Parse(tc.raw)
		require.NoError(t, err)
		got, err := azureConfig(u, func(k string) string { return tc.env[k] })
		require.NoError(t, err, tc.raw)
		assert.Equal(t, tc.want, got, tc.raw)
	}
}

func TestAzureConfigFromBadURL(t *testing.T) {
	keyEnv := map[string]string{envAzureAccount: "acct", envAzureKey: azuriteKey}
	for _, tc := range []struct {
		raw, want string
		env       map[string]string
	}{
		{"azblob:///prefix", "no container", keyEnv},
		{"azblob://user:pw@backups", "no user or password", keyEnv},
		{"azblob://backups?bogus=1", `unknown parameter "bogus"`, keyEnv},
		{"azblob://backups?sv=2020&sig=secret", "AZURE_STORAGE_SAS_TOKEN", keyEnv},
		{"azblob://backups?block_size=big", "block_size", keyEnv},
		{"azblob://backups?concurrency=0", "concurrency", keyEnv},
		{"azblob://backups?max_retries=-2", "max_retries", keyEnv},
		{"azblob://backups?access_tier=Premium", "AccessTier", keyEnv},
		{"azblob://Backups", "Container", keyEnv},
		{"azblob://backups", "AccountName is empty", map[string]string{envAzureKey: azuriteKey}},
		{"azblob://backups", "unset one", map[string]string{envAzureConnectionString: "UseDevelopmentStorage=true", envAzureKey: azuriteKey}},
		{"azblob://backups?endpoint=http://127.0.0.1:1/devstoreaccount1", "does not go with", map[string]string{envAzureConnectionString: "UseDevelopmentStorage=true"}},
		{"azblob://backups", "AccountKey and SASToken", map[string]string{envAzureAccount: "acct", envAzureKey: azuriteKey, envAzureSASToken: "sig=x"}},
		{"azblob://backups", "https", map[string]string{envAzureEndpoint: "http://127.0.0.1:10000/devstoreaccount1"}},
	} {
		u, err := url.Parse(tc.raw)
		require.NoError(t, err)
		_, err = azureConfig(u, func(k string) string { return tc.env[k] })
		require.Error(t, err, tc.raw)
		assert.Contains(t, err.Error(), tc.want, tc.raw)
		assert.NotContains(t, err.Error(), azuriteKey, "errors never quote a key")
		assert.NotContains(t, err.Error(), "secret", "errors never quote a SAS")
	}
}

// azblob:// URLs open the real Azurite, with each kind of credentials.
func TestAzureOpen(t *testing.T) {
	env := servertest.Require(t, "azurite")
	var b [4]byte
	_, _ = rand.Read(b[:])
	container := "cb-url-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		cred, err := azblobcontainer.NewSharedKeyCredential(env.Get(t, "ACCOUNT"), env.Get(t, "KEY"))
		require.NoError(t, err)
		c, err := azblobcontainer.NewClientWithSharedKeyCredential(env.Get(t, "ENDPOINT")+"/"+container, cred, nil)
		require.NoError(t, err)
		_, _ = c.Delete(context.Background(), nil)
	})
	for _, tc := range []struct {
		name string
		env  map[string]string
		url  string
	}{
		{"connection string", map[string]string{envAzureConnectionString: env.Get(t, "CONNECTION_STRING")}, "azblob://" + container + "/cs"},
		{"account key", map[string]string{envAzureAccount: env.Get(t, "ACCOUNT"), envAzureKey: env.Get(t, "KEY")},
			"azblob://" + container + "/key?endpoint=" + url.QueryEscape(env.Get(t, "ENDPOINT")) + "&block_size=65536&single_put_threshold=65536"},
		{"endpoint from the environment", map[string]string{envAzureKey: env.Get(t, "KEY"), envAzureEndpoint: env.Get(t, "ENDPOINT")}, "azblob://" + container + "/env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{envAzureConnectionString, envAzureAccount, envAzureKey, envAzureSASToken, envAzureEndpoint} {
				t.Setenv(k, tc.env[k])
			}
			// The first opener creates the container (Options.Create).
			o, err := Open(t.Context(), tc.url, Options{Create: true})
			require.NoError(t, err)
			defer o.Close()
			assert.Equal(t, "azblob", o.Scheme)
			tg, ok := target.As[target.LayoutTarget](o)
			require.True(t, ok)
			assert.Equal(t, target.LayoutObject, tg.CinderLayout())
			data := bytes.Repeat([]byte("chunkback "), 20000)
			require.NoError(t, o.Put(t.Context(), "dir/obj", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
			rc, err := o.Get(t.Context(), "dir/obj", 0, -1)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			rc.Close()
			require.NoError(t, err)
			require.Equal(t, data, got)
			require.NoError(t, o.Delete(t.Context(), "dir/obj"))
		})
	}

	// Without Options.Create, a missing container is a clear error.
	t.Setenv(envAzureConnectionString, env.Get(t, "CONNECTION_STRING"))
	_, err := Open(t.Context(), "azblob://cb-url-missing-"+hex.EncodeToString(b[:]), Options{})
	require.ErrorIs(t, err, target.ErrNotFound)
	assert.Contains(t, err.Error(), "--create")

	// A wrong key: one clear permission error.
	t.Setenv(envAzureConnectionString, "")
	t.Setenv(envAzureAccount, env.Get(t, "ACCOUNT"))
	t.Setenv(envAzureKey, "d3Jvbmc=")
	t.Setenv(envAzureEndpoint, env.Get(t, "ENDPOINT"))
	_, err = Open(t.Context(), "azblob://"+container, Options{})
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "AZURE_STORAGE_KEY")
}
