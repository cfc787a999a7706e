package s3

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

func TestS3ConfigDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	assert.Equal(t, "volumebackups", d.Bucket)
	assert.Equal(t, int64(52428800), d.ObjectSize)
	assert.Equal(t, 32768, d.BlockSize)
	assert.Equal(t, 4, d.MaxAttempts)
	assert.Equal(t, "legacy", d.RetryMode)
	assert.Equal(t, 10, d.MaxPoolConnections)
	assert.Equal(t, 60*time.Second, d.Timeout)
	assert.False(t, d.InsecureSkipVerify)
	assert.False(t, d.DisableContentMD5)
	assert.Equal(t, ChecksumWhenSupported, d.RequestChecksum)
	assert.Equal(t, IfNotExistsConditional, d.IfNotExists)
	assert.Equal(t, target.RetryPolicy{Mode: target.RetryLegacy, MaxAttempts: 4}, Config{}.RetryPolicy())
	assert.Equal(t, target.RetryPolicy{Mode: target.RetryAdaptive, MaxAttempts: 7}, Config{RetryMode: "adaptive", MaxAttempts: 7}.RetryPolicy())
	require.NoError(t, Config{}.Validate())
	key := make([]byte, 32)
	assert.Equal(t, "AES256", Config{SSECustomerKey: key}.withDefaults().SSECustomerAlgorithm)
}

func TestS3ConfigValidate(t *testing.T) {
	key := make([]byte, 32)
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{Endpoint: "127.0.0.1:9000"}, "Endpoint"},
		{Config{Endpoint: "ftp://host"}, "Endpoint"},
		{Config{Endpoint: "http://user:pass@host"}, "Endpoint"},
		{Config{Endpoint: "http://host?x=1"}, "Endpoint"},
		{Config{SecretKey: "s"}, "SecretKey"},
		{Config{AccessKey: "a"}, "AccessKey"},
		{Config{SessionToken: "t"}, "SessionToken"},
		{Config{Bucket: "ab"}, "Bucket"},
		{Config{Bucket: "Upper"}, "Bucket"},
		{Config{Bucket: "-abc"}, "Bucket"},
		{Config{Prefix: "/abs"}, "Prefix"},
		{Config{Prefix: "a//b"}, "Prefix"},
		{Config{Prefix: "a/../b"}, "Prefix"},
		{Config{ObjectSize: 1000}, "ObjectSize"},
		{Config{ObjectSize: -1}, "ObjectSize"},
		{Config{BlockSize: -1}, "BlockSize"},
		{Config{MaxAttempts: -1}, "MaxAttempts"},
		{Config{RetryMode: "sometimes"}, "RetryMode"},
		{Config{MaxPoolConnections: -1}, "MaxPoolConnections"},
		{Config{Timeout: -time.Second}, "Timeout"},
		{Config{PartSize: 1 << 20}, "PartSize"},
		{Config{PartSize: 32 << 20, MultipartThreshold: 16 << 20}, "MultipartThreshold"},
		{Config{MultipartThreshold: -1}, "MultipartThreshold"},
		{Config{PartConcurrency: -1}, "PartConcurrency"},
		{Config{RequestChecksum: "always"}, "RequestChecksum"},
		{Config{IfNotExists: "maybe"}, "IfNotExists"},
		{Config{HTTPProxy: "not a url"}, "HTTPProxy"},
		{Config{HTTPSProxy: "ftp://proxy"}, "HTTPSProxy"},
		{Config{SSECustomerKey: make([]byte, 16)}, "SSECustomerKey"},
		{Config{SSECustomerKey: key, SSECustomerAlgorithm: "DES"}, "SSECustomerAlgorithm"},
		{Config{SSECustomerKey: key, Endpoint: "http://127.0.0.1:9000"}, "SSECustomerKey"},
		{Config{SSECustomerAlgorithm: "AES256"}, "SSECustomerAlgorithm"},
		{Config{InsecureSkipVerify: true, CABundle: "/ca.pem"}, "InsecureSkipVerify"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument, "%+v", c.cfg)
		assert.Contains(t, err.Error(), "Config."+c.field, "%+v", c.cfg)
		assert.NotContains(t, err.Error(), "pass", "credentials in %v", err)
		_, err = New(t.Context(), c.cfg)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "New(%+v)", c.cfg)
	}
	for _, ok := range []Config{
		{Endpoint: "https://s3.example.com:8443/base", Bucket: "my.bucket-1", Prefix: "a/b/"},
		{AccessKey: "a", SecretKey: "s", SessionToken: "t", RetryMode: "standard"},
		{SSECustomerKey: key, Endpoint: "https://127.0.0.1:9000", StorageClass: "STANDARD_IA"},
		{RequestChecksum: ChecksumWhenRequired, IfNotExists: IfNotExistsCheck, HTTPProxy: "http://proxy:3128", HTTPSProxy: "http://proxy:3128"},
		{ObjectSize: 32768 * 10, BlockSize: 32768, PartSize: 5 << 20, MultipartThreshold: 5 << 20},
	} {
		assert.NoError(t, ok.Validate(), "%+v", ok)
	}
}

func TestS3Section(t *testing.T) {
	data := []byte("XXhello, worldYY")
	r := bytes.NewReader(data)
	_, err := r.Seek(2, io.SeekStart)
	require.NoError(t, err)
	s := newSection(r, 2, 12)
	require.NoError(t, iotest.TestReader(s, []byte("hello, world")))

	sum, err := newSection(bytes.NewReader(data), 2, 12).md5()
	require.NoError(t, err)
	want := md5.Sum([]byte("hello, world"))
	assert.Equal(t, want[:], sum)

	// A body shorter than the size is an error, never a short object.
	_, err = io.ReadAll(newSection(bytes.NewReader(data), 10, 12))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorIs(t, err, errShortBody)
	_, err = newSection(bytes.NewReader(data), 10, 12).md5()
	require.ErrorIs(t, err, errShortBody)
}

func TestS3StreamBody(t *testing.T) {
	data := []byte("hello, world")
	sum := md5.Sum(data)
	got, err := io.ReadAll(newStreamBody(strings.NewReader(string(data)+"trailing"), int64(len(data)), sum[:]))
	require.NoError(t, err)
	assert.Equal(t, data, got)

	wrong := md5.Sum([]byte("other"))
	b := newStreamBody(bytes.NewReader(data), int64(len(data)), wrong[:])
	_, err = io.ReadAll(b)
	require.ErrorIs(t, err, errMD5Mismatch)
	_, err = b.Read(make([]byte, 1))
	require.ErrorIs(t, err, errMD5Mismatch, "the mismatch stays")

	_, err = io.ReadAll(newStreamBody(bytes.NewReader(data), 100, nil))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.False(t, errors.Is(err, errMD5Mismatch))
}
