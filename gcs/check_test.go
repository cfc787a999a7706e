package gcs_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func TestGCSCheck(t *testing.T) {
	s := requireServer(t)
	cfg := s.config(uniqueBucket(t))
	cfg.Prefix = "ci"
	tg := open(t, cfg)
	targettest.CheckProbe(t, tg, 9<<20)
}

// TestGCSCheckMissingBucket: a bucket deleted after the target was opened
// is ErrNotFound, with what to do.
func TestGCSCheckMissingBucket(t *testing.T) {
	s := requireServer(t)
	cfg := s.config(uniqueBucket(t))
	tg := open(t, cfg)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, s.endpoint+"/storage/v1/b/"+cfg.Bucket, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "deleting the bucket: %s", resp.Status)

	err = tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrNotFound)
	require.ErrorContains(t, err, "bucket \""+cfg.Bucket+"\" does not exist")
	require.ErrorContains(t, err, "create it")
}

// TestGCSCheckPermissionDenied: fake-gcs-server checks no credentials, so
// a proxy in front of it answers as Google does to refused ones.
func TestGCSCheckPermissionDenied(t *testing.T) {
	tg, proxy, cfg := faultyTarget(t)
	require.NoError(t, tg.Check(t.Context()))
	proxy.SetRules(httpfault.Rule{
		Status: http.StatusForbidden, ContentType: "application/json",
		Body: jsonError(403, "forbidden", "caller does not have storage.objects.list access to the Google Cloud Storage bucket"),
	})
	err := tg.Check(t.Context())
	require.ErrorIs(t, err, target.ErrPermission)
	require.ErrorContains(t, err, "access to bucket \""+cfg.Bucket+"\" denied")
	require.True(t, strings.Contains(err.Error(), "no credentials were sent"), err.Error())
}
