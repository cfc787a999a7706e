//go:build !ceph

package main

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/chunkback/chunkback/backup"
)

// isRBD reports whether a backup source or restore destination names an RBD
// image: rbd://pool/image[@snapshot].
func isRBD(name string) bool { return strings.HasPrefix(name, "rbd://") }

var errNoRBD = errors.New("rbd:// images: this binary was built without ceph support: build with -tags ceph,pacific (needs librados-dev and librbd-dev; see the README)")

// openRBDSource reports that this binary cannot read RBD images.
func openRBDSource(context.Context, *backup.Engine, string, *backup.BackupOptions) (io.Reader, func(*backup.Result, error) error, error) {
	return nil, nil, errNoRBD
}

// restoreRBD reports that this binary cannot write RBD images.
func restoreRBD(context.Context, *backup.Engine, string, string, backup.RestoreOptions) (*backup.RestoreResult, error) {
	return nil, errNoRBD
}
