//go:build faultmatrix

package faultmatrix

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// column is one target kind of one server: a column of the table.
type column struct {
	Server, Kind string
	// URL is the --target URL and Env the environment the CLI opens it
	// with (servertest's URL_<KIND> and CLI_ entries).
	URL string
	Env map[string]string
}

func (c column) String() string { return c.Server + "/" + c.Kind }

// errNoRoute: the client of this kind talks to addresses it learns from
// the cluster, so no proxy can sit on its data path.
var errNoRoute = errors.New("no proxy on the data path")

// shortTimeouts are the URL parameters that bound each request of a kind,
// so a silent server fails a backup in seconds, not minutes. GCS and Azure
// URLs have none: their requests are bounded by the context only.
var shortTimeouts = map[string]string{
	"s3":      "timeout=4s",
	"swift":   "timeout=4s&connect_timeout=4s",
	"nfs":     "timeout=4s",
	"rados":   "op_timeout=4s&connect_timeout=10s",
	"gluster": "connect_timeout=10s",
}

// withTimeouts adds the kind's short timeouts to its URL.
func withTimeouts(kind, raw string) string {
	extra := shortTimeouts[kind]
	if extra == "" {
		return raw
	}
	if strings.Contains(raw, "?") {
		return raw + "&" + extra
	}
	return raw + "?" + extra
}

var blobEndpoint = regexp.MustCompile(`(BlobEndpoint=https?://)([^/;]+)`)

// route returns the URL and environment that make a client of c connect
// to addr instead of the server, and the server's address it replaced
// (the upstream of a proxy at addr).
func route(c column, addr string) (rawURL string, env map[string]string, upstream string, err error) {
	env = maps.Clone(c.Env)
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", nil, "", err
	}
	swapHost := func(raw string) (string, string, error) {
		v, err := url.Parse(raw)
		if err != nil || v.Host == "" {
			return "", "", fmt.Errorf("%s: %q is not a URL with a host", c, raw)
		}
		old := v.Host
		v.Host = addr
		return v.String(), old, nil
	}
	switch c.Kind {
	case "s3":
		q := u.Query()
		ep, old, err := swapHost(q.Get("endpoint"))
		if err != nil {
			return "", nil, "", err
		}
		q.Set("endpoint", ep)
		u.RawQuery = q.Encode()
		return u.String(), env, old, nil
	case "swift":
		auth, old, err := swapHost(env["OS_AUTH_URL"])
		if err != nil {
			return "", nil, "", err
		}
		env["OS_AUTH_URL"] = auth
		return c.URL, env, old, nil
	case "gs":
		old := env["STORAGE_EMULATOR_HOST"]
		if old == "" {
			return "", nil, "", fmt.Errorf("%s: no STORAGE_EMULATOR_HOST", c)
		}
		env["STORAGE_EMULATOR_HOST"] = addr
		return c.URL, env, old, nil
	case "azblob":
		cs := env["AZURE_STORAGE_CONNECTION_STRING"]
		m := blobEndpoint.FindStringSubmatch(cs)
		if m == nil {
			return "", nil, "", fmt.Errorf("%s: the connection string has no BlobEndpoint", c)
		}
		env["AZURE_STORAGE_CONNECTION_STRING"] = blobEndpoint.ReplaceAllString(cs, "${1}"+addr)
		return c.URL, env, m[2], nil
	case "nfs":
		// The MOUNT call happens once, when the target opens: only a
		// MOUNT port that is the NFS port (go-nfs) goes through the proxy.
		old := u.Host
		_, port, _ := net.SplitHostPort(old)
		_, newPort, _ := net.SplitHostPort(addr)
		q := u.Query()
		if q.Get("mount_port") == port {
			q.Set("mount_port", newPort)
		}
		u.Host = addr
		u.RawQuery = q.Encode()
		return u.String(), env, old, nil
	case "gluster":
		// Only glusterd (the volfile) goes through the proxy: the client
		// reaches the brick at the address the volfile names.
		old := u.Host
		if u.Port() == "" {
			old += ":24007"
		}
		u.Host = addr
		return u.String(), env, old, nil
	case "rados":
		return "", nil, "", fmt.Errorf("%s: %w (librados reaches the OSDs at the addresses of the cluster map)", c, errNoRoute)
	}
	return "", nil, "", fmt.Errorf("%s: unknown kind", c)
}

// secrets returns the values of c's environment that are credentials, so
// the test can check that no error shows them.
func secrets(c column) []string {
	var out []string
	for k, v := range c.Env {
		// An access key ID names the key; it is not secret.
		if strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD") || (strings.Contains(k, "KEY") && !strings.Contains(k, "KEY_ID")) {
			out = append(out, v)
		}
		if k == "AZURE_STORAGE_CONNECTION_STRING" {
			for part := range strings.SplitSeq(v, ";") {
				if key, ok := strings.CutPrefix(part, "AccountKey="); ok {
					out = append(out, key)
				}
			}
		}
	}
	return out
}
