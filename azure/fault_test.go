package azure_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/target"
)

// proxied returns cfg with its endpoint moved behind a fault-injecting
// proxy in front of Azurite.
func proxied(t *testing.T, a azurite, cfg azure.Config, rules ...httpfault.Rule) (azure.Config, *httpfault.Proxy) {
	t.Helper()
	upstream := strings.TrimSuffix(a.endpoint, "/"+a.account)
	p, err := httpfault.New(upstream, rules...)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	cfg.Endpoint = p.URL + "/" + a.account
	return cfg, p
}

// serverBusy is the error document Azure sends with a 429 or 503.
const serverBusy = `<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The server is busy.</Message></Error>`

// 429 and 503 answers carry their Retry-After in a *target.StatusError,
// and target.NewRetry with Config.RetryPolicy retries them after at least
// that long, for single puts, staged blocks, reads and stats.
func TestAzureRetryAfter(t *testing.T) {
	a := requireAzurite(t)
	cfg := a.sharedKey(a.newContainer(t))
	cfg.BlockSize = 64 << 10
	cfg.SinglePutThreshold = 64 << 10
	cfg, proxy := proxied(t, a, cfg)
	raw := newTarget(t, cfg)
	retried, err := target.NewRetry(raw, cfg.RetryPolicy())
	require.NoError(t, err)
	data := randomBytes(5, 1000)
	big := randomBytes(6, 300<<10)

	busy := func(method, query string, status, times int) httpfault.Rule {
		return httpfault.Rule{Method: method, Query: query, Status: status, RetryAfter: "1", Times: times,
			Body: serverBusy, ContentType: "application/xml"}
	}

	// The raw target makes one attempt and reports the delay asked for.
	proxy.SetRules(busy(http.MethodPut, "", http.StatusTooManyRequests, 1))
	err = raw.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
	var se *target.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusTooManyRequests, se.Code)
	assert.Equal(t, time.Second, se.RetryAfter)
	assert.ErrorIs(t, err, target.ErrThrottled)
	assert.Contains(t, err.Error(), "ServerBusy")

	for _, tc := range []struct {
		name string
		rule httpfault.Rule
		op   func() error
	}{
		{"put 429", busy(http.MethodPut, "", http.StatusTooManyRequests, 2), func() error {
			return retried.Put(t.Context(), "small", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
		}},
		{"stage block 503", busy(http.MethodPut, "comp=block", http.StatusServiceUnavailable, 1), func() error {
			return retried.Put(t.Context(), "big", bytes.NewReader(big), int64(len(big)), target.PutOptions{})
		}},
		{"commit 503", busy(http.MethodPut, "comp=blocklist", http.StatusServiceUnavailable, 1), func() error {
			return retried.Put(t.Context(), "big2", bytes.NewReader(big), int64(len(big)), target.PutOptions{IfNotExists: true})
		}},
		{"get 503", busy(http.MethodGet, "", http.StatusServiceUnavailable, 2), func() error {
			rc, err := retried.Get(t.Context(), "small", 0, -1)
			if err != nil {
				return err
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(got, data) {
				err = errors.New("read other bytes than were written")
			}
			return err
		}},
		{"stat 429", busy(http.MethodHead, "", http.StatusTooManyRequests, 1), func() error {
			_, err := retried.Stat(t.Context(), "big")
			return err
		}},
		{"list 503", busy(http.MethodGet, "comp=list", http.StatusServiceUnavailable, 1), func() error {
			return retried.List(t.Context(), "", func(target.Info) error { return nil })
		}},
		{"delete 503", busy(http.MethodDelete, "", http.StatusServiceUnavailable, 1), func() error {
			return retried.Delete(t.Context(), "big2")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.SetRules(tc.rule)
			faults := proxy.Faults()
			start := time.Now()
			require.NoError(t, tc.op())
			elapsed := time.Since(start)
			require.Equal(t, tc.rule.Times, proxy.Faults()-faults, "faults injected")
			assert.GreaterOrEqual(t, elapsed, time.Duration(tc.rule.Times)*time.Second, "Retry-After: 1 honoured before each retry")
		})
	}
	info, err := raw.Stat(t.Context(), "big")
	require.NoError(t, err)
	require.Equal(t, int64(len(big)), info.Size)
}

// A wrong account key gives one clear error, at New, that names the
// credential to check and not its value, after one request.
func TestAzureWrongAccountKey(t *testing.T) {
	a := requireAzurite(t)
	cfg := a.sharedKey(a.newContainer(t))
	wrong := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	cfg.AccountKey = wrong
	cfg, proxy := proxied(t, a, cfg)
	_, err := azure.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "account key")
	assert.Contains(t, err.Error(), "AZURE_STORAGE_KEY")
	assert.Contains(t, err.Error(), "HTTP 403") // Azure says AuthenticationFailed, Azurite AuthorizationFailure
	assert.NotContains(t, err.Error(), wrong)
	assert.Equal(t, 1, proxy.Requests(), "a refused credential is not retried")
	assert.True(t, target.IsPermanent(err))
}

