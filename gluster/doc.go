// Package gluster is a target.Target that stores objects as files in a
// GlusterFS volume, spoken to directly through libgfapi (cgo): no FUSE
// mount, no root, no mount point, so a backup service in an unprivileged
// container can use a Gluster share.
//
// The layout is that of Cinder's GlusterFS backup driver, which is Cinder's
// POSIX driver on a mount of glusterfs_backup_share: CinderLayout is
// target.LayoutPosix, so a backup written here is read by Cinder from its
// mount of the same volume, and the other way round. The share is given as
// Cinder gives it, "host:volume" (ParseShare), optionally with a directory
// inside the volume ("host:/volume/dir").
//
// The target mirrors package posix:
//
//   - Put writes a temporary file (target.ReservedPrefix followed by random
//     hex) in the destination directory, fsyncs it unless Config.NoSync,
//     and renames it onto the name, so readers see the old or the new
//     object, never a partial one. With IfNotExists it hard-links the
//     temporary file to the name instead (link fails atomically if the name
//     exists) and removes the temporary name. A failed or cancelled Put
//     removes its temporary file; one left by a crash is invisible to List,
//     Get and Stat.
//   - Directories are created as needed (mode Config.DirMode) and Delete
//     removes the parent directories that became empty, up to the target's
//     root.
//   - List reads one directory at a time, sorted, so names stream out in
//     lexical order; symbolic links and non-regular files are skipped.
//
// One libgfapi connection (a Volume) serves any number of targets and
// goroutines; New makes a Volume for one target. Closing a Volume takes
// about 10 seconds (glfs_fini waits for libgfapi's threads), so keep one for
// the life of the process.
//
// The package is built only with the build tag `gluster` (it needs cgo and
// Debian's libglusterfs-dev); without the tag it is this documentation
// alone.
package gluster
