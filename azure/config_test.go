package azure_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/target"
)

const testKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

type noCredential struct{}

func (noCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, nil
}

func TestAzureConfigValid(t *testing.T) {
	for name, cfg := range map[string]azure.Config{
		"shared key":             {AccountName: "acct", AccountKey: testKey, Container: "backups"},
		"azurite":                {Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountKey: testKey, Container: "backups", Prefix: "ci/"},
		"azurite with account":   {Endpoint: "http://azurite:10000/devstoreaccount1/", AccountName: "devstoreaccount1", AccountKey: testKey, Container: "b-1"},
		"sas":                    {AccountName: "acct", SASToken: "?sv=2024-08-04&sp=racwdl&sig=abc", Container: "backups"},
		"connection string":      {ConnectionString: "UseDevelopmentStorage=true", Container: "backups"},
		"managed identity":       {AccountName: "acct", ManagedIdentity: true, ManagedIdentityClientID: "id", Container: "backups"},
		"default credential":     {AccountName: "acct", Container: "backups"},
		"token credential":       {Endpoint: "https://acct.blob.core.chinacloudapi.cn", Credential: noCredential{}, Container: "backups"},
		"tier and sizes":         {AccountName: "acct", AccountKey: testKey, Container: "backups", AccessTier: "archive", BlockSize: 64 << 10, Concurrency: 16, SinglePutThreshold: 1},
		"retries":                {AccountName: "acct", AccountKey: testKey, Container: "backups", MaxRetries: -1, RetryDelay: time.Second, MaxRetryDelay: 2 * time.Second, RetryStatusCodes: []int{503}, TryTimeout: time.Minute},
		"largest blocks and put": {AccountName: "acct", AccountKey: testKey, Container: "backups", BlockSize: azure.MaxBlockSize, SinglePutThreshold: azure.MaxSinglePutSize},
	} {
		assert.NoError(t, cfg.Validate(), name)
	}
}

func TestAzureConfigInvalid(t *testing.T) {
	key := azure.Config{AccountName: "acct", AccountKey: testKey, Container: "backups"}
	with := func(f func(*azure.Config)) azure.Config {
		c := key
		f(&c)
		return c
	}
	for _, tc := range []struct {
		cfg  azure.Config
		want string
	}{
		{with(func(c *azure.Config) { c.Container = "" }), "Config.Container is empty"},
		{with(func(c *azure.Config) { c.Container = "ab" }), "Config.Container"},
		{with(func(c *azure.Config) { c.Container = "Backups" }), "Config.Container"},
		{with(func(c *azure.Config) { c.Container = "a--b" }), "Config.Container"},
		{with(func(c *azure.Config) { c.Container = "-ab" }), "Config.Container"},
		{with(func(c *azure.Config) { c.Prefix = "/abs" }), "Config.Prefix"},
		{with(func(c *azure.Config) { c.Prefix = "a//b" }), "Config.Prefix"},
		{with(func(c *azure.Config) { c.AccountName = "" }), "Config.AccountName is empty"},
		{with(func(c *azure.Config) { c.AccountName = "My_Account" }), "Config.AccountName"},
		{with(func(c *azure.Config) { c.Endpoint = "ftp://acct.blob.core.windows.net" }), "not an http(s) URL"},
		{with(func(c *azure.Config) { c.Endpoint = "http://127.0.0.1:10000" }), "names no account"},
		{with(func(c *azure.Config) { c.Endpoint = "http://127.0.0.1:10000/devstoreaccount1/backups" }), "Config.Container"},
		{with(func(c *azure.Config) { c.Endpoint = "https://other.blob.core.windows.net" }), "differs from the account"},
		{with(func(c *azure.Config) { c.Endpoint = "https://acct.blob.core.windows.net?sig=topsecret" }), "SASToken"},
		{with(func(c *azure.Config) { c.AccountKey = "not base64 at all!" }), "AccountKey is not base64"},
		{with(func(c *azure.Config) { c.SASToken = "sig=x" }), "AccountKey and SASToken"},
		{with(func(c *azure.Config) { c.ManagedIdentity = true }), "AccountKey and ManagedIdentity"},
		{with(func(c *azure.Config) { c.Credential = noCredential{} }), "AccountKey and Credential"},
		{with(func(c *azure.Config) { c.AccountKey = ""; c.SASToken = "sv=2024&sp=r" }), "not a shared access signature"},
		{with(func(c *azure.Config) { c.ManagedIdentityClientID = "x" }), "without ManagedIdentity"},
		{azure.Config{ConnectionString: "UseDevelopmentStorage=true", AccountKey: testKey, Container: "backups"}, "ConnectionString and AccountKey"},
		{azure.Config{ConnectionString: "UseDevelopmentStorage=true", AccountName: "acct", Container: "backups"}, "leave them empty"},
		{azure.Config{ConnectionString: "topsecret", Container: "backups"}, "not a connection string"},
		{azure.Config{Endpoint: "http://127.0.0.1:10000/devstoreaccount1", Container: "backups"}, "only sent over https"},
		{azure.Config{Endpoint: "http://127.0.0.1:10000/devstoreaccount1", ManagedIdentity: true, Container: "backups"}, "only sent over https"},
		{with(func(c *azure.Config) { c.AccessTier = "Premium" }), "Config.AccessTier"},
		{with(func(c *azure.Config) { c.BlockSize = 1000 }), "Config.BlockSize"},
		{with(func(c *azure.Config) { c.BlockSize = azure.MaxBlockSize + 1 }), "Config.BlockSize"},
		{with(func(c *azure.Config) { c.Concurrency = -1 }), "Config.Concurrency"},
		{with(func(c *azure.Config) { c.SinglePutThreshold = -1 }), "Config.SinglePutThreshold"},
		{with(func(c *azure.Config) { c.SinglePutThreshold = azure.MaxSinglePutSize + 1 }), "Config.SinglePutThreshold"},
		{with(func(c *azure.Config) { c.MaxRetries = -2 }), "Config.MaxRetries"},
		{with(func(c *azure.Config) { c.RetryDelay = -time.Second }), "Config.RetryDelay"},
		{with(func(c *azure.Config) { c.MaxRetryDelay = -time.Second }), "Config.MaxRetryDelay"},
		{with(func(c *azure.Config) { c.TryTimeout = -time.Second }), "Config.TryTimeout"},
		{with(func(c *azure.Config) { c.RetryDelay = time.Minute; c.MaxRetryDelay = time.Second }), "MaxDelay"},
		{with(func(c *azure.Config) { c.RetryStatusCodes = []int{42} }), "RetryStatusCodes"},
	} {
		err := tc.cfg.Validate()
		require.Error(t, err, tc.want)
		assert.ErrorIs(t, err, target.ErrInvalidArgument, tc.want)
		assert.Contains(t, err.Error(), tc.want)
		for _, secret := range []string{testKey, "topsecret", "not base64 at all!"} {
			assert.NotContains(t, err.Error(), secret, "errors never quote a credential")
		}
		// New refuses it the same way, before any request.
		_, err = azure.New(t.Context(), tc.cfg)
		assert.ErrorIs(t, err, target.ErrInvalidArgument, tc.want)
	}
}

