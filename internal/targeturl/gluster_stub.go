//go:build !gluster

package targeturl

import (
	"context"
	"fmt"
	"net/url"

	"github.com/chunkback/chunkback/target"
)

// openGluster reports that this binary was built without the cgo gluster target.
func openGluster(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	return scheme{}, fmt.Errorf("--target gluster://: this binary was built without gluster support: build with -tags gluster (see the README): %w", target.ErrInvalidArgument)
}
