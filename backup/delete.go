package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/chunkback/chunkback/target"
)

// DeleteOptions tunes Delete.
type DeleteOptions struct {
	// Chain also deletes every backup that depends on the given one (its
	// incrementals, theirs, and so on). Without it, a backup with
	// incrementals on top of it is refused with ErrHasChildren.
	Chain bool
	// AllowForeign also deletes backups written by another owner (see
	// Config.Owner). Without it, Delete refuses them with ErrForeignOwner
	// and deletes nothing.
	AllowForeign bool
}

// Delete removes a backup and returns the IDs of the backups deleted, newest
// first. Each backup's _metadata goes first, so an interrupted delete leaves
// no backup that looks complete; only objects named by the backup's own
// prefix (and its resume journal, if one was left) are removed. A partial
// backup (see Partials) is removed too: its objects, then its journal. It
// holds the volume's lock while it runs.
func (e *Engine) Delete(ctx context.Context, backupID string, o DeleteOptions) ([]string, error) {
	info, err := e.Find(ctx, backupID, "")
	if errors.Is(err, ErrNotFound) {
		return e.deletePartial(ctx, backupID, err)
	}
	if err != nil {
		return nil, err
	}
	var deleted []string
	err = e.withVolumeLock(ctx, info.VolumeID, "delete", func(ctx context.Context) error {
		deleted, err = e.delete(ctx, backupID, info.VolumeID, o)
		return err
	})
	return deleted, err
}

// delete is Delete under the volume's lock.
func (e *Engine) delete(ctx context.Context, backupID, volumeID string, o DeleteOptions) ([]string, error) {
	info, err := e.Find(ctx, backupID, volumeID)
	if err != nil {
		return nil, err
	}
	all, err := e.List(ctx, info.VolumeID)
	if err != nil {
		return nil, err
	}
	children := map[string][]*Info{}
	for _, b := range all {
		if b.ParentID != "" {
			children[b.ParentID] = append(children[b.ParentID], b)
		}
	}
	if kids := children[info.ID]; len(kids) > 0 && !o.Chain {
		ids := make([]string, len(kids))
		for i, k := range kids {
			ids[i] = k.ID
		}
		return nil, fmt.Errorf("%w: %s is the parent of %s: delete those first, or delete the whole chain", ErrHasChildren, info.ID, strings.Join(ids, ", "))
	}
	// Depth first, so every child goes before its parent.
	var order []*Info
	var walk func(b *Info)
	walk = func(b *Info) {
		for _, k := range children[b.ID] {
			walk(k)
		}
		order = append(order, b)
	}
	walk(info)
	if err := e.checkForeign(order, o); err != nil {
		return nil, err
	}
	if err := e.checkDeletable(ctx, order); err != nil {
		return nil, err
	}
	if err := checkVolumeLock(ctx); err != nil {
		return nil, err
	}
	var deleted []string
	for _, b := range order {
		if err := e.deleteOne(ctx, b); err != nil {
			return deleted, err
		}
		deleted = append(deleted, b.ID)
	}
	return deleted, nil
}

func (e *Engine) deleteOne(ctx context.Context, b *Info) error {
	if err := e.t.Delete(ctx, b.loc.metadataName()); err != nil {
		return fmt.Errorf("deleting backup %s: %w", b.ID, err)
	}
	var names []string
	err := e.t.List(ctx, b.loc.listPrefix(), func(o target.Info) error {
		if b.loc.owns(o.Name) {
			names = append(names, o.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting backup %s: %w", b.ID, err)
	}
	// A resume journal left by a crash after the _metadata write goes last.
	for _, n := range append(names, b.loc.journalName()) {
		if err := e.t.Delete(ctx, n); err != nil {
			return fmt.Errorf("deleting backup %s: %w", b.ID, err)
		}
	}
	return nil
}
