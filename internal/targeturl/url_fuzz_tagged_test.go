//go:build ceph && gluster

package targeturl

import "net/url"

// addTaggedParsers adds the schemes that need build tags.
func addTaggedParsers(m map[string]configParser) {
	m["rados"] = func(u *url.URL, _ func(string) string) error { _, err := radosConfig(u); return err }
	m["gluster"] = func(u *url.URL, _ func(string) string) error { _, err := glusterConfig(u); return err }
}
