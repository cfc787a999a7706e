package sha

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrCorrupt is wrapped by every error about an unreadable manifest.
var ErrCorrupt = errors.New("unreadable sha256 manifest")

// Parse reads a _sha256file. It streams the hash list, so memory is 32 bytes
// per block rather than the ~72 bytes per block of the JSON text. Errors wrap
// ErrCorrupt and name the field at fault.
func Parse(r io.Reader) (*Manifest, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	m := &Manifest{}
	fail := func(format string, args ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail("not a JSON object (%v)", errOr(err, "first token"))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("reading a key: %v", err)
		}
		key, _ := tok.(string)
		seen[key] = true
		switch key {
		case "sha256s":
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				return fail("sha256s is not a list (%v)", errOr(err, "token"))
			}
			for dec.More() {
				var s string
				if err := dec.Decode(&s); err != nil {
					return fail("sha256s[%d]: %v", len(m.Hashes), err)
				}
				h, err := ParseHash(s)
				if err != nil {
					return fail("sha256s[%d]: %v", len(m.Hashes), err)
				}
				m.Hashes = append(m.Hashes, h)
			}
			if _, err := dec.Token(); err != nil {
				return fail("sha256s: %v", err)
			}
		case "chunk_size":
			if err := dec.Decode(&m.BlockSize); err != nil {
				return fail("chunk_size: %v", err)
			}
		case "backup_id":
			err = dec.Decode(&m.BackupID)
		case "volume_id":
			err = dec.Decode(&m.VolumeID)
		case "version":
			err = dec.Decode(&m.Version)
		case "created_at":
			err = dec.Decode(&m.CreatedAt)
		case "backup_name":
			err = dec.Decode(&m.BackupName)
		case "backup_description":
			err = dec.Decode(&m.BackupDescription)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return fail("%s: %v", key, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fail("unterminated object: %v", err)
	}
	for _, k := range []string{"chunk_size", "sha256s", "version"} {
		if !seen[k] {
			return fail("field %q is missing", k)
		}
	}
	if m.BlockSize <= 0 {
		return fail("chunk_size %d is not positive", m.BlockSize)
	}
	if m.Version != Version {
		return fail("version %q is not supported (only %q)", m.Version, Version)
	}
	return m, nil
}

func errOr(err error, what string) string {
	if err != nil {
		return err.Error()
	}
	return "unexpected " + what
}
