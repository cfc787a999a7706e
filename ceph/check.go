//go:build ceph

package ceph

import (
	"context"
	"fmt"

	"github.com/chunkback/chunkback/target"
)

var _ target.Checker = (*Target)(nil)

// Check implements target.Checker: the pool still exists in the cluster's
// OSD map (which the monitors keep current in the client), and the user may
// read it: one read of the index object's omap, which also proves an OSD
// answers within Config.OpTimeout. It writes nothing, and creates no pool
// whatever Config.CreatePool says. librados calls cannot be abandoned, so
// ctx is looked at before the calls; Config.OpTimeout bounds them.
func (t *Target) Check(ctx context.Context) error {
	end, err := t.begin(ctx, "check", "")
	if err != nil {
		return err
	}
	defer end()
	if _, err := t.conn.GetPoolByName(t.cfg.Pool); err != nil {
		if errnoOf(err) == enoent {
			return fmt.Errorf("ceph: check: pool %q no longer exists: create it (`ceph osd pool create %s`), and open the target again: %w: %w",
				t.cfg.Pool, t.cfg.Pool, target.ErrNotFound, err)
		}
		return t.fail("check", "", err)
	}
	if _, _, _, err := t.readRecord("chunkback-check"); err != nil {
		return t.fail("check", "", err)
	}
	return nil
}
