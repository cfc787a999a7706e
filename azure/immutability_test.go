package azure_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// headerLog records the immutability headers of every request.
type headerLog struct {
	mu    sync.Mutex
	seen  []http.Header
	inner http.RoundTripper
}

func (h *headerLog) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	if rawHeader(r.Header, "x-ms-immutability-policy-until-date") != "" {
		h.seen = append(h.seen, r.Header.Clone())
	}
	h.mu.Unlock()
	return h.inner.RoundTrip(r)
}

// rawHeader returns the first value of header name whatever the case of its
// key: the SDK sets these keys as written, not in canonical form.
func rawHeader(h http.Header, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// TestImmutabilityOnAzurite: with Config.Immutability, single and block
// uploads carry the policy (expiry and mode) the Put asks for. Azurite
// does not implement immutability policies (it accepts and ignores the
// headers), so that the service enforces them is not testable here.
func TestImmutabilityOnAzurite(t *testing.T) {
	a := requireAzurite(t)
	log := &headerLog{inner: http.DefaultTransport}
	cfg := a.sharedKey(a.newContainer(t))
	cfg.Immutability = true
	cfg.SinglePutThreshold = 1 << 20
	cfg.BlockSize = 512 << 10
	cfg.HTTPClient = &http.Client{Transport: log}
	tg := newTarget(t, cfg)
	require.True(t, target.EnforcesRetention(tg))

	until := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	small := []byte("small")
	big := bytes.Repeat([]byte("x"), 3<<20)
	err := tg.Put(t.Context(), "small", bytes.NewReader(small), int64(len(small)), target.PutOptions{RetainUntil: until})
	t.Logf("Azurite's answer to a Put Blob with an immutability policy: %v", err)
	err2 := tg.Put(t.Context(), "big", bytes.NewReader(big), int64(len(big)), target.PutOptions{RetainUntil: until, RetentionMode: target.RetentionCompliance})
	t.Logf("Azurite's answer to a Put Block List with an immutability policy: %v", err2)
	require.NoError(t, tg.Put(t.Context(), "plain", bytes.NewReader(small), int64(len(small)), target.PutOptions{}))

	log.mu.Lock()
	seen := log.seen
	log.seen = nil
	log.mu.Unlock()
	require.Len(t, seen, 2, "one Put Blob and one Put Block List carry the policy; the plain Put none")
	for i, mode := range []string{"Unlocked", "Locked"} {
		got, perr := http.ParseTime(rawHeader(seen[i], "x-ms-immutability-policy-until-date"))
		require.NoError(t, perr)
		require.True(t, got.Equal(until), "expiry %v", got)
		require.Equal(t, mode, rawHeader(seen[i], "x-ms-immutability-policy-mode"))
	}

	// Without Immutability nothing is sent and the target says so.
	cfg.Immutability = false
	plain := newTarget(t, cfg)
	require.False(t, target.EnforcesRetention(plain))
	require.NoError(t, plain.Put(t.Context(), "other", bytes.NewReader(small), int64(len(small)), target.PutOptions{RetainUntil: until}))
	log.mu.Lock()
	defer log.mu.Unlock()
	require.Empty(t, log.seen)
}
