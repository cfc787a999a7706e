package targeturl

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/s3"
	"github.com/chunkback/chunkback/target"
)

func TestS3ServerSideEncryptionFromURL(t *testing.T) {
	none := func(string) string { return "" }
	u, err := url.Parse("s3://bkt/p?sse=aws:kms&sse_kms_key_id=alias/backups")
	require.NoError(t, err)
	cfg, err := s3ConfigFromURL(u, none)
	require.NoError(t, err)
	require.Equal(t, s3.ServerSideEncryptionKMS, cfg.ServerSideEncryption)
	require.Equal(t, "alias/backups", cfg.SSEKMSKeyID)

	u, _ = url.Parse("s3://bkt/p?sse=AES256")
	cfg, err = s3ConfigFromURL(u, none)
	require.NoError(t, err)
	require.Equal(t, s3.ServerSideEncryptionS3, cfg.ServerSideEncryption)

	for raw, want := range map[string]string{
		"s3://bkt/p?sse=kms":                     `ServerSideEncryption is "kms"`,
		"s3://bkt/p?sse_kms_key_id=k":            `set it to "aws:kms"`,
		"s3://bkt/p?sse=AES256&sse_kms_key_id=k": `set it to "aws:kms"`,
	} {
		u, _ := url.Parse(raw)
		_, err := s3ConfigFromURL(u, none)
		require.ErrorIs(t, err, target.ErrInvalidArgument, raw)
		require.ErrorContains(t, err, want, raw)
	}
}
