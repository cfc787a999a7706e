package target

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Limits on object names, chosen so that a name valid on one target is valid on
// every target: S3, GCS, Azure and Swift cap names at 1024 bytes, and POSIX
// file systems cap one path element (NAME_MAX) at 255 bytes.
const (
	// MaxNameLen is the longest object name, in bytes.
	MaxNameLen = 1024
	// MaxElementLen is the longest '/'-separated element of a name, in bytes.
	MaxElementLen = 255
)

// ReservedPrefix starts the names of temporary files that directory targets
// write before renaming them into place. No element of an object name may
// start with it, so temporary files can never be mistaken for objects.
const ReservedPrefix = ".chunkback-tmp-"

// CheckName reports whether name is a valid object name, the same on every
// target. A valid name is non-empty valid UTF-8 of at most MaxNameLen bytes,
// without control characters (bytes below 0x20 and 0x7f, NUL included), made
// of '/'-separated elements that are non-empty (so no leading, trailing or
// doubled '/'), not "." or "..", at most MaxElementLen bytes long and not
// starting with ReservedPrefix. The rules keep a name from escaping a
// directory target's root and keep backups portable between targets.
//
// The error wraps ErrInvalidArgument and says what is wrong.
func CheckName(name string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("object name %s %s: %w", quoteName(name), fmt.Sprintf(format, args...), ErrInvalidArgument)
	}
	switch {
	case name == "":
		return fmt.Errorf("empty object name: %w", ErrInvalidArgument)
	case len(name) > MaxNameLen:
		return bad("is %d bytes long, more than the limit of %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case name[0] == '/':
		return bad("starts with '/' (names are relative to the container)")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return bad("contains the control character %#02x at byte %d", c, i)
		}
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "":
			return bad("has an empty path element (a doubled or trailing '/')")
		case elem == "." || elem == "..":
			return bad("has a %q path element", elem)
		case len(elem) > MaxElementLen:
			return bad("has a path element of %d bytes, more than the limit of %d", len(elem), MaxElementLen)
		case strings.HasPrefix(elem, ReservedPrefix):
			return bad("has a path element starting with the reserved prefix %q", ReservedPrefix)
		}
	}
	return nil
}

// quoteName quotes name for an error message, shortening very long names.
func quoteName(name string) string {
	const max = 80
	if len(name) > max {
		return fmt.Sprintf("%q... (%d bytes)", name[:max], len(name))
	}
	return fmt.Sprintf("%q", name)
}

// CheckPut checks what every target checks before a Put touches the store:
// a valid name (CheckName), a size that is not negative, and a body when
// there are bytes to send. The errors wrap ErrInvalidArgument and name the
// object; a target prefixes them with its own name.
func CheckPut(name string, body io.Reader, size int64) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	switch {
	case size < 0:
		return fmt.Errorf("put %q: negative size %d: %w", name, size, ErrInvalidArgument)
	case body == nil && size > 0:
		return fmt.Errorf("put %q: nil body for %d bytes: %w", name, size, ErrInvalidArgument)
	}
	return nil
}
