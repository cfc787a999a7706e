package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// cinderSampleFiles returns the contents of the files of the real Cinder
// backups in shared/cinder-sample whose names end in suffix (none if the
// sample is not there: the fuzzers have seeds of their own).
func cinderSampleFiles(tb testing.TB, suffix string) [][]byte {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join("..", "..", "shared", "cinder-sample", "backups", "*", "*", "*", "*"+suffix))
	var out [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzParseMetadata: ParseMetadata never panics, fails only with
// ErrCorruptMetadata, and what it accepts survives Encode: parsing the
// encoded form gives the same metadata, and encoding that gives the same
// bytes.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range cinderSampleFiles(f, "_metadata") {
		f.Add(s)
	}
	desc, vm := "a description", `{"k": "v"}`
	parent := "p-1"
	for _, m := range []*Metadata{
		{BackupID: "b", VolumeID: "v", Version: FormatVersion, CreatedAt: "2026-11-22 02:32:21.532401+00:00"},
		{BackupID: "b", VolumeID: "v", Version: FormatVersion, BackupDescription: &desc, VolumeMeta: &vm, ParentID: &parent,
			Extra:   json.RawMessage(`{"chunkback": {"source_size": 3, "object_size": 1048576, "zeros_skipped": true, "immutable_until": "2030-01-01T00:00:00Z"}}`),
			Objects: []ObjectMeta{{Name: "x-00001", Compression: "zlib", Length: 3, MD5: "0123456789abcdef0123456789abcdef", Offset: 0}}},
	} {
		data, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version": "1.0.0", "backup_id": "b", "volume_id": "v", "objects": [{"a": {"length": -1}}]}`))
	f.Add([]byte(`{"version": "1.0.0", "backup_id": "b", "volume_id": "v", "objects": [], "extra_metadata": {"chunkback": 7}}`))
	f.Add([]byte(`{"version": "1.0.0", "backup_id": "b", "volume_id": "v", "objects": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptMetadata) {
				t.Fatalf("error does not wrap ErrCorruptMetadata: %v", err)
			}
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted metadata does not encode: %v", err)
		}
		m2, err := ParseMetadata(enc)
		if err != nil {
			t.Fatalf("encoded metadata does not parse: %v\n%s", err, enc)
		}
		if !sameExtra(t, m.Extra, m2.Extra) {
			t.Fatalf("extra_metadata changed: %s -> %s", m.Extra, m2.Extra)
		}
		m.Extra, m2.Extra = nil, nil
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the metadata:\n%+v\n%+v", m, m2)
		}
		m2.Extra = nil
		enc2, err := m2.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m.Extra = nil
		enc1, _ := m.Encode()
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc1, enc2)
		}
	})
}

// sameExtra compares two extra_metadata documents by value.
func sameExtra(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if a == nil || b == nil {
		return (a == nil) == (b == nil) || string(a) == "null" || string(b) == "null"
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("accepted extra_metadata is not JSON: %v", err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("re-encoded extra_metadata is not JSON: %v", err)
	}
	return reflect.DeepEqual(va, vb)
}
