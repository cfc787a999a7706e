package backup

import (
	"context"
	"fmt"
	"time"
)

// RetentionPolicy says which backups of a volume Prune keeps. Its rules are
// a union, as in restic's and kopia's: a backup is kept when any rule keeps
// it, and every kept backup keeps its whole chain of ancestors, so pruning
// never leaves an incremental without its parent. A zero field is a rule
// that keeps nothing; at least one rule must be set.
//
// Whatever the rules, the volume's newest backup is never pruned: a policy
// such as KeepWithin, on a volume whose last backup is older than the
// window, would otherwise delete everything.
type RetentionPolicy struct {
	// KeepLast keeps the N newest backups, full or incremental (a
	// max_snapshots count). Their ancestors are kept too, so more than N
	// backups may remain while they lean on an older full: a synthetic full
	// (Synthesize) of the newest backup lets the next prune cut the chain.
	KeepLast int
	// KeepFulls keeps the N newest full backups and every incremental built
	// on them, directly or not: N whole chains.
	KeepFulls int
	// KeepWithin keeps every backup made within this long before now (the
	// engine's Config.Now), e.g. 720h for thirty days.
	KeepWithin time.Duration
}

// Validate checks the policy: at least one rule, and no negative one.
func (p RetentionPolicy) Validate() error {
	switch {
	case p.KeepLast < 0:
		return fmt.Errorf("%w: retention keep-last %d must not be negative", ErrInvalidOptions, p.KeepLast)
	case p.KeepFulls < 0:
		return fmt.Errorf("%w: retention keep-fulls %d must not be negative", ErrInvalidOptions, p.KeepFulls)
	case p.KeepWithin < 0:
		return fmt.Errorf("%w: retention keep-within %v must not be negative", ErrInvalidOptions, p.KeepWithin)
	case p.KeepLast == 0 && p.KeepFulls == 0 && p.KeepWithin == 0:
		return fmt.Errorf("%w: retention policy has no rule: set keep-last, keep-fulls or keep-within", ErrInvalidOptions)
	}
	return nil
}

// PruneOptions tunes Prune. The zero value prunes for real, over the
// volume's backups of the engine's own owner (Config.Owner) and those that
// record no owner (Cinder's).
type PruneOptions struct {
	// DryRun decides and reports, but deletes nothing.
	DryRun bool
	// Filter, when not nil, selects the backups the policy applies to; the
	// others are neither counted by the rules nor deleted, and the backups
	// they depend on are kept. It lets a caller prune only the backups one
	// writer (Facts' owner) made in a shared prefix. Default: the engine's
	// own backups and those that record no owner; another owner's are
	// never deleted unless a Filter selects them.
	Filter func(*Info) bool
}

// PruneDecision is one backup Prune keeps, with why.
type PruneDecision struct {
	// Backup is the backup kept.
	Backup *Info
	// Reasons say which rules keep it, e.g. "last 3", "full 1 of 2",
	// "within 720h0m0s", "parent of <id>", "newest backup",
	// "not selected by the filter".
	Reasons []string
}

// PruneResult is what Prune decided and did.
type PruneResult struct {
	// Kept lists the backups kept, oldest first.
	Kept []PruneDecision
	// Deleted lists the backups deleted (with DryRun, those that would be),
	// in the order of deletion: newest first, every child before its
	// parent.
	Deleted []*Info
	// DryRun is true when nothing was deleted on purpose.
	DryRun bool
}

// Prune applies a retention policy to one volume's backups: it decides which
// to keep (see RetentionPolicy) and deletes the others, newest first and
// every incremental before its parent, each as Delete does (its _metadata
// first). A failure midway stops there and returns the result so far with
// the error: every backup not yet deleted is still complete and
// restorable, because no parent goes before its children.
//
// Prune lists the volume once and decides from that list; a writer that adds
// an incremental to a backup being pruned at the same moment is not seen
// (one writer per prefix excludes that).
func (e *Engine) Prune(ctx context.Context, volumeID string, p RetentionPolicy, o PruneOptions) (*PruneResult, error) {
	if volumeID == "" {
		return nil, fmt.Errorf("%w: volume ID is empty: name the volume to prune", ErrInvalidOptions)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	filter := o.Filter
	if filter == nil {
		filter = e.ownBackup
	}
	var res *PruneResult
	err := e.withVolumeLock(ctx, volumeID, "prune", func(ctx context.Context) error {
		all, err := e.List(ctx, volumeID)
		if err != nil {
			return err
		}
		kept, doomed := p.plan(all, e.now(), filter)
		res = &PruneResult{Kept: kept, DryRun: o.DryRun}
		if o.DryRun {
			res.Deleted = doomed
			return nil
		}
		for i, b := range doomed {
			if err := checkVolumeLock(ctx); err != nil {
				return fmt.Errorf("pruning volume %s: deleted %d of %d backups, then: %w", volumeID, i, len(doomed), err)
			}
			if err := e.deleteOne(ctx, b); err != nil {
				return fmt.Errorf("pruning volume %s: deleted %d of %d backups, then: %w", volumeID, i, len(doomed), err)
			}
			res.Deleted = append(res.Deleted, b)
		}
		return nil
	})
	return res, err
}

// ownBackup is Prune's default filter: the engine's own backups and those
// that record no owner (Cinder's, or written before owners were recorded).
// Another owner's backups are never counted or deleted.
func (e *Engine) ownBackup(b *Info) bool { return b.Owner == "" || b.Owner == e.owner }
