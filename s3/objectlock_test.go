package s3

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// lockBucket is the object-lock bucket of the tests, created with it.
const lockBucket = "chunkback-s3-lock-test"

// lockTarget opens the object-lock test bucket below a fresh prefix; every
// version under it is removed when the test ends, bypassing governance.
func lockTarget(t *testing.T, s server) *Target {
	t.Helper()
	cfg := s.config(t)
	cfg.Bucket, cfg.ObjectLock = lockBucket, true
	smallParts(&cfg)
	tg, err := New(t.Context(), cfg)
	require.NoError(t, err, "New with ObjectLock")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		removeAllVersions(t, ctx, tg)
		tg.Close()
	})
	return tg
}

func removeAllVersions(t *testing.T, ctx context.Context, tg *Target) {
	t.Helper()
	out, err := tg.client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(tg.cfg.Bucket), Prefix: aws.String(tg.keyPrefix)})
	if err != nil {
		t.Logf("cleanup: list versions: %v", err)
		return
	}
	del := func(key, id *string) {
		_, err := tg.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(tg.cfg.Bucket), Key: key, VersionId: id, BypassGovernanceRetention: aws.Bool(true)})
		if err != nil {
			t.Logf("cleanup: delete %s@%s: %v", aws.ToString(key), aws.ToString(id), err)
		}
	}
	for _, v := range out.Versions {
		del(v.Key, v.VersionId)
	}
	for _, m := range out.DeleteMarkers {
		del(m.Key, m.VersionId)
	}
}

func objectLockServers() map[string]func(*testing.T) server {
	return map[string]func(*testing.T) server{"minio": minio, "radosgw": radosgw}
}

// TestObjectLock: on every real S3 store, a retained object carries the
// mode and date asked for, and the store itself refuses to delete its
// version or let the target delete it, while an expired one goes whole.
func TestObjectLock(t *testing.T) {
	for name, srv := range objectLockServers() {
		t.Run(name, func(t *testing.T) {
			s := srv(t)
			ctx := t.Context()
			tg := lockTarget(t, s)
			require.True(t, tg.EnforcesRetention())
			require.True(t, target.EnforcesRetention(tg))

			until := time.Now().Add(time.Hour).Truncate(time.Second)
			body := []byte("write once, keep an hour")
			require.NoError(t, tg.Put(ctx, "kept", bytes.NewReader(body), int64(len(body)),
				target.PutOptions{IfNotExists: true, RetainUntil: until, RetentionMode: target.RetentionGovernance}))
			head, err := tg.head(ctx, tg.keyPrefix+"kept")
			require.NoError(t, err)
			require.Equal(t, types.ObjectLockModeGovernance, head.ObjectLockMode)
			require.WithinDuration(t, until, aws.ToTime(head.ObjectLockRetainUntilDate), time.Second)
			version := head.VersionId
			require.NotEmpty(t, aws.ToString(version), "an object-lock bucket is versioned")

			// The store refuses to delete the retained version, for anybody
			// who does not bypass governance.
			_, err = tg.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(lockBucket), Key: aws.String(tg.keyPrefix + "kept"), VersionId: version})
			require.Error(t, err, "the store deleted a retained version")
			err = tg.Delete(ctx, "kept")
			require.ErrorIs(t, err, target.ErrImmutable)
			require.ErrorContains(t, err, `"kept"`)

			// An unconditional overwrite makes a new version; the retained one
			// is still there, byte for byte.
			_, err = tg.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(lockBucket), Key: aws.String(tg.keyPrefix + "kept"), Body: strings.NewReader("overwritten")})
			require.NoError(t, err)
			got, err := tg.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(lockBucket), Key: aws.String(tg.keyPrefix + "kept"), VersionId: version})
			require.NoError(t, err)
			data, err := io.ReadAll(got.Body)
			got.Body.Close()
			require.NoError(t, err)
			require.Equal(t, body, data)
			// A conditional create, as write-once mode sends, is refused.
			err = tg.Put(ctx, "kept", bytes.NewReader(body), int64(len(body)), target.PutOptions{IfNotExists: true})
			require.ErrorIs(t, err, target.ErrExists)

			// Multipart uploads carry the retention too.
			big := bytes.Repeat([]byte("0123456789abcdef"), (9<<20)/16)
			require.NoError(t, tg.Put(ctx, "big", bytes.NewReader(big), int64(len(big)),
				target.PutOptions{RetainUntil: until, RetentionMode: target.RetentionGovernance}))
			head, err = tg.head(ctx, tg.keyPrefix+"big")
			require.NoError(t, err)
			require.Equal(t, types.ObjectLockModeGovernance, head.ObjectLockMode)
			require.WithinDuration(t, until, aws.ToTime(head.ObjectLockRetainUntilDate), time.Second)

			// Once the retention has passed, Delete removes every version.
			short := time.Now().Add(3 * time.Second)
			require.NoError(t, tg.Put(ctx, "brief", bytes.NewReader(body), int64(len(body)), target.PutOptions{RetainUntil: short}))
			require.ErrorIs(t, tg.Delete(ctx, "brief"), target.ErrImmutable)
			time.Sleep(time.Until(short) + 2*time.Second)
			require.NoError(t, tg.Delete(ctx, "brief"))
			versions, err := tg.client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(lockBucket), Prefix: aws.String(tg.keyPrefix + "brief")})
			require.NoError(t, err)
			require.Empty(t, versions.Versions, "versions left behind")
			require.Empty(t, versions.DeleteMarkers, "delete markers left behind")
			require.NoError(t, tg.Delete(ctx, "brief"), "deleting nothing is not an error")
		})
	}
}

// TestObjectLockNeedsLockBucket: asking for object lock on a bucket without
// it is a clear configuration error, not silently unprotected objects.
func TestObjectLockNeedsLockBucket(t *testing.T) {
	for name, srv := range objectLockServers() {
		t.Run(name, func(t *testing.T) {
			s := srv(t)
			plain := s.config(t)
			open(t, plain) // creates the plain test bucket if missing
			plain.ObjectLock = true
			_, err := New(t.Context(), plain)
			require.ErrorIs(t, err, target.ErrInvalidArgument)
			require.ErrorContains(t, err, "does not have object lock enabled")
			require.ErrorContains(t, err, "object_lock=true")
		})
	}
}

func TestObjectLockConfigValidate(t *testing.T) {
	cfg := Config{ObjectLock: true, DisableContentMD5: true, RequestChecksum: ChecksumWhenRequired}
	err := cfg.Validate()
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.ErrorContains(t, err, "ObjectLock")
	cfg.DisableContentMD5 = false
	require.NoError(t, cfg.Validate())
}

// TestObjectLockConformance: with object lock on (a versioned bucket, Delete
// removing every version), the target still passes the conformance suite
// for objects stored without retention.
func TestObjectLockConformance(t *testing.T) {
	for name, srv := range objectLockServers() {
		t.Run(name, func(t *testing.T) {
			s := srv(t)
			targettest.RunWithOptions(t, func(t *testing.T) target.Target { return lockTarget(t, s) },
				targettest.Options{LargeSize: 10 << 20, ManyObjects: 200, NonAtomicIfNotExists: name == "radosgw"})
		})
	}
}
