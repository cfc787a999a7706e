//go:build gluster

package gluster

import (
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/chunkback/chunkback/internal/gfapi"
	"github.com/chunkback/chunkback/target"
)

// Defaults of Config.
const (
	DefaultPort           = 24007 // glusterd's management port
	DefaultTransport      = "tcp"
	DefaultLogFile        = "/dev/null" // libgfapi's own default
	DefaultLogLevel       = "warning"
	DefaultConnectTimeout = 30 * time.Second
	DefaultFileMode       = fs.FileMode(0o660) // as Cinder's posix driver
	DefaultDirMode        = fs.FileMode(0o770)
)

// logLevels maps Config.LogLevel to libgfapi's levels.
var logLevels = map[string]int{
	"none":     gfapi.LogNone,
	"critical": gfapi.LogCritical,
	"error":    gfapi.LogError,
	"warning":  gfapi.LogWarning,
	"info":     gfapi.LogInfo,
	"debug":    gfapi.LogDebug,
	"trace":    gfapi.LogTrace,
}

// Config configures a gluster target. Host and Volume are required; every
// zero field takes its documented default.
type Config struct {
	// Host is the management server (glusterd) to fetch the volume's
	// configuration from: a host name or an IPv4 or IPv6 address (the host
	// part of Cinder's glusterfs_backup_share), or a socket path when
	// Transport is "unix". Required.
	Host string
	// Port is glusterd's port (default DefaultPort, 24007).
	Port int
	// Transport is "tcp" (the default) or "unix".
	Transport string
	// Volume is the name of the GlusterFS volume. Required.
	Volume string
	// Path is the directory inside the volume that is the target's root:
	// "" (the default) is the volume's root, as Cinder's driver uses it;
	// "backups/cinder" or "/backups/cinder" a directory below it.
	Path string
	// CreatePath makes New create Path (and its parents) when it does not
	// exist. By default a missing Path is an error, so that a typo is not
	// silently filled.
	CreatePath bool
	// NoSync turns off fsync: by default Put fsyncs each file before it
	// renames it into place, so an acknowledged object survives a crash of
	// the bricks' hosts. Cinder's driver never fsyncs.
	NoSync bool
	// FileMode is the permission of object files (default DefaultFileMode,
	// 0660 as in Cinder); it must include owner read and write.
	FileMode fs.FileMode
	// DirMode is the permission of directories the target creates (default
	// DefaultDirMode, 0770); it must include owner read, write and search.
	DirMode fs.FileMode
	// LogFile receives libgfapi's own log (default DefaultLogFile,
	// /dev/null). Point it at a file to see why a connection failed beyond
	// what the returned error says.
	LogFile string
	// LogLevel is the level of libgfapi's log: none, critical, error,
	// warning (the default), info, debug or trace.
	LogLevel string
	// ConnectTimeout bounds New and Connect: fetching the volume's
	// configuration from glusterd and connecting to its bricks (default
	// DefaultConnectTimeout, 30s).
	ConnectTimeout time.Duration
	// MaxAttempts is the number of attempts of each operation, the first
	// one included, when the target is wrapped with target.NewRetry and
	// RetryPolicy (0 means the target package's default, 4). A brick that
	// restarts shows as a transient "transport endpoint is not connected".
	MaxAttempts int
}