// A SAS without write permission: New works (it only lists), a Put through
// target.NewRetry fails at once with ErrPermission naming the SAS token.
func TestAzureSASPermissions(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	token := a.sas(t, name, sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour))
	cfg, proxy := proxied(t, a, azure.Config{AccountName: a.account, SASToken: token, Container: name})
	raw := newTarget(t, cfg)
	retried, err := target.NewRetry(raw, cfg.RetryPolicy())
	require.NoError(t, err)
	before := proxy.Requests()
	err = retried.Put(t.Context(), "x", strings.NewReader("x"), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "SAS token")
	assert.Contains(t, err.Error(), "AZURE_STORAGE_SAS_TOKEN")
	assert.Equal(t, 1, proxy.Requests()-before, "a refused credential is not retried")
	sig := strings.SplitN(strings.SplitN(token, "sig=", 2)[1], "&", 2)[0]
	assert.NotContains(t, err.Error(), sig)

	// An expired SAS is refused at New.
	expired := a.sas(t, name, sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(-time.Hour))
	_, err = azure.New(t.Context(), azure.Config{Endpoint: a.endpoint, SASToken: expired, Container: name})
	require.ErrorIs(t, err, target.ErrPermission)
	assert.Contains(t, err.Error(), "SAS token")
}

// Errors of requests that got no answer quote no SAS, though the HTTP
// client prints request URLs, where the SAS lives.
func TestAzureErrorsHideSAS(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	token := a.sas(t, name, sas.ContainerPermissions{Read: true, List: true, Write: true}, time.Now().Add(time.Hour))
	cfg, proxy := proxied(t, a, azure.Config{AccountName: a.account, SASToken: token, Container: name})
	tg := newTarget(t, cfg)
	proxy.Close() // now nothing answers
	_, err := tg.Stat(t.Context(), "x")
	require.Error(t, err)
	sig := strings.SplitN(strings.SplitN(token, "sig=", 2)[1], "&", 2)[0]
	assert.NotContains(t, err.Error(), sig)
	assert.NotContains(t, err.Error(), "sig=")
	assert.False(t, target.IsPermanent(err), "a refused connection is worth a retry: %v", err)
}

// A missing container is a clear error, or is created when Config.Create
// asks for it.
func TestAzureMissingContainer(t *testing.T) {
	a := requireAzurite(t)
	name := randomName("cb-missing")
	cfg := a.sharedKey(name)
	_, err := azure.New(t.Context(), cfg)
	require.ErrorIs(t, err, target.ErrNotFound)
	assert.Contains(t, err.Error(), `container "`+name+`" does not exist`)
	assert.Contains(t, err.Error(), "Config.Create")

	cfg.Create = true
	tg := newTarget(t, cfg)
	admin := a.adminClient(t, name)
	t.Cleanup(func() { _, _ = admin.Delete(t.Context(), nil) })
	require.NoError(t, tg.Put(t.Context(), "x", strings.NewReader("x"), 1, target.PutOptions{}))
	// A second New with Create finds it there.
	newTarget(t, cfg)

	// A container deleted under a target gives the same clear error.
	_, err = admin.Delete(t.Context(), nil)
	require.NoError(t, err)
	err = tg.Put(t.Context(), "y", strings.NewReader("y"), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrNotFound)
	assert.Contains(t, err.Error(), `container "`+name+`" does not exist`)
}
