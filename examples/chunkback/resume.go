package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chunkback/chunkback/backup"
)

// withResumeHint adds to the error of a backup that kept its partial state
// the commands that resume it and delete it. args are the backup command's.
func withResumeHint(err error, args []string, targetURL string) error {
	var pe *backup.PartialError
	if !errors.As(err, &pe) {
		return err
	}
	again := append([]string{"chunkback", "backup", "--resume", "--backup-id", pe.BackupID}, withoutFlags(args, "resume", "backup-id", "resumable")...)
	del := []string{"chunkback", "delete", "--target", targetURL, "--backup-id", pe.BackupID}
	return fmt.Errorf("%w\nresume with: %s\nor delete it with: %s", err, shellJoin(again), shellJoin(del))
}

// withoutFlags returns args without the named flags (-name, --name, with
// their value as =value or, for the non-boolean ones, the next argument).
func withoutFlags(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, value, _ := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || !contains(names, name) {
			out = append(out, args[i])
			continue
		}
		boolean := name == "resume" || name == "resumable"
		if !boolean && value == "" && !strings.Contains(args[i], "=") {
			i++ // the value is the next argument
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// shellJoin quotes each argument that a shell would split or expand.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// resumedText is the line a resumed backup's text result adds.
func resumedText(res *backup.Result) string {
	if !res.Resumed {
		return ""
	}
	return fmt.Sprintf("resumed: reused %d objects (%s) stored before the interruption\n", res.ObjectsReused, bytesText(res.BytesReused))
}

// listPartials prints the interrupted backups (list --partial).
func listPartials(ctx context.Context, e *backup.Engine, volumeID string, out *output) error {
	list, err := e.Partials(ctx, volumeID)
	if err != nil {
		return err
	}
	docs := make([]map[string]any, len(list))
	var text strings.Builder
	fmt.Fprintf(&text, "%-36s  %-36s  %-19s  %-19s  %7s  %10s  %s\n", "BACKUP", "VOLUME", "STARTED (UTC)", "UPDATED (UTC)", "OBJECTS", "STORED", "STATE")
	for i, p := range list {
		state := "resumable"
		if p.ParentID != "" {
			state = "resumable (incremental on " + p.ParentID + ")"
		}
		doc := map[string]any{
			"backup_id": p.ID, "volume_id": p.VolumeID, "parent_id": p.ParentID, "name": p.Name,
			"started_at": timeText(p.StartedAt, time.RFC3339Nano), "updated_at": timeText(p.UpdatedAt, time.RFC3339Nano),
			"source_size": p.SourceSize, "objects": p.Objects, "data_bytes": p.DataBytes, "stored_bytes": p.StoredBytes,
			"journal": p.Journal, "resumable": p.Err == nil,
		}
		if p.Err != nil {
			state = "damaged: " + p.Err.Error()
			doc["error"] = p.Err.Error()
		}
		docs[i] = doc
		fmt.Fprintf(&text, "%-36s  %-36s  %-19s  %-19s  %7d  %10s  %s\n", p.ID, p.VolumeID,
			timeText(p.StartedAt, "2006-01-02 15:04:05"), timeText(p.UpdatedAt, "2006-01-02 15:04:05"), p.Objects, bytesText(p.StoredBytes), state)
	}
	out.result(map[string]any{"partials": docs}, text.String())
	return nil
}

func timeText(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(layout)
}