func TestAzureRetryPolicy(t *testing.T) {
	p := azure.Config{}.RetryPolicy()
	assert.Equal(t, target.RetryPolicy{MaxAttempts: 4, BaseDelay: 800 * time.Millisecond, MaxDelay: 60 * time.Second}, p, "the Azure SDK's defaults")
	assert.Equal(t, 1, azure.Config{MaxRetries: -1}.RetryPolicy().MaxAttempts)
	p = azure.Config{MaxRetries: 5, RetryDelay: time.Second, MaxRetryDelay: 10 * time.Second, RetryStatusCodes: []int{503}}.RetryPolicy()
	assert.Equal(t, target.RetryPolicy{MaxAttempts: 6, BaseDelay: time.Second, MaxDelay: 10 * time.Second, RetryStatusCodes: []int{503}}, p)
	require.NoError(t, p.Validate())
}

func TestAzureParseURL(t *testing.T) {
	for raw, want := range map[string]azure.Config{
		"https://acct.blob.core.windows.net/backups": {
			Endpoint: "https://acct.blob.core.windows.net", AccountName: "acct", Container: "backups"},
		"https://acct.blob.core.windows.net/backups/pg/main/": {
			Endpoint: "https://acct.blob.core.windows.net", AccountName: "acct", Container: "backups", Prefix: "pg/main"},
		"http://127.0.0.1:10000/devstoreaccount1/backups": {
			Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountName: "devstoreaccount1", Container: "backups"},
		"http://azurite:10000/devstoreaccount1/backups/a/b": {
			Endpoint: "http://azurite:10000/devstoreaccount1", AccountName: "devstoreaccount1", Container: "backups", Prefix: "a/b"},
	} {
		got, err := azure.ParseURL(raw)
		require.NoError(t, err, raw)
		assert.Equal(t, want, got, raw)
		got.AccountKey = testKey
		assert.NoError(t, got.Validate(), raw)
	}
	for raw, want := range map[string]string{
		"ftp://acct.blob.core.windows.net/backups":              "not an http(s) URL",
		"https://acct.blob.core.windows.net":                    "names no container",
		"http://127.0.0.1:10000/devstoreaccount1":               "names no container",
		"https://acct.blob.core.windows.net/backups?sig=x&sv=1": "query string",
		"https://acct.blob.core.windows.net/Backups":            "the container",
		"http://127.0.0.1:10000/Dev_Account/backups":            "the account",
	} {
		_, err := azure.ParseURL(raw)
		require.ErrorIs(t, err, target.ErrInvalidArgument, raw)
		assert.Contains(t, err.Error(), want, raw)
		assert.NotContains(t, err.Error(), "sig=", raw)
	}
}
