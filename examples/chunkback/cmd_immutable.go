package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/target"
)

// immutableFlags are backup's write-once flags: --immutable-for and
// --object-lock-mode.
type immutableFlags struct {
	window time.Duration
	mode   string
}

// addImmutableFlags declares the write-once flags on fs.
func addImmutableFlags(fs *flag.FlagSet) *immutableFlags {
	f := &immutableFlags{}
	fs.DurationVar(&f.window, "immutable-for", 0, "write-once mode: no object of the backup may be replaced or deleted for this long (e.g. 720h); "+
		"the store enforces it too where it can (s3 with ?object_lock=true, azblob with ?immutable=true)")
	fs.StringVar(&f.mode, "object-lock-mode", string(target.RetentionGovernance), "with --immutable-for: governance, or compliance (not even the account's root may delete early)")
	return f
}

// config returns the engine's Immutability the flags ask for (nil without
// --immutable-for), or a usage error naming the flag.
func (f *immutableFlags) config() (*backup.Immutability, error) {
	mode := target.RetentionMode(f.mode)
	if mode.Validate() != nil {
		return nil, usageError{fmt.Sprintf("--object-lock-mode %q: use governance or compliance", f.mode)}
	}
	if f.window == 0 {
		return nil, nil
	}
	im := &backup.Immutability{Window: f.window, Mode: mode}
	if err := im.Validate(); err != nil {
		return nil, usageError{fmt.Sprintf("--immutable-for %v: give a duration of at least 1s, such as 720h", f.window)}
	}
	return im, nil
}

// noteEnforcement tells the user, on stderr, when write-once mode is kept
// only by chunkback because the store cannot enforce retention itself.
func noteEnforcement(e *backup.Engine, out *output) {
	if window, byStore := e.Immutable(); window > 0 && !byStore {
		fmt.Fprintf(out.stderr, "note: this target does not enforce retention itself; the %v write-once window is kept by chunkback only "+
			"(use s3 with ?object_lock=true or azblob with ?immutable=true for a store that refuses deletes)\n", window)
	}
}
