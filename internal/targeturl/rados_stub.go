//go:build !ceph

package targeturl

import (
	"context"
	"errors"
	"net/url"
)

// openRADOS reports that this binary was built without the cgo rados target.
func openRADOS(ctx context.Context, u *url.URL, o Options) (scheme, error) {
	return scheme{}, errors.New("--target rados://: this binary was built without rados support: build with -tags ceph (see the README)")
}
