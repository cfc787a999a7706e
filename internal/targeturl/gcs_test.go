package targeturl

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

func TestGCSConfigFromURL(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for raw, want := range map[string]gcs.Config{
		"gs://bucket":              {Bucket: "bucket"},
		"gs://bucket/":             {Bucket: "bucket"},
		"gs://bucket/ci/nightly/":  {Bucket: "bucket", Prefix: "ci/nightly"},
		"gs://b-1/p?project=proj9": {Bucket: "b-1", Prefix: "p", ProjectID: "proj9"},
		"gs://bkt?endpoint=http://127.0.0.1:4443&anonymous=true": {
			Bucket: "bkt", Endpoint: "http://127.0.0.1:4443", Anonymous: true,
		},
		"gs://bkt?reader_chunk_size=-1&writer_chunk_size=8388608&num_retries=5&retry_error_codes=429,408": {
			Bucket: "bkt", ReaderChunkSize: -1, WriterChunkSize: 8 << 20, NumRetries: 5, RetryErrorCodes: []int{429, 408},
		},
		"gs://bkt?location=EU&storage_class=coldline&proxy=http://proxy:3128&user_agent=me/1": {
			Bucket: "bkt", BucketLocation: "EU", StorageClass: "COLDLINE", ProxyURL: "http://proxy:3128", UserAgent: "me/1",
		},
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		got, err := gcsConfig(u, getenv)
		require.NoError(t, err, raw)
		assert.Equal(t, want, got, raw)
	}

	// Credentials and the project come from the environment.
	env["GOOGLE_APPLICATION_CREDENTIALS"] = "/secrets/key.json"
	env["GOOGLE_CLOUD_PROJECT"] = "envproj"
	u, _ := url.Parse("gs://bkt/x")
	got, err := gcsConfig(u, getenv)
	require.NoError(t, err)
	assert.Equal(t, gcs.Config{Bucket: "bkt", Prefix: "x", CredentialsFile: "/secrets/key.json", ProjectID: "envproj"}, got)
	u, _ = url.Parse("gs://bkt/x?project=p2&anonymous=true")
	got, err = gcsConfig(u, getenv)
	require.NoError(t, err)
	assert.Equal(t, gcs.Config{Bucket: "bkt", Prefix: "x", ProjectID: "p2", Anonymous: true}, got)
}

func TestGCSConfigFromBadURL(t *testing.T) {
	for raw, wantMsg := range map[string]string{
		"gs:///prefix":                       "no bucket",
		"gs://user:secret@bkt/p":             "no user or password",
		"gs://bkt:4443/p":                    "not host:port",
		"gs://bkt/p?bogus=1":                 `unknown parameter "bogus"`,
		"gs://bkt/p?anonymous=maybe":         "anonymous",
		"gs://bkt/p?num_retries=x":           "num_retries",
		"gs://bkt/p?retry_error_codes=429,x": "retry_error_codes",
		"gs://bkt/p?retry_error_codes=42":    "RetryErrorCodes",
		"gs://bkt/p?storage_class=hot":       "StorageClass",
		"gs://Bkt/p":                         "Bucket",
		"gs://bkt/a//b":                      "Prefix",
		"gs://bkt/p?endpoint=127.0.0.1:4443": "Endpoint",
		"gs://bkt/p?writer_chunk_size=-9":    "WriterChunkSize",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err, raw)
		_, err = gcsConfig(u, func(string) string { return "" })
		require.ErrorContains(t, err, wantMsg, raw)
		require.NotContains(t, err.Error(), "secret", raw)
	}
}

// TestGCSOpen opens the URL the server script writes, with the CLI's
// environment, against fake-gcs-server, and stores and reads an object.
func TestGCSOpen(t *testing.T) {
	env := servertest.Require(t, "fakegcs")
	t.Setenv("STORAGE_EMULATOR_HOST", env.Get(t, "CLI_STORAGE_EMULATOR_HOST"))
	t.Setenv("GOOGLE_CLOUD_PROJECT", env.Get(t, "CLI_GOOGLE_CLOUD_PROJECT"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	ctx := t.Context()

	// The server's own URL, whose bucket the script created.
	o, err := Open(ctx, env.Get(t, "URL_GS"), Options{})
	require.NoError(t, err)
	defer o.Close()
	require.Equal(t, "gs", o.Scheme)
	lt, ok := target.As[target.LayoutTarget](o)
	require.True(t, ok)
	require.Equal(t, target.LayoutObject, lt.CinderLayout())

	// A bucket of its own, created because Create is set.
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "chunkback-url-" + hex.EncodeToString(b)
	_, err = Open(ctx, "gs://"+bucket+"/ci", Options{})
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, "--create")
	o2, err := Open(ctx, "gs://"+bucket+"/ci?writer_chunk_size=262144", Options{Create: true})
	require.NoError(t, err)
	defer o2.Close()
	data := bytes.Repeat([]byte("gs"), 300<<10)
	require.NoError(t, o2.Put(ctx, "volume_v/20260101/az_nova_backup_b-00001", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	rc, err := o2.Get(ctx, "volume_v/20260101/az_nova_backup_b-00001", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.True(t, bytes.Equal(data, got))
	require.NoError(t, o2.Delete(ctx, "volume_v/20260101/az_nova_backup_b-00001"))
}