// Validate reports whether the configuration is usable, naming the field
// to fix.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gluster: Config."+format+": %w", append(args, target.ErrInvalidArgument)...)
	}
	switch c.Transport {
	case "", "tcp", "unix":
	default:
		return bad("Transport %q is not supported: use \"tcp\" (the default) or \"unix\"", c.Transport)
	}
	switch {
	case c.Host == "":
		return bad("Host is empty: give the glusterd server, the host part of glusterfs_backup_share (host:volume)")
	case c.Transport != "unix" && !validHost(c.Host):
		return bad("Host %q is not a host name or an IP address (write an IPv6 address without brackets)", c.Host)
	case c.Port < 0 || c.Port > 65535:
		return bad("Port %d is out of range (0 means %d)", c.Port, DefaultPort)
	case c.Volume == "":
		return bad("Volume is empty: give the volume name, the part after ':' of glusterfs_backup_share (host:volume)")
	case strings.ContainsAny(c.Volume, "/: \t\n\x00"):
		return bad("Volume %q is not a volume name (no '/', ':' or spaces; a directory inside the volume goes in Config.Path)", c.Volume)
	case c.FileMode&^fs.ModePerm != 0 || c.DirMode&^fs.ModePerm != 0:
		return bad("FileMode %v and DirMode %v must hold only permission bits", c.FileMode, c.DirMode)
	case c.FileMode != 0 && c.FileMode&0o600 != 0o600:
		return bad("FileMode %#o must give the owner read and write permission (0600)", uint32(c.FileMode))
	case c.DirMode != 0 && c.DirMode&0o700 != 0o700:
		return bad("DirMode %#o must give the owner read, write and search permission (0700)", uint32(c.DirMode))
	case c.ConnectTimeout < 0:
		return bad("ConnectTimeout %v must not be negative (0 means %v)", c.ConnectTimeout, DefaultConnectTimeout)
	case c.MaxAttempts < 0:
		return bad("MaxAttempts %d must not be negative (0 means the default, 4)", c.MaxAttempts)
	}
	if c.LogLevel != "" {
		if _, ok := logLevels[c.LogLevel]; !ok {
			return bad("LogLevel %q is not one of none, critical, error, warning, info, debug, trace", c.LogLevel)
		}
	}
	if p := strings.Trim(c.Path, "/"); p != "" {
		if err := target.CheckName(p); err != nil {
			return bad("Path %q is not a clean directory path inside the volume: %w", c.Path, err)
		}
	}
	return nil
}

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// withDefaults fills the zero fields. c must be valid.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Transport == "" {
		c.Transport = DefaultTransport
	}
	if c.LogFile == "" {
		c.LogFile = DefaultLogFile
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.FileMode == 0 {
		c.FileMode = DefaultFileMode
	}
	if c.DirMode == 0 {
		c.DirMode = DefaultDirMode
	}
	return c
}

// RetryPolicy is the policy to wrap the target with (target.NewRetry):
// the target package's defaults, with MaxAttempts from the Config.
func (c Config) RetryPolicy() target.RetryPolicy {
	return target.RetryPolicy{MaxAttempts: c.MaxAttempts}
}

// server names glusterd for messages.
func (c Config) server() string {
	if c.Transport == "unix" {
		return c.Host
	}
	return net.JoinHostPort(c.Host, fmt.Sprint(c.Port))
}

// ParseShare parses a share as Cinder's glusterfs_backup_share gives it,
// "host:volume", into a Config with Host, Volume and Path set. It also
// accepts the forms mount.glusterfs does: "host:/volume" and
// "host:/volume/dir/below" (then Path is "dir/below"), and an IPv6 address
// with or without brackets ("[::1]:vol", "::1:vol"): the volume name is
// what follows the last ':'.
func ParseShare(share string) (Config, error) {
	bad := func(why string) (Config, error) {
		return Config{}, fmt.Errorf("gluster: share %q %s: give host:volume, as Cinder's glusterfs_backup_share (e.g. 192.0.2.10:backups): %w",
			share, why, target.ErrInvalidArgument)
	}
	i := strings.LastIndexByte(share, ':')
	if strings.HasPrefix(share, "[") {
		end := strings.Index(share, "]:")
		if end < 0 {
			return bad("has an unterminated '[' or no ':' after ']'")
		}
		i = end + 1
	} else if j := strings.Index(share, ":/"); j >= 0 {
		i = j // the volume part may hold no ':', but a host:/volume/dir path may
	}
	if i < 0 {
		return bad("has no ':'")
	}
	host, rest := strings.Trim(share[:i], "[]"), strings.TrimPrefix(share[i+1:], "/")
	volume, dir, _ := strings.Cut(rest, "/")
	switch {
	case host == "":
		return bad("has no host before ':'")
	case volume == "":
		return bad("has no volume after ':'")
	}
	cfg := Config{Host: host, Volume: volume, Path: strings.Trim(dir, "/")}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
