package azure_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/target"
)

// These tests run the token credentials (Config.Credential,
// ManagedIdentity, DefaultAzureCredential) against Azurite's HTTPS
// instance in --oauth basic mode, which checks a bearer token's audience,
// issuer and lifetime but not its signature. Microsoft Entra ID itself
// cannot be reached here: the managed identity endpoint is a fake one, the
// App Service kind (IDENTITY_ENDPOINT, IDENTITY_HEADER), which azidentity
// calls exactly as it would on Azure.

const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

// fakeJWT returns an unsigned token Azurite's basic OAuth accepts when aud
// is a storage audience and exp is ahead.
func fakeJWT(aud string, exp time.Time) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Add(-time.Minute).Unix()
	return enc(map[string]any{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]any{
		"aud": aud, "iss": "https://sts.windows.net/" + tenant + "/", "iat": now, "nbf": now, "exp": exp.Unix(),
		"oid": "00000000-0000-0000-0000-000000000001", "tid": tenant,
	}) + ".c2lnbmF0dXJl"
}

// oauthClient trusts the certificate of Azurite's HTTPS instance.
func oauthClient(t *testing.T, a azurite) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(a.oauthCA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: tr}
}

// identityEndpoint is a fake App Service managed identity endpoint.
type identityEndpoint struct {
	token    string
	calls    atomic.Int32
	clientID atomic.Value // the client_id of the last request
}

func startIdentityEndpoint(t *testing.T, token string) *identityEndpoint {
	t.Helper()
	e := &identityEndpoint{token: token}
	const secret = "identity-header-secret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		e.clientID.Store(r.URL.Query().Get("client_id"))
		if r.Header.Get("X-IDENTITY-HEADER") != secret || r.URL.Query().Get("resource") != "https://storage.azure.com" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"access_token": e.token,
			"expires_on":   fmt.Sprint(time.Now().Add(time.Hour).Unix()),
			"resource":     "https://storage.azure.com",
			"token_type":   "Bearer",
		})
	}))
	t.Cleanup(srv.Close)
	t.Setenv("IDENTITY_ENDPOINT", srv.URL)
	t.Setenv("IDENTITY_HEADER", secret)
	// Nothing else in the environment may authenticate DefaultAzureCredential.
	for _, k := range []string{"AZURE_TOKEN_CREDENTIALS", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
		"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return e
}

// tokenRoundTrip writes, lists, reads and deletes through a target.
func tokenRoundTrip(t *testing.T, cfg azure.Config) {
	t.Helper()
	tg := newTarget(t, cfg)
	data := randomBytes(9, 3<<20)
	require.NoError(t, tg.Put(t.Context(), "token/obj", strings.NewReader(string(data)), int64(len(data)), target.PutOptions{}))
	require.Equal(t, data, readAll(t, tg, "token/obj"))
	var names []string
	require.NoError(t, tg.List(t.Context(), "", func(i target.Info) error { names = append(names, i.Name); return nil }))
	require.Equal(t, []string{"token/obj"}, names)
	require.NoError(t, tg.Delete(t.Context(), "token/obj"))
}

// oauthConfig is a Config of a new container on the HTTPS instance.
func oauthConfig(t *testing.T, a azurite) azure.Config {
	return azure.Config{
		Endpoint:           a.oauthEndpoint,
		Container:          randomName("cb-oauth"),
		Create:             true, // with the token: the identity may create containers
		HTTPClient:         oauthClient(t, a),
		BlockSize:          1 << 20,
		SinglePutThreshold: 1 << 20,
	}
}

func TestAzureManagedIdentity(t *testing.T) {
	a := requireAzurite(t)
	id := startIdentityEndpoint(t, fakeJWT("https://storage.azure.com", time.Now().Add(time.Hour)))

	// (MSAL caches tokens process-wide, so a system-assigned identity may
	// have been asked for by an earlier test: no count of calls here.)
	cfg := oauthConfig(t, a)
	cfg.ManagedIdentity = true
	tokenRoundTrip(t, cfg)

	cfg.ManagedIdentityClientID = randomName("client")
	calls := id.calls.Load()
	tokenRoundTrip(t, cfg)
	assert.Greater(t, id.calls.Load(), calls, "the token came from the managed identity endpoint")
	assert.Equal(t, cfg.ManagedIdentityClientID, id.clientID.Load(), "user-assigned identity")
}

func TestAzureDefaultAzureCredential(t *testing.T) {
	a := requireAzurite(t)
	id := startIdentityEndpoint(t, fakeJWT("https://storage.azure.com", time.Now().Add(time.Hour)))
	// DefaultAzureCredential's managed identity takes a user-assigned
	// client ID from AZURE_CLIENT_ID; a fresh one also keeps MSAL's
	// process-wide token cache from answering for an earlier test.
	clientID := randomName("client")
	t.Setenv("AZURE_CLIENT_ID", clientID)
	cfg := oauthConfig(t, a) // no credentials at all: DefaultAzureCredential
	tokenRoundTrip(t, cfg)
	assert.Positive(t, id.calls.Load(), "DefaultAzureCredential found the managed identity")
	assert.Equal(t, clientID, id.clientID.Load())
}

// staticCredential is an azcore.TokenCredential with a fixed token.
type staticCredential struct{ token string }

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type failingCredential struct{}

func (failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, fmt.Errorf("no token for you")
}

func TestAzureTokenCredential(t *testing.T) {
	a := requireAzurite(t)
	cfg := oauthConfig(t, a)
	cfg.Credential = staticCredential{fakeJWT("https://storage.azure.com", time.Now().Add(time.Hour))}
	tokenRoundTrip(t, cfg)

	// A token the service refuses: one clear permission error naming the
	// role to check.
	cfg.Credential = staticCredential{fakeJWT("https://example.com", time.Now().Add(time.Hour))}
	_, err := azure.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "Storage Blob Data Contributor")
	assert.Contains(t, err.Error(), "Config.Credential")

	// A credential that cannot get a token at all.
	cfg.Credential = failingCredential{}
	_, err = azure.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "no token for you")
}

// Without any identity available, DefaultAzureCredential fails with a
// permission error that says what it tried. (AZURE_TOKEN_CREDENTIALS limits
// the chain to the environment, so the test does not wait for IMDS.)
func TestAzureDefaultAzureCredentialUnavailable(t *testing.T) {
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
	// No server is needed: the token is asked for before any request.
	_, err := azure.New(t.Context(), azure.Config{AccountName: "chunkbacktest", Container: "backups"})
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "DefaultAzureCredential")
	assert.Contains(t, err.Error(), "EnvironmentCredential")
}
