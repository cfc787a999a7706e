package backup

import (
	"fmt"
	"slices"
	"time"
)

// plan decides, from a volume's backups (oldest first, as List returns
// them), which to keep and why, and in which order to delete the others
// (children before parents, newest first). It does no I/O.
func (p RetentionPolicy) plan(all []*Info, now time.Time, filter func(*Info) bool) ([]PruneDecision, []*Info) {
	byID := make(map[string]*Info, len(all))
	children := map[string][]*Info{}
	for _, b := range all {
		byID[b.ID] = b
		if b.ParentID != "" {
			children[b.ParentID] = append(children[b.ParentID], b)
		}
	}
	reasons := map[string][]string{}
	keep := func(b *Info, why string) { reasons[b.ID] = append(reasons[b.ID], why) }

	var selected []*Info // newest first
	for i := len(all) - 1; i >= 0; i-- {
		if b := all[i]; filter == nil || filter(b) {
			selected = append(selected, b)
		} else {
			keep(b, "not selected by the filter")
		}
	}
	if len(selected) > 0 {
		keep(selected[0], "newest backup")
	}
	fulls := 0
	for i, b := range selected {
		if i < p.KeepLast {
			keep(b, fmt.Sprintf("last %d", p.KeepLast))
		}
		if !b.Incremental() && fulls < p.KeepFulls {
			fulls++
			why := fmt.Sprintf("full %d of %d", fulls, p.KeepFulls)
			keep(b, why)
			keepDescendants(b, children, filter, "in the chain of "+why+" ("+b.ID+")", keep)
		}
		if p.KeepWithin > 0 && !b.CreatedAt.Before(now.Add(-p.KeepWithin)) {
			keep(b, fmt.Sprintf("within %v", p.KeepWithin))
		}
	}

	// Every kept backup keeps its ancestors: a worklist, so each parent
	// link is followed once.
	var work []*Info
	for _, b := range all {
		if len(reasons[b.ID]) > 0 {
			work = append(work, b)
		}
	}
	for len(work) > 0 {
		b := work[len(work)-1]
		work = work[:len(work)-1]
		parent := byID[b.ParentID]
		if parent == nil {
			continue // a full backup, or an orphan whose parent is already gone
		}
		fresh := len(reasons[parent.ID]) == 0
		keep(parent, "parent of "+b.ID)
		if fresh {
			work = append(work, parent)
		}
	}

	var kept []PruneDecision
	var doomed []*Info
	for _, b := range all {
		if r := reasons[b.ID]; len(r) > 0 {
			kept = append(kept, PruneDecision{Backup: b, Reasons: r})
		} else {
			doomed = append(doomed, b)
		}
	}
	// No kept backup depends on a doomed one (the ancestors of kept backups
	// are kept), so deleting the deepest first, newest first among equals,
	// removes every child before its parent.
	depth := func(b *Info) int {
		d := 0
		for seen := map[string]bool{b.ID: true}; b.ParentID != "" && byID[b.ParentID] != nil && !seen[b.ParentID]; d++ {
			b = byID[b.ParentID]
			seen[b.ID] = true
		}
		return d
	}
	depths := make(map[string]int, len(doomed))
	order := make(map[string]int, len(doomed))
	for i, b := range doomed {
		depths[b.ID], order[b.ID] = depth(b), i
	}
	slices.SortStableFunc(doomed, func(a, b *Info) int {
		if depths[a.ID] != depths[b.ID] {
			return depths[b.ID] - depths[a.ID]
		}
		return order[b.ID] - order[a.ID]
	})
	return kept, doomed
}

// keepDescendants keeps every selected backup built on b, directly or not.
func keepDescendants(b *Info, children map[string][]*Info, filter func(*Info) bool, why string, keep func(*Info, string)) {
	seen := map[string]bool{b.ID: true}
	work := slices.Clone(children[b.ID])
	for len(work) > 0 {
		c := work[len(work)-1]
		work = work[:len(work)-1]
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		if filter == nil || filter(c) {
			keep(c, why)
		}
		work = append(work, children[c.ID]...)
	}
}
