package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/chunkback/chunkback/target"
)

// Object lock (Config.ObjectLock): the bucket is versioned and holds every
// version of an object until its retain-until date, so the store itself
// refuses to delete a version inside its retention, whoever asks. Put sets
// the mode and date PutOptions asks for (with the Content-MD5 that object
// lock requires); Delete removes every version of the key, which the store
// refuses, for a version still retained, with ErrImmutable.

var _ target.RetentionEnforcer = (*Target)(nil)

// EnforcesRetention implements target.RetentionEnforcer: true when
// Config.ObjectLock is set, so PutOptions.RetainUntil reaches the store.
func (t *Target) EnforcesRetention() bool { return t.cfg.ObjectLock }

// lockMode returns the S3 object lock mode and date of a Put, or ("", nil)
// when the object is not to be retained.
func (t *Target) lockMode(opts target.PutOptions) (types.ObjectLockMode, *time.Time) {
	if !t.cfg.ObjectLock || opts.RetainUntil.IsZero() {
		return "", nil
	}
	until := opts.RetainUntil.UTC()
	if opts.RetentionMode == target.RetentionCompliance {
		return types.ObjectLockModeCompliance, &until
	}
	return types.ObjectLockModeGovernance, &until
}

// retain sets the retention of key's current version again after a
// multipart upload: radosgw (Pacific) ignores the object lock headers of
// CreateMultipartUpload and would leave the object unprotected.
func (t *Target) retain(ctx context.Context, key string, mode types.ObjectLockMode, until *time.Time) error {
	_, err := t.client.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{
		Bucket: aws.String(t.cfg.Bucket), Key: aws.String(key),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionMode(mode), RetainUntilDate: until},
	})
	return err
}

// checkObjectLock makes sure the bucket has object lock enabled: without it
// a retain-until date is refused on every PUT, or, worse, ignored.
func (t *Target) checkObjectLock(ctx context.Context) error {
	out, err := t.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(t.cfg.Bucket)})
	if err == nil && out.ObjectLockConfiguration != nil && out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled {
		return nil
	}
	var api interface{ ErrorCode() string }
	if err != nil && !(errors.As(err, &api) && api.ErrorCode() == "ObjectLockConfigurationNotFoundError") {
		return t.fail(ctx, "object lock configuration", "", err)
	}
	return fmt.Errorf("s3: Config.ObjectLock: bucket %s does not have object lock enabled: use a bucket created with it "+
		"(create a new one with object_lock=true and --create), or leave object_lock off: %w", t.cfg.Bucket, target.ErrInvalidArgument)
}

// deleteVersions removes every version (and delete marker) of key. A version
// the store still retains makes it fail with ErrImmutable.
func (t *Target) deleteVersions(ctx context.Context, name, key string) error {
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(t.cfg.Bucket), Prefix: aws.String(key)}
	for {
		out, err := t.client.ListObjectVersions(ctx, in)
		if err != nil {
			return t.fail(ctx, "delete", name, err)
		}
		var ids []*string
		for _, v := range out.Versions {
			if aws.ToString(v.Key) == key {
				ids = append(ids, v.VersionId)
			}
		}
		for _, m := range out.DeleteMarkers {
			if aws.ToString(m.Key) == key {
				ids = append(ids, m.VersionId)
			}
		}
		for _, id := range ids {
			_, err := t.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(t.cfg.Bucket), Key: aws.String(key), VersionId: id})
			if err != nil && !isNotFound(err) {
				return t.retained(ctx, name, err)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
}

// retained classifies a refused version delete: in an object-lock bucket,
// AWS and radosgw answer 403 AccessDenied and MinIO 400 InvalidRequest
// ("Object is WORM protected"), reported as target.ErrImmutable.
func (t *Target) retained(ctx context.Context, name string, err error) error {
	var re *awshttp.ResponseError
	var api interface{ ErrorCode() string }
	if errors.As(err, &re) && (re.HTTPStatusCode() == http.StatusForbidden ||
		re.HTTPStatusCode() == http.StatusBadRequest && errors.As(err, &api) && api.ErrorCode() == "InvalidRequest") {
		return fmt.Errorf("%w (%w: the bucket's object lock retains a version of it)", t.fail(ctx, "delete", name, err), target.ErrImmutable)
	}
	return t.fail(ctx, "delete", name, err)
}
