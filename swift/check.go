package swift

import (
	"context"
	"errors"
	"fmt"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: a HEAD of the container, which proves
// the storage URL answers, the token is good (in single_user mode an
// expired one is renewed, so the credentials are checked again), the user
// may use the container, and the container exists. It creates nothing,
// whatever Config.CreateContainer says.
func (t *Target) Check(ctx context.Context) error {
	c := t.cfg.Container
	err := t.call(ctx, "check container", c, func(ctx context.Context) error {
		_, _, err := t.conn.Container(ctx, c)
		return err
	})
	if errors.Is(err, target.ErrNotFound) {
		return fmt.Errorf("swift: container %q does not exist in account %s: create it (swift post %s), or set Config.CreateContainer (--create in the CLI): %w",
			c, redactURL(t.conn.StorageUrl), c, err)
	}
	return err
}
