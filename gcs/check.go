package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: it lists at most one object below the
// target's prefix, which proves the endpoint answers, the credentials (or
// their token) are accepted and may list objects, and the bucket exists.
// It creates nothing, whatever Config.CreateBucket says. Reading the
// bucket's attributes would need storage.buckets.get, which roles such as
// roles/storage.objectAdmin, enough for backups, do not grant.
func (t *Target) Check(ctx context.Context) error {
	it := t.bucket.Objects(ctx, &storage.Query{Prefix: t.prefix})
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	if err == nil || errors.Is(err, iterator.Done) {
		return nil
	}
	var ge *googleapi.Error
	if errors.Is(err, storage.ErrBucketNotExist) || (errors.As(err, &ge) && ge.Code == http.StatusNotFound) {
		return fmt.Errorf("gcs: check: %s: %w: %w", t.bucketMissing(), target.ErrNotFound, err)
	}
	return t.fail("check", t.prefix, err)
}
