package backup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Immutability makes an engine write-once (Config.Immutability): no object
// of a backup is ever replaced, and none is deleted until Window has passed
// since it was written. The engine wraps its target with
// target.NewWriteOnce, which asks stores that can enforce retention
// (target.RetentionEnforcer: S3 object lock, Azure immutability policies)
// to hold every object until then, and enforces it in the client for the
// others. Delete refuses a backup inside its window before it deletes
// anything, so a chain is never left half-deleted.
//
// Only a backup's own objects (_metadata, _sha256file, the data objects)
// are write-once; any other object the engine keeps (a lock, a resume
// journal) stays mutable. A backup that fails in write-once mode cannot
// remove the data objects it stored: they stay, without a _metadata, until
// the window has passed (they are never read as a backup).
type Immutability struct {
	// Window is how long each object stays write-once after it is stored.
	// Required: at least one second (days or weeks in practice).
	Window time.Duration
	// Mode is how strictly a store that enforces retention holds it:
	// target.RetentionGovernance (the default) or target.RetentionCompliance.
	Mode target.RetentionMode
}

// Validate checks the settings; errors wrap ErrInvalidOptions.
func (i Immutability) Validate() error {
	if i.Window < time.Second {
		return fmt.Errorf("%w: immutability window %v: give how long backups stay write-once, at least 1s (for example 720h for 30 days)", ErrInvalidOptions, i.Window)
	}
	if err := i.Mode.Validate(); err != nil {
		return fmt.Errorf("%w: immutability mode: %w", ErrInvalidOptions, err)
	}
	return nil
}

// writeOnce wraps t as cfg.Immutability asks.
func (i Immutability) writeOnce(t target.Target, now func() time.Time) (target.Target, error) {
	return target.NewWriteOnce(t, target.WriteOnceConfig{Window: i.Window, Mode: i.Mode, Mutable: mutableName, Now: now})
}

// mutableName reports whether name is not one of a backup's own objects
// (see location.owns), so write-once mode leaves it mutable.
func mutableName(name string) bool {
	i := strings.LastIndex(name, backupMarker)
	if i < 0 {
		return true
	}
	rest := name[i+len(backupMarker):]
	if strings.Contains(rest, "/") {
		return true
	}
	for _, suffix := range []string{metadataSuffix, shaSuffix} {
		if id, ok := strings.CutSuffix(rest, suffix); ok && id != "" {
			return false
		}
	}
	j := strings.LastIndexByte(rest, '-')
	if j <= 0 || j == len(rest)-1 {
		return true
	}
	for _, c := range rest[j+1:] {
		if c < '0' || c > '9' {
			return true
		}
	}
	return false
}

// Immutable reports the engine's write-once window (zero when off), and
// whether the store itself enforces it (target.EnforcesRetention) or only
// chunkback does.
func (e *Engine) Immutable() (window time.Duration, enforcedByStore bool) {
	if e.cfg.Immutability == nil {
		return 0, false
	}
	return e.cfg.Immutability.Window, target.EnforcesRetention(e.t)
}

// immutableUntil is the end of the window of a backup finished now, for
// Facts.ImmutableUntil ("" when write-once mode is off).
func (e *Engine) immutableUntil() string {
	if e.cfg.Immutability == nil {
		return ""
	}
	return e.now().Add(e.cfg.Immutability.Window).UTC().Format(time.RFC3339)
}

// checkDeletable refuses, before anything is deleted, to delete backups
// still inside their write-once window: the one each backup recorded
// (Facts.ImmutableUntil), whatever this engine's configuration, and, in
// write-once mode, the engine's window from the age of the backup's
// _metadata, its newest object (written last).
func (e *Engine) checkDeletable(ctx context.Context, backups []*Info) error {
	now := e.now()
	for _, b := range backups {
		if b.facts.ImmutableUntil != "" {
			until, err := time.Parse(time.RFC3339, b.facts.ImmutableUntil)
			if err != nil {
				return fmt.Errorf("%w: backup %s: immutable_until %q is not an RFC 3339 time; nothing was deleted", ErrCorrupt, b.ID, b.facts.ImmutableUntil)
			}
			if now.Before(until) {
				return fmt.Errorf("backup %s is write-once: it may be deleted after %s; nothing was deleted: %w", b.ID, until.Format(time.RFC3339), target.ErrImmutable)
			}
		}
		if e.cfg.Immutability == nil {
			continue
		}
		info, err := e.t.Stat(ctx, b.loc.metadataName())
		if err != nil {
			return fmt.Errorf("deleting backup %s: checking its age: %w", b.ID, err)
		}
		if err := target.CheckRetention(info, e.cfg.Immutability.Window, now); err != nil {
			return fmt.Errorf("backup %s is write-once (immutability window %v); nothing was deleted: %w", b.ID, e.cfg.Immutability.Window, err)
		}
	}
	return nil
}
