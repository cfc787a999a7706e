package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chunkback/chunkback/internal/pyjson"
)

// FormatVersion is the only _metadata version Cinder writes and restores.
const FormatVersion = "1.0.0"

// Metadata is the content of a backup's _metadata object: Cinder's format,
// written last, so that a backup without it is not a backup.
type Metadata struct {
	BackupDescription *string
	BackupID          string
	BackupName        *string
	// CreatedAt is Python's str(datetime), e.g. "2026-11-22 02:32:21.532401+00:00".
	CreatedAt string
	// Extra is Cinder's "extra_metadata" (absent when nil); Cinder carries it
	// and ignores it. chunkback keeps its own facts under the "chunkback" key.
	Extra json.RawMessage
	// Objects lists the data objects in creation order.
	Objects  []ObjectMeta
	ParentID *string
	Version  string
	VolumeID string
	// VolumeMeta is Cinder's volume metadata, a JSON document stored as a
	// string (nil is null).
	VolumeMeta *string
}

// ObjectMeta describes one data object.
type ObjectMeta struct {
	// Name is the object's name within the container (without a posix
	// container directory).
	Name string
	// Compression is the codec name the object was stored with ("none" when
	// stored raw).
	Compression string
	// Length is the object's uncompressed length in bytes.
	Length int64
	// MD5 is the hex MD5 of the uncompressed data.
	MD5 string
	// Offset is where the data lies in the source.
	Offset int64
}

// End returns the offset just past the object's data.
func (o ObjectMeta) End() int64 { return o.Offset + o.Length }

// Facts is what chunkback records in extra_metadata["chunkback"].
type Facts struct {
	// SourceSize is the exact length of the source in bytes (Cinder records
	// only a size in GiB).
	SourceSize int64 `json:"source_size"`
	// ObjectSize is the object size the backup was cut with.
	ObjectSize int64 `json:"object_size"`
	// ZerosSkipped is true when all-zero blocks of a full backup were not
	// stored.
	ZerosSkipped bool `json:"zeros_skipped"`
	// SyntheticOf, on a synthetic full backup (Engine.Synthesize), is the
	// backup whose chain it was merged from; empty otherwise.
	SyntheticOf string `json:"synthetic_of,omitempty"`
	// Encryption is set when the backup is encrypted (Config.Keys).
	Encryption *EncryptionFacts `json:"encryption,omitempty"`
	// Owner is the Config.Owner of the engine that wrote the backup.
	Owner string `json:"owner,omitempty"`
	// ImmutableUntil, for a backup made in write-once mode
	// (Config.Immutability), is when its window ends (RFC 3339, UTC): Delete
	// refuses the backup until then whatever the engine's configuration.
	ImmutableUntil string `json:"immutable_until,omitempty"`
}

// facts returns chunkback's facts, or ok=false for a backup Cinder wrote.
func (m *Metadata) facts() (Facts, bool, error) {
	if m.Extra == nil {
		return Facts{}, false, nil
	}
	var extra map[string]json.RawMessage
	if err := json.Unmarshal(m.Extra, &extra); err != nil {
		return Facts{}, false, nil // another driver's extra_metadata; not ours
	}
	raw, ok := extra["chunkback"]
	if !ok {
		return Facts{}, false, nil
	}
	var f Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return Facts{}, false, fmt.Errorf("extra_metadata.chunkback: %w", err)
	}
	return f, true, nil
}

// Encode writes the metadata exactly as Cinder does:
// json.dumps(sort_keys=True, indent=2).
func (m *Metadata) Encode() ([]byte, error) {
	objects := make([]any, len(m.Objects))
	for i, o := range m.Objects {
		objects[i] = map[string]any{o.Name: map[string]any{
			"compression": o.Compression,
			"length":      o.Length,
			"md5":         o.MD5,
			"offset":      o.Offset,
		}}
	}
	doc := map[string]any{
		"backup_description": m.BackupDescription,
		"backup_id":          m.BackupID,
		"backup_name":        m.BackupName,
		"created_at":         m.CreatedAt,
		"objects":            objects,
		"parent_id":          m.ParentID,
		"version":            m.Version,
		"volume_id":          m.VolumeID,
		"volume_meta":        m.VolumeMeta,
	}
	if m.Extra != nil {
		doc["extra_metadata"] = m.Extra
	}
	return pyjson.Marshal(doc)
}

