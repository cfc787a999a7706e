package targeturl

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/target"
)

// azureQuery lists the query parameters of azblob:// URLs.
var azureQuery = []string{"endpoint", "access_tier", "block_size", "concurrency", "single_put_threshold", "max_retries", "immutable"}

// Environment variables of azblob:// URLs.
const (
	envAzureConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	envAzureAccount          = "AZURE_STORAGE_ACCOUNT"
	envAzureKey              = "AZURE_STORAGE_KEY"
	envAzureSASToken         = "AZURE_STORAGE_SAS_TOKEN"
	envAzureEndpoint         = "AZURE_STORAGE_ENDPOINT"
)

// openAzure opens azblob://container/prefix with the azure target.
//
// Credentials come from the environment, as the Azure tools read them:
// AZURE_STORAGE_CONNECTION_STRING; or AZURE_STORAGE_ACCOUNT with
// AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; or, with none of those
// secrets, DefaultAzureCredential (AZURE_CLIENT_ID/AZURE_TENANT_ID/...,
// workload identity, the host's managed identity, an Azure CLI login).
// The blob service is https://<account>.blob.core.windows.net unless
// AZURE_STORAGE_ENDPOINT or ?endpoint= names another, such as Azurite's
// http://127.0.0.1:10000/devstoreaccount1 (whose path names the account).
//
// Query parameters (none secret): endpoint, access_tier (Hot, Cool, Cold,
// Archive), block_size and single_put_threshold (bytes), concurrency
// (blocks of one object in flight), max_retries (-1 for none), immutable
// (bool: a blob immutability policy on every object of a write-once backup).
// Options.Create creates a missing container.
func openAzure(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	cfg, err := azureConfig(u, os.Getenv)
	if err != nil {
		return scheme{}, err
	}
	cfg.Create = o.Create
	t, err := azure.New(ctx, cfg)
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: t, retry: cfg.RetryPolicy(), close: t.Close}, nil
}

// azureConfig turns an azblob:// URL and the environment into the target's
// configuration.
func azureConfig(u *url.URL, getenv func(string) string) (azure.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--target %q: "+format+"; the form is azblob://container/prefix?endpoint=URL (credentials in %s, or %s with %s or %s): %w",
			append(append([]any{u.Redacted()}, args...), envAzureConnectionString, envAzureAccount, envAzureKey, envAzureSASToken, target.ErrInvalidArgument)...)
	}
	var cfg azure.Config
	for k := range u.Query() {
		// Before any message that quotes the URL: a SAS is a secret.
		if k == "sig" || k == "sv" || k == "se" || k == "sp" {
			return cfg, fmt.Errorf("--target azblob://%s: the URL holds a SAS; put it in %s instead, where it stays out of shell history and logs: %w", u.Host, envAzureSASToken, target.ErrInvalidArgument)
		}
	}
	q, err := newQuery(u, azureQuery, "azblob URLs take no user or password; give credentials in the environment", bad)
	if err != nil {
		return cfg, err
	}
	cfg.Container = u.Host
	cfg.Prefix = strings.Trim(u.Path, "/")
	if cfg.Container == "" {
		return cfg, bad("no container")
	}
	cfg.ConnectionString = getenv(envAzureConnectionString)
	cfg.AccountKey = getenv(envAzureKey)
	cfg.SASToken = getenv(envAzureSASToken)
	cfg.Endpoint = q.Get("endpoint")
	if cfg.Endpoint == "" {
		cfg.Endpoint = getenv(envAzureEndpoint)
	}
	if cfg.ConnectionString == "" {
		// A connection string names its account and endpoint; they are
		// only read without one, so a stray AZURE_STORAGE_ACCOUNT does
		// not conflict with it.
		cfg.AccountName = getenv(envAzureAccount)
	} else if cfg.AccountKey != "" || cfg.SASToken != "" {
		return cfg, fmt.Errorf("--target %q: both %s and %s or %s are set; unset one of them: %w", u.Redacted(), envAzureConnectionString, envAzureKey, envAzureSASToken, target.ErrInvalidArgument)
	} else if q.Get("endpoint") != "" {
		return cfg, bad("?endpoint= does not go with %s, which names the endpoint (BlobEndpoint=)", envAzureConnectionString)
	} else {
		cfg.Endpoint = ""
	}
	cfg.AccessTier = q.Get("access_tier")
	q.boolean("immutable", &cfg.Immutability)
	for _, p := range []struct {
		key string
		dst *int64
	}{{"block_size", &cfg.BlockSize}, {"single_put_threshold", &cfg.SinglePutThreshold}} {
		if v := q.Get(p.key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return cfg, bad("%s=%q is not a positive number of bytes", p.key, v)
			}
			*p.dst = n
		}
	}
	if v := q.Get("concurrency"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return cfg, bad("concurrency=%q is not a positive number", v)
		}
		cfg.Concurrency = n
	}
	if v := q.Get("max_retries"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			return cfg, bad("max_retries=%q is not -1 (no retries) or more", v)
		}
		cfg.MaxRetries = n
		if n == 0 {
			cfg.MaxRetries = -1 // 0 retries asked for, not the default
		}
	}
	if q.err != nil {
		return cfg, q.err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("--target %q: %w", u.Redacted(), err)
	}
	return cfg, nil
}
