package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chunkback/chunkback/backup"
)

// cmdPrune applies a retention policy to one volume's backups.
func cmdPrune(ctx context.Context, args []string, out *output) error {
	var c common
	var vol string
	var p backup.RetentionPolicy
	var dryRun bool
	fs := newFlags("prune", &c, out)
	fs.StringVar(&vol, "volume-id", "", "the volume whose backups to prune (required)")
	fs.IntVar(&p.KeepLast, "keep-last", 0, "keep the N newest backups (and the backups they depend on)")
	fs.IntVar(&p.KeepFulls, "keep-fulls", 0, "keep the N newest full backups and every incremental on them")
	fs.Func("keep-within", "keep the backups made within this age of now: a Go duration (720h) or days (30d)", func(s string) error {
		d, err := parseAge(s)
		p.KeepWithin = d
		return err
	})
	fs.BoolVar(&dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	if _, err := parse(fs, args, &c, out, 0); err != nil {
		return err
	}
	if vol == "" {
		return usageError{"--volume-id is required: name the volume to prune (see chunkback list)"}
	}
	if err := p.Validate(); err != nil {
		return usageError{strings.NewReplacer("keep-last", "--keep-last", "keep-fulls", "--keep-fulls", "keep-within", "--keep-within").Replace(err.Error())}
	}
	e, closeTarget, err := openEngine(ctx, &c)
	if err != nil {
		return err
	}
	defer closeTarget()
	res, err := e.Prune(ctx, vol, p, backup.PruneOptions{DryRun: dryRun})
	if err != nil {
		return err
	}
	out.result(pruneDoc(vol, res), pruneText(res))
	return nil
}

// parseAge reads a Go duration, or a whole number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: use a whole number of days such as 30d, or a duration such as 720h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: use a duration such as 720h, or days such as 30d", s)
	}
	return d, nil
}

func pruneDoc(vol string, res *backup.PruneResult) map[string]any {
	kept := make([]map[string]any, len(res.Kept))
	for i, k := range res.Kept {
		kept[i] = map[string]any{
			"backup_id": k.Backup.ID, "parent_id": k.Backup.ParentID, "incremental": k.Backup.Incremental(),
			"created_at": k.Backup.CreatedAt.UTC().Format(time.RFC3339Nano), "reasons": k.Reasons,
		}
	}
	deleted := make([]string, len(res.Deleted))
	for i, b := range res.Deleted {
		deleted[i] = b.ID
	}
	return map[string]any{"volume_id": vol, "dry_run": res.DryRun, "kept": kept, "deleted": deleted}
}

func pruneText(res *backup.PruneResult) string {
	var text strings.Builder
	for _, k := range res.Kept {
		fmt.Fprintf(&text, "keep    %-36s  %s  %s\n", k.Backup.ID, k.Backup.CreatedAt.UTC().Format("2006-01-02 15:04:05"), strings.Join(k.Reasons, "; "))
	}
	verb, summary := "delete", "deleted"
	if res.DryRun {
		verb, summary = "would", "would delete"
	}
	for _, b := range res.Deleted {
		fmt.Fprintf(&text, "%-7s %-36s  %s\n", verb, b.ID, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"))
	}
	fmt.Fprintf(&text, "kept %d backup(s), %s %d\n", len(res.Kept), summary, len(res.Deleted))
	return text.String()
}
