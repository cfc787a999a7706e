package sha

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics, fails only with ErrCorrupt, and a manifest
// it accepts encodes to a form that parses back to the same manifest, and
// encodes again to the same bytes (through Encode and the streaming Reader
// alike).
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "shared", "cinder-sample", "backups", "*", "*", "*", "*_sha256file"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	name := "n"
	for _, m := range []*Manifest{
		{BackupID: "b", VolumeID: "v", Version: Version, BlockSize: 32768, CreatedAt: "2026-11-22 02:32:21+00:00"},
		{BackupID: "b", VolumeID: "v", Version: Version, BlockSize: 4096, BackupName: &name, Hashes: []Hash{Sum([]byte("a")), ZeroHash(4096)}},
	} {
		data, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"chunk_size": 1, "sha256s": ["zz"], "version": "1.0.0"}`))
	f.Add([]byte(`{"chunk_size": -1, "sha256s": [], "version": "1.0.0"}`))
	f.Add([]byte(`{"chunk_size": 1, "sha256s": [], "version": "1.0.0", "extra": {"a": [1, 2]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		r, err := m.Reader()
		if err != nil {
			t.Fatal(err)
		}
		var streamed bytes.Buffer
		if _, err := streamed.ReadFrom(r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, streamed.Bytes()) {
			t.Fatalf("Encode and Reader differ:\n%s\n%s", enc, streamed.Bytes())
		}
		m2, err := Parse(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("encoded manifest does not parse: %v\n%s", err, enc)
		}
		if len(m.Hashes) == 0 && len(m2.Hashes) == 0 {
			m.Hashes, m2.Hashes = nil, nil
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}
