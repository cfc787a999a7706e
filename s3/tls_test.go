package s3

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// tlsConfig is a Config for the HTTPS MinIO, trusting its private CA.
func tlsConfig(t *testing.T, s server) Config {
	cfg := s.config(t)
	cfg.Endpoint = s.tlsEndpoint
	cfg.CABundle = s.caFile
	return cfg
}

func TestS3TLS(t *testing.T) {
	s := minio(t)
	t.Run("CABundle", func(t *testing.T) {
		tg := open(t, tlsConfig(t, s))
		data := randomBytes(5, 100_000)
		require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
		requireGet(t, tg, "x", data)
	})
	t.Run("InsecureSkipVerify", func(t *testing.T) {
		cfg := tlsConfig(t, s)
		cfg.CABundle, cfg.InsecureSkipVerify = "", true
		tg := open(t, cfg)
		require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{}))
	})
	t.Run("UntrustedIsPermanent", func(t *testing.T) {
		t.Setenv("AWS_CA_BUNDLE", "") // the SDK would read it
		cfg := tlsConfig(t, s)
		cfg.CABundle = ""
		_, err := New(t.Context(), cfg)
		t.Log(err)
		require.ErrorIs(t, err, target.ErrPermanent)
		assert.True(t, target.IsPermanent(err))
		assert.Contains(t, err.Error(), "CABundle")
		assert.Contains(t, err.Error(), "x509")

		// A target whose client stops trusting the store (as when the
		// store's certificate changes): the retry decorator makes one
		// attempt.
		tg := open(t, tlsConfig(t, s))
		awsCfg, err := loadAWSConfig(t.Context(), cfg.withDefaults())
		require.NoError(t, err)
		trusting := tg.client
		defer func() { tg.client = trusting }() // for the cleanup
		tg.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			o.UsePathStyle = true
			o.BaseEndpoint = &cfg.Endpoint
		})
		var retries atomic.Int32
		policy := cfg.RetryPolicy()
		policy.OnRetry = func(target.RetryEvent) { retries.Add(1) }
		rt, err := target.NewRetry(tg, policy)
		require.NoError(t, err)
		err = rt.Put(t.Context(), "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{})
		require.ErrorIs(t, err, target.ErrPermanent)
		_, err = rt.Stat(t.Context(), "x")
		require.ErrorIs(t, err, target.ErrPermanent)
		assert.Zero(t, retries.Load(), "retries of x509 failures")
	})
	t.Run("PlainHTTPToTLS", func(t *testing.T) {
		cfg := s.config(t)
		cfg.Endpoint = "https://" + s.endpoint[len("http://"):]
		_, err := New(t.Context(), cfg)
		require.ErrorIs(t, err, target.ErrPermanent)
		assert.Contains(t, err.Error(), "does not speak TLS")
	})
	t.Run("BadCABundle", func(t *testing.T) {
		cfg := tlsConfig(t, s)
		cfg.CABundle = filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(cfg.CABundle, []byte("not a certificate"), 0o600))
		_, err := New(t.Context(), cfg)
		require.ErrorIs(t, err, target.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "no PEM certificate")
		cfg.CABundle = filepath.Join(t.TempDir(), "missing.pem")
		_, err = New(t.Context(), cfg)
		require.ErrorIs(t, err, target.ErrInvalidArgument)
	})
}

// SSE-C: objects (single PUTs and multipart uploads) are stored encrypted
// with the customer's key, read back with it, and unreadable without it.
func TestS3SSECustomerKey(t *testing.T) {
	s := minio(t)
	cfg := tlsConfig(t, s)
	smallParts(&cfg)
	cfg.SSECustomerKey = make([]byte, 32)
	_, err := rand.Read(cfg.SSECustomerKey)
	require.NoError(t, err)
	tg := open(t, cfg)
	small := randomBytes(6, 1000)
	big := randomBytes(7, 11<<20)
	require.NoError(t, tg.Put(t.Context(), "small", bytes.NewReader(small), int64(len(small)), target.PutOptions{}))
	require.NoError(t, tg.Put(t.Context(), "big", bytes.NewReader(big), int64(len(big)), target.PutOptions{}))
	requireGet(t, tg, "small", small)
	requireGet(t, tg, "big", big)
	rc, err := tg.Get(t.Context(), "big", 5<<20, 10)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	rc.Close()
	assert.Equal(t, big[5<<20:5<<20+10], got)
	info, err := tg.Stat(t.Context(), "big")
	require.NoError(t, err)
	assert.Equal(t, int64(len(big)), info.Size)

	// The same objects without the key.
	plain := cfg
	plain.SSECustomerKey = nil
	other, err := New(t.Context(), plain)
	require.NoError(t, err)
	_, err = other.Get(t.Context(), "small", 0, -1)
	require.Error(t, err, "Get of an SSE-C object without the key")
	t.Log(err)
}

func requireGet(t *testing.T, tg target.Target, name string, want []byte) {
	t.Helper()
	rc, err := tg.Get(t.Context(), name, 0, -1)
	require.NoError(t, err, "Get %q", name)
	got, err := io.ReadAll(rc)
	require.NoError(t, err, "read %q", name)
	require.NoError(t, rc.Close())
	require.True(t, bytes.Equal(want, got), "content of %q: %d bytes, want %d", name, len(got), len(want))
}
