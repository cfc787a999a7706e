package gcs_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/target"
)

// Google's token endpoint cannot be reached here, so these tests run the
// service-account flow of the client library against a token endpoint of
// their own (the key file's token_uri): the library signs a JWT with the
// key and exchanges it for an access token, which the emulator accepts.

const testAccount = "backup@chunkback-test.iam.gserviceaccount.com"

// keyFile writes a service-account key file whose token_uri is tokenURI.
func keyFile(t *testing.T, tokenURI string) (path, privateKey string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	privateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	data, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "chunkback-test",
		"private_key_id": "0123456789abcdef",
		"private_key":    privateKey,
		"client_email":   testAccount,
		"client_id":      "1234567890",
		"token_uri":      tokenURI,
	})
	require.NoError(t, err)
	return writeFile(t, "key.json", string(data)), privateKey
}

func writeFile(t *testing.T, name, content string) string {
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// tokenServer answers token requests with status and body, and counts them.
func tokenServer(t *testing.T, status int, body string) (string, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token", &n
}

// authConfig is a Config for the emulator that authenticates with the key
// file (no Anonymous, no STORAGE_EMULATOR_HOST).
func authConfig(t *testing.T, s server, endpoint, file string) gcs.Config {
	t.Setenv(gcs.EmulatorHostEnv, "")
	cfg := s.config(uniqueBucket(t))
	cfg.Anonymous = false
	cfg.Endpoint = endpoint
	cfg.CredentialsFile = file
	return cfg
}

func TestGCSCredentialsServiceAccount(t *testing.T) {
	s := requireServer(t)
	proxy := newTamperProxy(t, s.endpoint)
	tokenURI, tokens := tokenServer(t, http.StatusOK, `{"access_token":"test-token-123","token_type":"Bearer","expires_in":3600}`)
	file, _ := keyFile(t, tokenURI)
	cfg := authConfig(t, s, proxy.URL, file)
	cfg.ProjectID = "" // taken from the key file to create the bucket
	tg := open(t, cfg)
	require.NoError(t, tg.Put(t.Context(), "authed", bytes.NewReader([]byte("ok")), 2, target.PutOptions{}))
	require.Equal(t, []byte("ok"), readAll(t, tg, "authed"))
	require.Positive(t, tokens.Load())
	_, auth, inserts := proxy.seen()
	require.NotEmpty(t, auth)
	for i, a := range auth {
		require.Equal(t, "Bearer test-token-123", a, "request %d", i)
	}
	require.Len(t, inserts, 1)
	res, err := http.Get(s.endpoint + "/storage/v1/b?project=chunkback-test")
	require.NoError(t, err)
	defer res.Body.Close()
	var list struct{ Items []struct{ Name string } }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	var names []string
	for _, b := range list.Items {
		names = append(names, b.Name)
	}
	require.Contains(t, names, cfg.Bucket, "the bucket was not created in the key file's project")

	// The server refusing the account names it and its file.
	r, _ := retried(t, tg, cfg)
	proxy.fail(1, http.StatusForbidden)
	err = r.Put(t.Context(), "denied", bytes.NewReader([]byte("x")), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "service account "+testAccount+" from the credentials file "+file)
	require.Equal(t, 1, proxy.uploadRequests(), "a 403 was retried")
}

// TestGCSCredentialsRefused: a key the token endpoint refuses (a deleted or
// disabled key) is one clear error from New, naming the account and the
// file, and never the key.
func TestGCSCredentialsRefused(t *testing.T) {
	s := requireServer(t)
	tokenURI, tokens := tokenServer(t, http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	file, privateKey := keyFile(t, tokenURI)
	_, err := gcs.New(t.Context(), authConfig(t, s, s.endpoint, file))
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "the credentials were refused")
	require.ErrorContains(t, err, testAccount)
	require.ErrorContains(t, err, file)
	require.ErrorContains(t, err, "invalid_grant")
	require.NotContains(t, err.Error(), strings.Split(privateKey, "\n")[1])
	require.Equal(t, int64(1), tokens.Load())
}

// TestGCSCredentialsTokenEndpointBusy: a token endpoint that is busy is a
// retryable error, not a permission error.
func TestGCSCredentialsTokenEndpointBusy(t *testing.T) {
	s := requireServer(t)
	tokenURI, _ := tokenServer(t, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
	file, _ := keyFile(t, tokenURI)
	_, err := gcs.New(t.Context(), authConfig(t, s, s.endpoint, file))
	require.Error(t, err)
	require.NotErrorIs(t, err, target.ErrPermission)
	var se *target.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, http.StatusServiceUnavailable, se.Code)
	require.False(t, target.IsPermanent(err))
}

// TestGCSCredentialsBadFile: files that are not usable credentials give one
// clear error naming the file, before any request.
func TestGCSCredentialsBadFile(t *testing.T) {
	s := requireServer(t)
	noKey, err := json.Marshal(map[string]string{"type": "service_account", "client_email": testAccount})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not-json.json", "-----BEGIN PRIVATE KEY-----\nMIIE...\n", "is not valid JSON"},
		{"truncated.json", `{"type": "service_account", "private_key": "-----BEGIN`, "is not valid JSON"},
		{"array.json", `["not", "an", "object"]`, "is not valid JSON (not a JSON object)"},
		{"other.json", `{"type": "api_key", "key": "x"}`, `has type "api_key"`},
		{"no-type.json", `{"client_email": "a@b"}`, `has type ""`},
		{"no-key.json", string(noKey), "without client_email or private_key"},
		{"bad-key.json", `{"type":"service_account","client_email":"a@b","private_key":"not a key","token_uri":"http://127.0.0.1:1/token"}`, "not a PEM-encoded RSA key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, tc.name, tc.content)
			_, err := gcs.New(t.Context(), authConfig(t, s, s.endpoint, file))
			require.ErrorIs(t, err, target.ErrPermission)
			require.ErrorContains(t, err, file)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "MIIE")
		})
	}
	t.Run("missing", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "absent.json")
		_, err := gcs.New(t.Context(), authConfig(t, s, s.endpoint, file))
		require.ErrorIs(t, err, target.ErrPermission)
		require.ErrorContains(t, err, file+" (Config.CredentialsFile / GOOGLE_APPLICATION_CREDENTIALS) does not exist")
	})
}
