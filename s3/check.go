package s3

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: it lists at most one key below the
// target's prefix, which proves the endpoint answers, the credentials are
// accepted and may list the bucket, and the bucket exists. It creates
// nothing, whatever Config.CreateBucket says. A HEAD of the bucket would be
// as cheap, but its reply has no body, so its error could not tell a wrong
// access key from a wrong secret or a refused permission.
func (t *Target) Check(ctx context.Context) error {
	_, err := t.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(t.cfg.Bucket), Prefix: aws.String(t.keyPrefix), MaxKeys: aws.Int32(1),
	})
	return t.fail(ctx, "check", "", err)
}
