package target

// Layout names how Cinder arranges one backup's objects on a kind of store.
// The backup engine names objects by the layout of the innermost target (see
// LayoutTarget); targets that do not say use LayoutObject.
type Layout string

const (
	// LayoutPosix is the layout of Cinder's directory drivers (posix, nfs,
	// glusterfs): every backup in its own directory ID[0:2]/ID[2:4]/ID below
	// the root, objects named volume_<volume>_<YYYYmmddHHMMSS>_backup_<id>-NNNNN.
	LayoutPosix Layout = "posix"
	// LayoutObject is the layout of Cinder's object-store drivers (swift, s3,
	// gcs): objects named volume_<volume>/<YYYYmmddHHMMSS>/az_<zone>_backup_<id>-NNNNN
	// in one bucket or container.
	LayoutObject Layout = "object"
)

// LayoutTarget is implemented by targets that are laid out the way one of
// Cinder's drivers lays out its store.
type LayoutTarget interface {
	CinderLayout() Layout
}
