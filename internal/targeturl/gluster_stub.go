//go:build !gluster

package targeturl

import (
	"context"
	"errors"
	"net/url"
)

// openGluster reports that this binary was built without the cgo gluster target.
func openGluster(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	return scheme{}, errors.New("--target gluster://: this binary was built without gluster support: build with -tags gluster (see the README)")
}
