package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/internal/targeturl"
	"github.com/chunkback/chunkback/target"
)

func TestImmutableFlags(t *testing.T) {
	store := t.TempDir()
	src, _ := volume(t, 100000)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--immutable-for", "10ms"}, "--immutable-for 10ms"},
		{[]string{"--immutable-for", "1h", "--object-lock-mode", "forever"}, `--object-lock-mode "forever"`},
		{[]string{"--immutable-for", "soon"}, "invalid value"},
	} {
		args := append([]string{"backup", "--target", store, "--volume-id", "v", src}, c.args...)
		code, _, errOut := cli(t, nil, args...)
		require.Equal(t, exitUsage, code, errOut)
		require.Contains(t, errOut, c.msg)
	}
}

// immutableCLI backs a small volume up in write-once mode through the CLI,
// then checks that delete is refused and deletes nothing, and that list,
// verify and restore still work. It returns the backup's ID.
func immutableCLI(t *testing.T, targetURL string, mode string) string {
	t.Helper()
	src, data := volume(t, 3<<20)
	volID := "wo-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { removeVolume(t, targetURL, volID) })
	code, out, errOut := cli(t, nil, "backup", "--target", targetURL, "--create", "--volume-id", volID, "--object-size", "1048576",
		"--immutable-for", "1h", "--object-lock-mode", mode, "--progress", "none", "--json", src)
	require.Equal(t, 0, code, errOut)
	id := jsonOut(t, out)["backup_id"].(string)
	objects := targetNames(t, targetURL, volID)
	require.NotEmpty(t, objects)

	for _, args := range [][]string{
		{"delete", "--target", targetURL, "--backup-id", id, "--chain", "--json"},
		{"delete", "--target", targetURL, "--backup-id", id},
	} {
		code, out, errOut = cli(t, nil, args...)
		require.Equal(t, exitFailure, code, "delete inside the window succeeded: %s %s", out, errOut)
		require.Contains(t, out+errOut, "is write-once: it may be deleted after")
		require.Contains(t, out+errOut, "nothing was deleted")
		require.Equal(t, objects, targetNames(t, targetURL, volID), "a refused delete changed the objects")
	}
	code, out, errOut = cli(t, nil, "list", "--target", targetURL, "--volume-id", volID, "--json")
	require.Equal(t, 0, code, errOut)
	require.Len(t, jsonOut(t, out)["backups"], 1)
	code, out, errOut = cli(t, nil, "verify", "--target", targetURL, "--backup-id", id, "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, true, jsonOut(t, out)["ok"])
	dest := filepath.Join(t.TempDir(), "restored.img")
	code, _, errOut = cli(t, nil, "restore", "--target", targetURL, "--backup-id", id, "--progress", "none", dest)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "restored bytes differ")
	return id
}

// targetNames lists the names of a volume's objects on the target.
func targetNames(t *testing.T, targetURL, volID string) []string {
	t.Helper()
	ctx := context.Background() // also used in cleanups, after t.Context ends
	tg, err := targeturl.Open(ctx, targetURL, targeturl.Options{})
	require.NoError(t, err)
	defer tg.Close()
	var names []string
	require.NoError(t, tg.List(ctx, "", func(o target.Info) error {
		if strings.Contains(o.Name, "volume_"+volID) {
			names = append(names, o.Name)
		}
		return nil
	}))
	return names
}

// removeVolume deletes a volume's objects behind the engine's back, as the
// test's cleanup: on stores that do not enforce retention the raw target
// may; object-lock buckets are cleaned by the caller.
func removeVolume(t *testing.T, targetURL, volID string) {
	tg, err := targeturl.Open(context.Background(), targetURL, targeturl.Options{})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer tg.Close()
	if target.EnforcesRetention(tg) {
		return
	}
	for _, n := range targetNames(t, targetURL, volID) {
		if err := tg.Delete(context.Background(), n); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
}

func TestImmutablePosix(t *testing.T) {
	immutableCLI(t, "file://"+t.TempDir(), "governance")
}

// TestImmutableServers runs the write-once round trip against every URL of
// every real server.
func TestImmutableServers(t *testing.T) {
	forEachServerURL(t, func(t *testing.T, targetURL string) {
		immutableCLI(t, targetURL, "governance")
	})
}

// TestImmutableObjectLock: on MinIO and radosgw, in a bucket made with
// object lock (object_lock=true and --create), a write-once backup's
// objects are held by the store itself: a raw DeleteObject of a version is
// refused, and an overwrite only adds a version, the original staying.
func TestImmutableObjectLock(t *testing.T) {
	for _, server := range []string{"minio", "ceph"} {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			env.SetCLIEnv(t)
			u, err := url.Parse(env.URLs()["s3"])
			require.NoError(t, err)
			u.Host = "chunkback-cli-lock"
			q := u.Query()
			q.Set("object_lock", "true")
			u.RawQuery = q.Encode()
			client := rawS3(t, q.Get("endpoint"), q.Get("region"))
			t.Cleanup(func() { removeLocked(t, client, u.Host, strings.Trim(u.Path, "/")+"/") })

			id := immutableCLI(t, u.String(), "governance")

			prefix := strings.Trim(u.Path, "/") + "/"
			versions, err := client.ListObjectVersions(t.Context(), &awss3.ListObjectVersionsInput{Bucket: aws.String(u.Host), Prefix: aws.String(prefix)})
			require.NoError(t, err)
			var meta *string
			var metaVersion *string
			for _, v := range versions.Versions {
				require.NotNil(t, v.Key)
				if strings.HasSuffix(*v.Key, id+"_metadata") {
					meta, metaVersion = v.Key, v.VersionId
				}
			}
			require.NotNil(t, meta, "no _metadata version listed")
			head, err := client.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String(u.Host), Key: meta, VersionId: metaVersion})
			require.NoError(t, err)
			require.Equal(t, "GOVERNANCE", string(head.ObjectLockMode))
			require.WithinDuration(t, time.Now().Add(time.Hour), aws.ToTime(head.ObjectLockRetainUntilDate), 5*time.Minute)

			_, err = client.DeleteObject(t.Context(), &awss3.DeleteObjectInput{Bucket: aws.String(u.Host), Key: meta, VersionId: metaVersion})
			require.Error(t, err, "the store deleted a retained version")
			_, err = client.PutObject(t.Context(), &awss3.PutObjectInput{Bucket: aws.String(u.Host), Key: meta, Body: strings.NewReader("{}")})
			require.NoError(t, err, "an overwrite adds a version")
			old, err := client.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(u.Host), Key: meta, VersionId: metaVersion})
			require.NoError(t, err)
			var buf bytes.Buffer
			_, err = buf.ReadFrom(old.Body)
			old.Body.Close()
			require.NoError(t, err)
			require.Contains(t, buf.String(), `"backup_id": "`+id+`"`, "the retained version changed")
		})
	}
}

func rawS3(t *testing.T, endpoint, region string) *awss3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "")))
	require.NoError(t, err)
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// removeLocked removes every version under prefix, bypassing governance
// retention (the test's cleanup; compliance would hold them).
func removeLocked(t *testing.T, client *awss3.Client, bucket, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := client.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	del := func(key, id *string) {
		if _, err := client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: key, VersionId: id, BypassGovernanceRetention: aws.Bool(true)}); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
	for _, v := range out.Versions {
		del(v.Key, v.VersionId)
	}
	for _, m := range out.DeleteMarkers {
		del(m.Key, m.VersionId)
	}
}
