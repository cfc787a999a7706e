//go:build !ceph

package targeturl

import (
	"context"
	"fmt"
	"net/url"

	"github.com/chunkback/chunkback/target"
)

// openRADOS reports that this binary was built without the cgo rados target.
func openRADOS(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	return scheme{}, fmt.Errorf("--target rados://: this binary was built without rados support: build with -tags ceph (see the README): %w", target.ErrInvalidArgument)
}