// ErrCorruptMetadata is wrapped by errors about an unreadable _metadata.
var ErrCorruptMetadata = errors.New("unreadable backup metadata")

// ParseMetadata reads a _metadata object. Errors wrap ErrCorruptMetadata and
// name the field at fault.
func ParseMetadata(data []byte) (*Metadata, error) {
	fail := func(format string, args ...any) (*Metadata, error) {
		return nil, fmt.Errorf("%w: %s", ErrCorruptMetadata, fmt.Sprintf(format, args...))
	}
	var raw struct {
		BackupDescription *string                      `json:"backup_description"`
		BackupID          *string                      `json:"backup_id"`
		BackupName        *string                      `json:"backup_name"`
		CreatedAt         string                       `json:"created_at"`
		Extra             json.RawMessage              `json:"extra_metadata"`
		ObjectsRaw        []map[string]json.RawMessage `json:"objects"`
		ParentID          *string                      `json:"parent_id"`
		Version           *string                      `json:"version"`
		VolumeID          *string                      `json:"volume_id"`
		VolumeMeta        *string                      `json:"volume_meta"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return fail("%v", err)
	}
	switch {
	case raw.Version == nil:
		return fail(`field "version" is missing`)
	case *raw.Version != FormatVersion && *raw.Version != EncryptedFormatVersion:
		return fail("version %q is not supported (only %q, or %q when encrypted)", *raw.Version, FormatVersion, EncryptedFormatVersion)
	case raw.BackupID == nil || *raw.BackupID == "":
		return fail(`field "backup_id" is missing`)
	case raw.VolumeID == nil || *raw.VolumeID == "":
		return fail(`field "volume_id" is missing`)
	case raw.ObjectsRaw == nil && !bytes.Contains(data, []byte(`"objects"`)):
		return fail(`field "objects" is missing`)
	}
	m := &Metadata{
		BackupDescription: raw.BackupDescription,
		BackupID:          *raw.BackupID,
		BackupName:        raw.BackupName,
		CreatedAt:         raw.CreatedAt,
		Extra:             raw.Extra,
		ParentID:          raw.ParentID,
		Version:           *raw.Version,
		VolumeID:          *raw.VolumeID,
		VolumeMeta:        raw.VolumeMeta,
	}
	if m.ParentID != nil && *m.ParentID == "" {
		m.ParentID = nil
	}
	for i, entry := range raw.ObjectsRaw {
		if len(entry) != 1 {
			return fail("objects[%d] has %d names, want 1", i, len(entry))
		}
		for name, body := range entry {
			var o struct {
				Compression *string `json:"compression"`
				Length      *int64  `json:"length"`
				MD5         *string `json:"md5"`
				Offset      *int64  `json:"offset"`
			}
			if err := json.Unmarshal(body, &o); err != nil {
				return fail("objects[%d] %q: %v", i, name, err)
			}
			switch {
			case o.Length == nil || *o.Length < 0:
				return fail("objects[%d] %q: length is missing or negative", i, name)
			case o.Offset == nil || *o.Offset < 0:
				return fail("objects[%d] %q: offset is missing or negative", i, name)
			case o.MD5 == nil || len(*o.MD5) != 32:
				return fail("objects[%d] %q: md5 is missing or not 32 hex digits", i, name)
			}
			comp := "none"
			if o.Compression != nil {
				comp = *o.Compression
			}
			m.Objects = append(m.Objects, ObjectMeta{Name: name, Compression: comp, Length: *o.Length, MD5: *o.MD5, Offset: *o.Offset})
		}
	}
	f, ours, err := m.facts()
	if err != nil {
		return fail("%v", err)
	}
	if err := checkEncryption(m, f, ours); err != nil {
		return fail("%v", err)
	}
	return m, nil
}

// pythonTime formats t as Python's str() of an aware UTC datetime.
func pythonTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05") + "+00:00"
	}
	return t.Format("2006-01-02 15:04:05.000000") + "+00:00"
}
