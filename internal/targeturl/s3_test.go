package targeturl

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/s3"
	"github.com/chunkback/chunkback/target"
)

func TestS3ConfigFromURL(t *testing.T) {
	key := make([]byte, 32)
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK",
		"CHUNKBACK_S3_SSE_C_KEY": base64.StdEncoding.EncodeToString(key),
	}
	u, err := url.Parse("s3://my-bucket/backups/ci/?endpoint=https://127.0.0.1:9000&region=eu-west-1&path_style=true" +
		"&checksum=when_required&ca_bundle=/ca.pem&storage_class=STANDARD_IA&max_attempts=6&retry_mode=adaptive" +
		"&md5=false&timeout=90&max_pool_connections=20&if_not_exists=check&part_size=8388608&multipart_threshold=33554432&part_concurrency=2")
	require.NoError(t, err)
	got, err := s3ConfigFromURL(u, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, s3.Config{
		Endpoint: "https://127.0.0.1:9000", Region: "eu-west-1", AccessKey: "AK", SecretKey: "SK", SessionToken: "TOK",
		Bucket: "my-bucket", Prefix: "backups/ci", PathStyle: true, MaxAttempts: 6, RetryMode: "adaptive",
		MaxPoolConnections: 20, Timeout: 90 * time.Second, CABundle: "/ca.pem", DisableContentMD5: true,
		SSECustomerKey: key, StorageClass: "STANDARD_IA", RequestChecksum: s3.ChecksumWhenRequired,
		IfNotExists: s3.IfNotExistsCheck, MultipartThreshold: 32 << 20, PartSize: 8 << 20, PartConcurrency: 2,
	}, got)

	// Defaults: no keys means the SDK's chain, no query means Cinder's options.
	u, _ = url.Parse("s3://volumebackups")
	got, err = s3ConfigFromURL(u, func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, s3.Config{Bucket: "volumebackups"}, got)
	assert.Equal(t, target.RetryPolicy{Mode: target.RetryLegacy, MaxAttempts: 4}, got.RetryPolicy())

	for _, raw := range []string{
		"s3:///prefix",
		"s3://user:secret@bucket/p",
		"s3://bucket/p?nosuch=1",
		"s3://bucket/p?checksum=always",
		"s3://bucket/p?path_style=maybe",
		"s3://bucket/p?max_attempts=x",
		"s3://bucket/p?timeout=soon",
		"s3://bucket/p?retry_mode=eager",
		"s3://bucket/p?endpoint=127.0.0.1:9000",
		"s3://Bad_Bucket/p",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = s3ConfigFromURL(u, func(string) string { return "" })
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "secret", raw)
	}
	u, _ = url.Parse("s3://bucket/p")
	_, err = s3ConfigFromURL(u, func(k string) string { return map[string]string{"CHUNKBACK_S3_SSE_C_KEY": "%%%"}[k] })
	require.ErrorContains(t, err, "CHUNKBACK_S3_SSE_C_KEY")
}

// The URL the MinIO start script writes opens the real server, with the
// CLI's environment variables, and stores and reads an object.
func TestS3OpenURL(t *testing.T) {
	for _, server := range []string{"minio", "ceph"} {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			t.Setenv("AWS_ACCESS_KEY_ID", env.Get(t, "CLI_AWS_ACCESS_KEY_ID"))
			t.Setenv("AWS_SECRET_ACCESS_KEY", env.Get(t, "CLI_AWS_SECRET_ACCESS_KEY"))
			t.Setenv("AWS_REGION", env.Get(t, "CLI_AWS_REGION"))
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			// The env's URL, below a prefix of this test's own.
			u, err := url.Parse(env.Get(t, "URL_S3"))
			require.NoError(t, err)
			u.Path += "/targeturl-" + hex.EncodeToString(b)
			o, err := Open(t.Context(), u.String(), Options{Create: true})
			require.NoError(t, err)
			defer o.Close()
			assert.Equal(t, "s3", o.Scheme)
			lt, ok := target.As[target.LayoutTarget](o)
			require.True(t, ok)
			assert.Equal(t, target.LayoutObject, lt.CinderLayout())
			assert.True(t, target.UsesContentMD5(o))

			data := []byte("through the URL")
			require.NoError(t, o.Put(t.Context(), "x/y", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
			rc, err := o.Get(t.Context(), "x/y", 0, -1)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			rc.Close()
			assert.Equal(t, data, got)
			require.NoError(t, o.Delete(t.Context(), "x/y"))

			// Wrong credentials: one clear error.
			t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-key-123")
			_, err = Open(t.Context(), u.String(), Options{})
			require.ErrorIs(t, err, target.ErrPermission)
			assert.Contains(t, err.Error(), "AWS_SECRET_ACCESS_KEY")
			assert.NotContains(t, err.Error(), "wrong-secret-key-123")
		})
	}
}
