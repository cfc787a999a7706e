package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/chunkback/chunkback/backup"
)

// lockFlags are the lock and owner flags of the commands that write
// (backup, delete).
type lockFlags struct {
	owner string
	wait  time.Duration
}

func (l *lockFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.owner, "owner", "", "who writes: recorded in backups and locks; another owner's backups are left alone (default user@host)")
	fs.DurationVar(&l.wait, "lock-wait", 0, "how long to wait for the volume's lock when another writer holds it (default: fail at once, exit code 7)")
}

// volumeCommand parses the flags of a command about one volume's lock and
// opens the engine; the caller must call the returned close.
func volumeCommand(ctx context.Context, name string, args []string, out *output) (*backup.Engine, string, func() error, error) {
	var c common
	var vol string
	fs := newFlags(name, &c, out)
	fs.StringVar(&vol, "volume-id", "", "the volume whose lock to use (required)")
	if _, err := parse(fs, args, &c, out, 0); err != nil {
		return nil, "", nil, err
	}
	if vol == "" {
		return nil, "", nil, usageError{"--volume-id is required: name the locked volume (the error that reported the lock names it)"}
	}
	e, closeTarget, err := openEngine(ctx, &c)
	if err != nil {
		return nil, "", nil, err
	}
	return e, vol, closeTarget, nil
}

// lockDoc describes a lock for --json output.
func lockDoc(l *backup.LockInfo) map[string]any {
	if l == nil {
		return nil
	}
	return map[string]any{
		"volume_id": l.VolumeID, "owner": l.Owner, "host": l.Host, "pid": l.PID, "operation": l.Operation,
		"created": l.Created.UTC().Format(time.RFC3339Nano), "refreshed": l.Refreshed.UTC().Format(time.RFC3339Nano),
		"expires": l.Expires.UTC().Format(time.RFC3339Nano), "stale": l.Stale(time.Now()),
	}
}

// lockText describes a lock in one line.
func lockText(l *backup.LockInfo) string {
	state := "live, expires " + l.Expires.UTC().Format(time.RFC3339)
	if l.Stale(time.Now()) {
		state = "STALE since " + l.Expires.UTC().Format(time.RFC3339) + ": its holder stopped refreshing it"
	}
	return fmt.Sprintf("%s (%s)", l.String(), state)
}

func cmdLockStatus(ctx context.Context, args []string, out *output) error {
	e, vol, closeTarget, err := volumeCommand(ctx, "lock-status", args, out)
	if err != nil {
		return err
	}
	defer closeTarget()
	l, err := e.LockStatus(ctx, vol)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("volume %s is not locked\n", vol)
	if l != nil {
		text = fmt.Sprintf("volume %s is locked by %s\n", vol, lockText(l))
	}
	out.result(map[string]any{"volume_id": vol, "locked": l != nil, "lock": lockDoc(l)}, text)
	return nil
}

func cmdUnlock(ctx context.Context, args []string, out *output) error {
	e, vol, closeTarget, err := volumeCommand(ctx, "unlock", args, out)
	if err != nil {
		return err
	}
	defer closeTarget()
	l, err := e.BreakLock(ctx, vol)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("volume %s was not locked\n", vol)
	if l != nil {
		text = fmt.Sprintf("broke the lock of volume %s held by %s\n", vol, lockText(l))
	}
	out.result(map[string]any{"volume_id": vol, "was_locked": l != nil, "lock": lockDoc(l)}, text)
	return nil
}
