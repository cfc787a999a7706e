package gcs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/gcs"
	"github.com/chunkback/chunkback/target"
)

func TestGCSConfigValidate(t *testing.T) {
	ok := gcs.Config{Bucket: "backups"}
	require.NoError(t, ok.Validate())
	for _, good := range []gcs.Config{
		{Bucket: "a-b_c.d", Prefix: "cinder/backups/"},
		{Bucket: "b12", Endpoint: "http://127.0.0.1:4443", Anonymous: true},
		{Bucket: "bkt", Endpoint: "https://storage.example.com/storage/v1/", CredentialsFile: "/k.json"},
		{Bucket: "bkt", ReaderChunkSize: gcs.SingleRequest, WriterChunkSize: 1},
		{Bucket: "bkt", NumRetries: -1, RetryErrorCodes: []int{429, 408}},
		{Bucket: "bkt", StorageClass: "ARCHIVE", BucketLocation: "EU", ProxyURL: "http://proxy:3128", UserAgent: "x/1"},
	} {
		require.NoError(t, good.Validate(), "%+v", good)
	}
	for _, tc := range []struct {
		cfg  gcs.Config
		want string
	}{
		{gcs.Config{}, "Config.Bucket is empty"},
		{gcs.Config{Bucket: "ab"}, "Config.Bucket \"ab\" has 2 characters"},
		{gcs.Config{Bucket: "Backups"}, "Config.Bucket \"Backups\" must start and end"},
		{gcs.Config{Bucket: "back/ups"}, "contains '/'"},
		{gcs.Config{Bucket: "a..b"}, "empty or over-63-character part"},
		{gcs.Config{Bucket: "bkt", Prefix: "/abs"}, "Config.Prefix \"/abs\" is not usable"},
		{gcs.Config{Bucket: "bkt", Prefix: "a//b"}, "Config.Prefix"},
		{gcs.Config{Bucket: "bkt", Anonymous: true, CredentialsFile: "/k.json"}, "Anonymous and CredentialsFile are both set"},
		{gcs.Config{Bucket: "bkt", Endpoint: "127.0.0.1:4443"}, "Config.Endpoint \"127.0.0.1:4443\" is not an http:// or https:// URL"},
		{gcs.Config{Bucket: "bkt", Endpoint: "ftp://host"}, "Config.Endpoint"},
		{gcs.Config{Bucket: "bkt", Endpoint: "https://user:secret@host"}, "Config.Endpoint holds user information"},
		{gcs.Config{Bucket: "bkt", ReaderChunkSize: -2}, "Config.ReaderChunkSize is -2"},
		{gcs.Config{Bucket: "bkt", WriterChunkSize: -5}, "Config.WriterChunkSize is -5"},
		{gcs.Config{Bucket: "bkt", NumRetries: -2}, "Config.NumRetries is -2"},
		{gcs.Config{Bucket: "bkt", RetryErrorCodes: []int{429, 42}}, "Config.RetryErrorCodes holds 42"},
		{gcs.Config{Bucket: "bkt", StorageClass: "nearline"}, "Config.StorageClass is \"nearline\"; use one of STANDARD, NEARLINE"},
		{gcs.Config{Bucket: "bkt", ProxyURL: "proxy:3128"}, "Config.ProxyURL is not"},
		{gcs.Config{Bucket: "bkt", UserAgent: "a\r\nX-Evil: 1"}, "Config.UserAgent contains a line break"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument, "%+v", tc.cfg)
		require.ErrorContains(t, err, tc.want)
		// New refuses the same configuration before any request.
		_, err = gcs.New(t.Context(), tc.cfg)
		require.ErrorIs(t, err, target.ErrInvalidArgument)
	}
	// A secret in a proxy URL stays out of the message.
	for _, cfg := range []gcs.Config{
		{Bucket: "bkt", ProxyURL: "ftp://user:hunter2@proxy"},
		{Bucket: "bkt", Endpoint: "ftp://user:hunter2@host"},
	} {
		err := cfg.Validate()
		require.Error(t, err)
		require.NotContains(t, err.Error(), "hunter2")
	}
}

func TestGCSConfigRetryPolicy(t *testing.T) {
	// Cinder's defaults: 3 retries of 429 and server errors.
	p := gcs.Config{Bucket: "bkt"}.RetryPolicy()
	require.NoError(t, p.Validate())
	require.Equal(t, 4, p.MaxAttempts)
	require.ElementsMatch(t, []int{500, 502, 503, 504, 429}, p.RetryStatusCodes)
	require.Equal(t, 2*time.Second, p.BaseDelay)

	p = gcs.Config{Bucket: "bkt", NumRetries: 7, RetryErrorCodes: []int{408, 503}}.RetryPolicy()
	require.Equal(t, 8, p.MaxAttempts)
	require.ElementsMatch(t, []int{500, 502, 503, 504, 408}, p.RetryStatusCodes, "429 is a default, not always retried")

	p = gcs.Config{Bucket: "bkt", NumRetries: -1}.RetryPolicy()
	require.Equal(t, 1, p.MaxAttempts)
	_, err := target.NewRetry(nopTarget{}, p)
	require.NoError(t, err)
}

// nopTarget only lets NewRetry accept a policy.
type nopTarget struct{ target.Target }
