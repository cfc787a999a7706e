// Package backup is chunkback's engine: full and incremental backups of a byte
// source into a target.Target, restore of a whole chain into an io.WriterAt,
// and list, show, verify and delete — with no database: the target is the
// catalog.
//
// Everything it writes is in OpenStack Cinder's chunked backup format, byte
// for byte (object names, _metadata, _sha256file), so Cinder can restore
// chunkback's backups and chunkback restores Cinder's.
//
// A backup is complete when, and only when, its _metadata object exists: the
// engine writes it last, after every data object and the _sha256file, and
// deletes it first.
package backup

import (
	"cmp"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/target"
)

// Config configures an Engine. The zero value works for a target that
// declares its layout.
type Config struct {
	// Layout selects Cinder's naming scheme. Default: the layout the innermost
	// target declares (target.LayoutTarget), else target.LayoutObject.
	Layout target.Layout
	// Container, in the posix layout, puts every backup in this one directory
	// (Cinder's backup.container) instead of ID[0:2]/ID[2:4]/ID.
	Container string
	// AvailabilityZone is the zone written into object-layout names
	// (az_<zone>_backup_<id>). Default "nova", Cinder's default zone.
	AvailabilityZone string
	// Workers is the number of objects hashed, compressed, stored or restored
	// at once. Default: runtime.GOMAXPROCS(0). Memory is about
	// (Workers + 2) x object size and does not grow with the source: a
	// backup holds Workers + 1 object buffers, or with a codec one per
	// worker plus each worker's output, kept within a share of the other
	// two objects by giving compressed input back to the OS as it goes
	// (see outputShare); a restore holds a decompressed object per worker.
	// An encrypted backup with no codec also holds a sealed copy per worker.
	Workers int
	// Now returns the current time (for tests). Default time.Now. (Locks
	// use the real clock: other hosts compare their times.)
	Now func() time.Time
	// Keys, when set, encrypts new backups client-side with its current key
	// (see EncryptionFacts; Cinder cannot restore them) and opens encrypted
	// backups (restore, verify, incremental parents). Default nil: new
	// backups are stored in the clear, and reading an encrypted one fails
	// with ErrKeyRequired. Encryption holds one more object buffer per
	// worker while backing up (the sealed object).
	Keys crypt.KeyProvider
	// Owner names who writes the backups: it is recorded in each backup
	// (Info.Owner) and in the volume locks. Backups of another owner in the
	// same volume are reported, never overwritten, and not deleted without
	// DeleteOptions.AllowForeign. Default "<user>@<host>" of this process.
	Owner string
	// Lock configures the per-volume lock that lets one writer at a time
	// into a volume's backups (see LockConfig).
	Lock LockConfig
	// Immutability, when set, makes backups write-once for a window (see
	// Immutability). Default nil: off.
	Immutability *Immutability
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Layout != "" && c.Layout != target.LayoutPosix && c.Layout != target.LayoutObject:
		return fmt.Errorf("%w: layout %q: use %q or %q", ErrInvalidOptions, c.Layout, target.LayoutPosix, target.LayoutObject)
	case c.Workers < 0:
		return fmt.Errorf("%w: workers %d must not be negative (0 picks the number of CPUs)", ErrInvalidOptions, c.Workers)
	case strings.HasPrefix(c.Container, "/") || strings.HasSuffix(c.Container, "/"):
		return fmt.Errorf("%w: container %q must be a relative directory without a leading or trailing slash", ErrInvalidOptions, c.Container)
	case strings.ContainsAny(c.AvailabilityZone, "/"):
		return fmt.Errorf("%w: availability zone %q must not contain '/'", ErrInvalidOptions, c.AvailabilityZone)
	}
	if c.Immutability != nil {
		if err := c.Immutability.Validate(); err != nil {
			return err
		}
	}
	if err := checkOwner(c.Owner); err != nil {
		return err
	}
	return c.Lock.Validate()
}

// Engine backs sources up into one target and restores them.
// It is safe for concurrent use.
type Engine struct {
	t       target.Target
	cfg     Config
	naming  naming
	workers int
	now     func() time.Time
	owner   string
}

// New returns an engine for t.
func New(t target.Target, cfg Config) (*Engine, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: target is nil", ErrInvalidOptions)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	layout := cfg.Layout
	if layout == "" {
		layout = target.LayoutObject
		if lt, ok := target.As[target.LayoutTarget](t); ok {
			layout = lt.CinderLayout()
		}
	}
	zone := cfg.AvailabilityZone
	if zone == "" {
		zone = "nova"
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if cfg.Immutability != nil {
		var err error
		if t, err = cfg.Immutability.writeOnce(t, now); err != nil {
			return nil, err
		}
	}
	return &Engine{
		t:       t,
		cfg:     cfg,
		naming:  naming{layout: layout, container: cfg.Container, zone: zone},
		workers: workers,
		now:     now,
		owner:   cmp.Or(cfg.Owner, defaultOwner()),
	}, nil
}

// Layout returns the naming scheme the engine uses.
func (e *Engine) Layout() target.Layout { return e.naming.layout }
