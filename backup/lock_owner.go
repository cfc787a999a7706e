package backup

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"
)

// Owners. Every backup chunkback writes records its engine's Config.Owner
// (Facts.Owner, shown as Info.Owner). A backup is foreign when it records
// another owner: then another tool, host or cluster writes into the same
// prefix, the situation in which Velero warns that data is lost. The engine
// never overwrites a foreign backup (no backup is ever overwritten: its
// objects carry its own ID and time, and _sha256file and _metadata are
// created only if absent), does not pick one as the parent of an
// Incremental (it reports it in Result.Warnings instead), and does not
// delete one without DeleteOptions.AllowForeign. A backup with no owner
// recorded (Cinder's, or chunkback's from before owners) is nobody's: it is
// never foreign.

// ErrForeignOwner: the backup was written by another owner (Info.Owner);
// DeleteOptions.AllowForeign lets Delete remove it anyway.
var ErrForeignOwner = errors.New("backup belongs to another owner")

// maxOwnerLen bounds Config.Owner: it is stored in every backup and lock.
const maxOwnerLen = 256

// checkOwner validates Config.Owner.
func checkOwner(owner string) error {
	if len(owner) > maxOwnerLen {
		return fmt.Errorf("%w: owner is %d bytes long: use at most %d", ErrInvalidOptions, len(owner), maxOwnerLen)
	}
	if strings.ContainsFunc(owner, unicode.IsControl) {
		return fmt.Errorf("%w: owner %q holds control characters: use a plain name such as user@host", ErrInvalidOptions, owner)
	}
	return nil
}

// defaultOwner returns "<user>@<host>" for this process.
func defaultOwner() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = fmt.Sprintf("uid%d", os.Getuid())
	}
	return name + "@" + hostName()
}

// Owner returns the owner the engine records in its backups and locks.
func (e *Engine) Owner() string { return e.owner }

// foreign reports whether b records an owner other than the engine's.
func (e *Engine) foreign(b *Info) bool { return b.Owner != "" && b.Owner != e.owner }

// latestOwnBackup returns the newest of a volume's backups (oldest first)
// that is not foreign, and a warning for the foreign backups newer than it,
// which an Incremental does not build on.
func (e *Engine) latestOwnBackup(all []*Info) (*Info, []string) {
	var skipped []string
	for i := len(all) - 1; i >= 0; i-- {
		b := all[i]
		if !e.foreign(b) {
			return b, foreignWarning(skipped, b.VolumeID)
		}
		skipped = append(skipped, fmt.Sprintf("%s (owner %s)", b.ID, b.Owner))
	}
	if len(all) == 0 {
		return nil, nil
	}
	return nil, foreignWarning(skipped, all[0].VolumeID)
}

func foreignWarning(skipped []string, volumeID string) []string {
	if len(skipped) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("volume %s holds newer backups of other owners, left alone and not used as the parent: %s; "+
		"another writer uses this prefix (give each writer its own target, or the same --owner if they are one)", volumeID, strings.Join(skipped, ", "))}
}

// checkForeign refuses to delete backups of another owner.
func (e *Engine) checkForeign(order []*Info, o DeleteOptions) error {
	if o.AllowForeign {
		return nil
	}
	for _, b := range order {
		if e.foreign(b) {
			return fmt.Errorf("%w: backup %s was written by %s, not by %s: it is left alone; delete it as its owner, or pass AllowForeign (--allow-foreign)",
				ErrForeignOwner, b.ID, b.Owner, e.owner)
		}
	}
	return nil
}
