package backup

import (
	"fmt"
	"strings"
	"time"

	"github.com/chunkback/chunkback/target"
)

const (
	metadataSuffix = "_metadata"
	shaSuffix      = "_sha256file"
	backupMarker   = "_backup_"
	// journalMarker starts the last name element of a resume journal.
	journalMarker = "chunkback_journal_"
)

// naming builds Cinder's object names for one layout.
type naming struct {
	layout    target.Layout
	container string // posix: a fixed container directory instead of ID[0:2]/ID[2:4]/ID
	zone      string // object layout: the availability zone in the prefix
}

// location is where one backup's objects live: Dir is the posix container
// directory ("" in the object layout) and Prefix the name prefix that every
// object name in _metadata starts with.
type location struct {
	Dir    string
	Prefix string
}

// full returns the target name of an object named in _metadata.
func (l location) full(name string) string {
	if l.Dir == "" {
		return name
	}
	return l.Dir + "/" + name
}

func (l location) metadataName() string { return l.full(l.Prefix + metadataSuffix) }
func (l location) shaName() string      { return l.full(l.Prefix + shaSuffix) }

// objectName returns the _metadata name of data object number i (from 1).
// %05d is a minimum width, as in Cinder: object 100000 has six digits.
func (l location) objectName(i int) string { return fmt.Sprintf("%s-%05d", l.Prefix, i) }

// journalName returns the target name of the backup's resume journal: its
// prefix with "chunkback_journal_" put before the last name element
// (dir/chunkback_journal_volume_<vol>_<ts>_backup_<id> in the posix layout,
// volume_<vol>/<ts>/chunkback_journal_az_<zone>_backup_<id> in the object
// layout). It deliberately does not start with the backup's prefix: Cinder
// refuses to restore a backup when any stray object carries its prefix, and a
// journal left next to a complete backup (a crash between the _metadata
// write and the journal's delete) must stay harmless.
func (l location) journalName() string {
	if i := strings.LastIndexByte(l.Prefix, '/'); i >= 0 {
		return l.full(l.Prefix[:i+1] + journalMarker + l.Prefix[i+1:])
	}
	return l.full(journalMarker + l.Prefix)
}

// listPrefix returns the listing prefix that holds all of the backup's objects.
func (l location) listPrefix() string { return l.full(l.Prefix) }

// newLocation returns where a new backup goes.
func (n naming) newLocation(volumeID, backupID string, at time.Time) location {
	ts := at.UTC().Format("20060102150405")
	if n.layout == target.LayoutPosix {
		return location{Dir: n.dir(backupID), Prefix: "volume_" + volumeID + "_" + ts + backupMarker + backupID}
	}
	return location{Prefix: "volume_" + volumeID + "/" + ts + "/az_" + n.zone + backupMarker + backupID}
}

// dir returns the posix container directory of a backup.
func (n naming) dir(backupID string) string {
	if n.container != "" {
		return n.container
	}
	return backupID[0:2] + "/" + backupID[2:4] + "/" + backupID
}

// locate turns the target name of a _metadata object into the backup's
// location and ID, or reports ok=false for any other name.
func (n naming) locate(name string) (loc location, backupID string, ok bool) {
	if !strings.HasSuffix(name, metadataSuffix) {
		return location{}, "", false
	}
	prefix := strings.TrimSuffix(name, metadataSuffix)
	i := strings.LastIndex(prefix, backupMarker)
	if i < 0 {
		return location{}, "", false
	}
	backupID = prefix[i+len(backupMarker):]
	if backupID == "" || strings.Contains(backupID, "/") {
		return location{}, "", false
	}
	if n.layout == target.LayoutPosix {
		j := strings.LastIndexByte(prefix, '/')
		if j < 0 {
			return location{Prefix: prefix}, backupID, true
		}
		return location{Dir: prefix[:j], Prefix: prefix[j+1:]}, backupID, true
	}
	return location{Prefix: prefix}, backupID, true
}

// locateJournal turns the target name of a resume journal into the backup's
// location and ID, or reports ok=false for any other name.
func (n naming) locateJournal(name string) (loc location, backupID string, ok bool) {
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i], name[i+1:]
	}
	rest, ok := strings.CutPrefix(base, journalMarker)
	if !ok {
		return location{}, "", false
	}
	i := strings.LastIndex(rest, backupMarker)
	if i < 0 || i+len(backupMarker) == len(rest) {
		return location{}, "", false
	}
	backupID = rest[i+len(backupMarker):]
	switch {
	case n.layout == target.LayoutPosix:
		return location{Dir: dir, Prefix: rest}, backupID, true
	case dir == "":
		return location{Prefix: rest}, backupID, true
	}
	return location{Prefix: dir + "/" + rest}, backupID, true
}

// searchPrefix returns the narrowest listing prefix that holds the backup's
// _metadata: its own directory in the posix layout, or the volume's names in
// the object layout when the volume is known.
func (n naming) searchPrefix(backupID, volumeID string) string {
	if n.layout == target.LayoutPosix {
		if backupID != "" {
			return n.dir(backupID) + "/"
		}
		if n.container != "" {
			return n.container + "/"
		}
		return ""
	}
	if volumeID != "" {
		return "volume_" + volumeID + "/"
	}
	return ""
}

// owns reports whether the target name is one of this backup's own objects:
// its _metadata, its _sha256file or a data object "-NNNNN". (A bare prefix
// match would also catch backup "abcd" when deleting backup "abc".)
func (l location) owns(name string) bool {
	rest, ok := strings.CutPrefix(name, l.listPrefix())
	if !ok {
		return false
	}
	if rest == metadataSuffix || rest == shaSuffix {
		return true
	}
	digits, ok := strings.CutPrefix(rest, "-")
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lockDir is the posix-layout directory of the volume locks (in
// Config.Container when one is set): two-letter directories hold backups, so
// it can never be taken for one.
const lockDir = "chunkback_locks"

// lockName returns the name of a volume's lock object (see lock.go): in the
// object layout "volume_<id>/chunkback.lock", beside the volume's backups;
// in the posix layout "[<container>/]chunkback_locks/volume_<id>.lock". It
// never ends in _metadata nor holds a backup's prefix, so no listing of
// backups, chunkback's or Cinder's, takes it for a backup object. The
// claims of the lock are named after it: lockName + ".claim-<token>".
func (n naming) lockName(volumeID string) string {
	if n.layout == target.LayoutPosix {
		dir := lockDir
		if n.container != "" {
			dir = n.container + "/" + lockDir
		}
		return dir + "/volume_" + volumeID + ".lock"
	}
	return "volume_" + volumeID + "/chunkback.lock"
}
