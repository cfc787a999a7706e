package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
)

// testBucket is the bucket the tests use on every server.
const testBucket = "chunkback-s3-test"

// server is one real S3 store the tests run against.
type server struct {
	name                          string // for servertest.Require
	endpoint, access, secret, reg string
	// tlsEndpoint and caFile: the HTTPS instance (MinIO only).
	tlsEndpoint, caFile string
}

func minio(t *testing.T) server {
	t.Helper()
	env := servertest.Require(t, "minio")
	return server{
		name: "minio", endpoint: env.Get(t, "ENDPOINT"), access: env.Get(t, "ACCESS_KEY"),
		secret: env.Get(t, "SECRET_KEY"), reg: env.Get(t, "REGION"),
		tlsEndpoint: env.Get(t, "TLS_ENDPOINT"), caFile: env.Get(t, "CA_FILE"),
	}
}

func radosgw(t *testing.T) server {
	t.Helper()
	env := servertest.Require(t, "ceph")
	return server{
		name: "ceph", endpoint: env.Get(t, "RGW_ENDPOINT"), access: env.Get(t, "RGW_ACCESS_KEY"),
		secret: env.Get(t, "RGW_SECRET_KEY"), reg: env.Get(t, "RGW_REGION"),
	}
}

// config returns a Config for the server's test bucket below a fresh
// random prefix.
func (s server) config(t *testing.T) Config {
	t.Helper()
	cfg := Config{
		Endpoint: s.endpoint, Region: s.reg, AccessKey: s.access, SecretKey: s.secret,
		Bucket: testBucket, Prefix: "t-" + randomHex(t) + "/" + strings.ReplaceAll(t.Name(), "/", "_"),
		PathStyle: true, CreateBucket: true,
	}
	return cfg
}

// open makes a Target from cfg and removes everything below its prefix
// (objects and multipart uploads) when the test ends.
func open(t *testing.T, cfg Config) *Target {
	t.Helper()
	tg, err := New(t.Context(), cfg)
	require.NoError(t, err, "New")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cleanPrefix(t, ctx, tg)
		tg.Close()
	})
	return tg
}

func cleanPrefix(t *testing.T, ctx context.Context, tg *Target) {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(tg.client, &s3.ListObjectsV2Input{Bucket: aws.String(tg.cfg.Bucket), Prefix: aws.String(tg.keyPrefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Logf("cleanup: list: %v", err)
			return
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	for _, k := range keys {
		if _, err := tg.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(tg.cfg.Bucket), Key: aws.String(k)}); err != nil {
			t.Logf("cleanup: delete %s: %v", k, err)
		}
	}
	if _, err := tg.AbortIncompleteUploads(ctx, "", 0); err != nil {
		t.Logf("cleanup: abort uploads: %v", err)
	}
}

// uploadsLeft lists the multipart uploads in progress of the object name
// (MinIO lists them only for an exact key).
func uploadsLeft(t *testing.T, tg *Target, name string) []string {
	t.Helper()
	out, err := tg.client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(tg.cfg.Bucket), Prefix: aws.String(tg.keyPrefix + name),
	})
	require.NoError(t, err, "ListMultipartUploads")
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// smallParts makes objects over 8 MiB go up in 5 MiB parts, so the
// conformance suite's large objects exercise multipart uploads.
func smallParts(cfg *Config) {
	cfg.PartSize = 5 << 20
	cfg.MultipartThreshold = 8 << 20
}
