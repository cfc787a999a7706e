//go:build !(ceph && gluster)

package targeturl

// addTaggedParsers adds nothing without the ceph and gluster build tags.
func addTaggedParsers(map[string]configParser) {}
