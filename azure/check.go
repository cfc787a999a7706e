package azure

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: it lists at most one blob below the
// target's prefix, which proves the Blob service answers, the credentials
// (key, SAS or token) are accepted and may list the container, and the
// container exists. It creates nothing, whatever Config.Create says. The
// container's properties would be as cheap, but a container SAS made for
// backups (read, add, create, write, delete, list) may not read them.
func (t *Target) Check(ctx context.Context) error {
	one := int32(1)
	prefix := t.prefix
	_, err := t.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: &one}).NextPage(ctx)
	return t.fail(ctx, "check", "", err, errOptions{})
}
