// Command chunkback backs up a file or block device into a storage target in
// OpenStack Cinder's chunked format, and restores it.
//
//	chunkback backup  --target URL --volume-id ID [--backup-id ID] [--parent-id ID | --incremental]
//	                  [--compression NAME] [--object-size BYTES] [--block-size BYTES] [--workers N]
//	                  [--resumable=false | --resume] SOURCE
//	chunkback restore --target URL --backup-id ID DEST
//	chunkback list|show|verify|delete --target URL [--volume-id ID | --backup-id ID]
//	chunkback prune --target URL --volume-id ID [--keep-last N] [--keep-fulls N] [--keep-within AGE] [--dry-run]
//	chunkback synthesize --target URL --backup-id ID [--new-backup-id ID] [--compression NAME]
//	chunkback lock-status|unlock --target URL --volume-id ID
//
// Exit codes: 0 success; 1 failure; 2 bad usage or options; 3 backup not
// found; 4 damaged backup (verify found faults); 5 the backup has
// incrementals (delete without --chain); 6 unusable parent for an
// incremental; 7 encryption key missing, wrong or unreadable; 8 the volume
// is locked by another writer, or the lock was lost; 130 interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitDamaged     = 4
	exitHasChildren = 5
	exitParent      = 6
	exitKey         = 7
	exitLocked      = 8 // backup.ErrLocked, backup.ErrLockLost: another writer holds the volume
	exitInterrupted = 130
)

const usage = `chunkback: chunked, incremental backups in OpenStack Cinder's format

Usage:
  chunkback backup  --target URL --volume-id ID [--backup-id ID] [--parent-id ID | --incremental]
                    [--compression NAME] [--object-size BYTES] [--block-size BYTES] [--workers N]
                    [--resumable=false | --resume] SOURCE
                    [--immutable-for DURATION [--object-lock-mode governance|compliance]]
  chunkback restore --target URL --backup-id ID DEST
  chunkback list    --target URL [--volume-id ID] [--partial]
  chunkback show    --target URL --backup-id ID
  chunkback verify  --target URL --backup-id ID [--chain=false]
  chunkback delete  --target URL --backup-id ID [--chain] [--allow-foreign]
  chunkback prune   --target URL --volume-id ID [--keep-last N] [--keep-fulls N] [--keep-within 720h|30d] [--dry-run]
  chunkback synthesize --target URL --backup-id ID [--new-backup-id ID] [--compression NAME] [--object-size BYTES]
  chunkback check   --target URL [--every DURATION] [--count N] [--json]
  chunkback lock-status --target URL --volume-id ID
  chunkback unlock  --target URL --volume-id ID   (break a stale lock)

Encryption: --encryption-key-file PATH or --encryption-key-env VAR on backup, restore, verify, show.

URL is a directory (Cinder's backup_posix_path) or file:///absolute/dir.
SOURCE is a file, a block device or - for standard input. Run
"chunkback COMMAND -h" for a command's flags.

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 damaged backup,
5 backup has incrementals, 6 unusable parent, 7 encryption key missing
or wrong, 8 volume locked, 130 interrupted.
backup and delete take --owner NAME (default user@host) and --lock-wait DURATION.
`

// run executes one command and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmds := map[string]func(context.Context, []string, *output) error{
		"backup":  cmdBackup,
		"restore": cmdRestore,
		"list":    cmdList,
		"show":    cmdShow,
		"verify":  cmdVerify,
		"delete":  cmdDelete,

		"prune":       cmdPrune,
		"synthesize":  cmdSynthesize,
		"check":       cmdCheck,
		"lock-status": cmdLockStatus,
		"unlock":      cmdUnlock,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "chunkback: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	out := &output{stdout: stdout, stderr: stderr}
	err := cmd(ctx, args[1:], out)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	if out.json && !errors.Is(err, errReported) {
		out.emit(map[string]any{"error": err.Error(), "exit_code": code})
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintf(stderr, "chunkback %s: %v\n", args[0], err)
	}
	return code
}
