package httpfault

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProxyInjectsThenForwards(t *testing.T) {
	var hosts []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	p, err := New(up.URL, Rule{Method: http.MethodPut, Path: "/bucket/", Status: 429, RetryAfter: "2", Times: 2})
	require.NoError(t, err)
	defer p.Close()

	put := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPut, p.URL+"/bucket/obj", strings.NewReader("data"))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	for range 2 {
		resp := put()
		require.Equal(t, 429, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
		resp.Body.Close()
	}
	resp := put()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "upstream /bucket/obj", string(body))

	// A GET does not match the rule.
	resp, err = http.Get(p.URL + "/bucket/x")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, 2, p.Faults())
	require.Equal(t, 4, p.Requests())
	// The Host the client used reaches the server (signatures cover it).
	require.Equal(t, strings.TrimPrefix(p.URL, "http://"), hosts[0])
}
