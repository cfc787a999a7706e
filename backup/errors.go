package backup

import "errors"

// Errors the engine returns, for errors.Is. Messages add the specifics: which
// backup, which object, and how to fix it.
var (
	// ErrInvalidOptions: an option is missing or out of range.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNotFound: no backup with that ID exists on the target.
	ErrNotFound = errors.New("backup not found")
	// ErrExists: a backup with that ID already exists.
	ErrExists = errors.New("backup already exists")
	// ErrParentUnusable: an incremental cannot be based on the parent (it is
	// missing, belongs to another volume, has another block size, or the
	// source grew). BackupOptions.FallbackToFull turns this into a full backup.
	ErrParentUnusable = errors.New("parent backup cannot be used")
	// ErrCorrupt: stored data does not match what the backup recorded
	// (missing or extra objects, bad MD5 or SHA-256, unreadable metadata).
	ErrCorrupt = errors.New("backup is damaged")
	// ErrHasChildren: the backup has incrementals on top of it.
	ErrHasChildren = errors.New("backup has incremental backups on top of it")
	// ErrDestination: the restore destination cannot hold the backup.
	ErrDestination = errors.New("restore destination unusable")
)
