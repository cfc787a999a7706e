package sha

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sampleFull = "../../shared/cinder-sample/backups/5a/5a/5a5a5a5a-0000-4000-8000-000000000001"

func sampleManifest(t *testing.T) (string, []byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(sampleFull, "*_sha256file"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the Cinder sample is expected at %s", sampleFull)
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	return files[0], raw
}

// TestRoundTripCinderSample parses a _sha256file written by real Cinder and
// re-encodes it to the same bytes.
func TestRoundTripCinderSample(t *testing.T) {
	_, raw := sampleManifest(t)
	m, err := Parse(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Equal(t, 32768, m.BlockSize)
	require.Len(t, m.Hashes, 256) // 8 MiB / 32 KiB
	require.Equal(t, "5a5a5a5a-0000-4000-8000-000000000001", m.BackupID)
	require.Equal(t, "sample-full", *m.BackupName)
	got, err := m.Encode()
	require.NoError(t, err)
	require.Equal(t, string(raw), string(got))
}

func TestEncodedReaderSeeksAnywhere(t *testing.T) {
	_, raw := sampleManifest(t)
	m, err := Parse(bytes.NewReader(raw))
	require.NoError(t, err)
	r, err := m.Reader()
	require.NoError(t, err)
	require.EqualValues(t, len(raw), r.Size())
	for _, off := range []int64{0, 1, 5, 200, 250, 251, 1000, int64(len(raw)) - 40, int64(len(raw)) - 1} {
		_, err := r.Seek(off, io.SeekStart)
		require.NoError(t, err)
		// Odd read sizes cross line boundaries.
		var out bytes.Buffer
		buf := make([]byte, 7)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
		}
		require.Equal(t, string(raw[off:]), out.String(), "from offset %d", off)
	}
}

func TestEncodeEmptyAndNull(t *testing.T) {
	m := &Manifest{BackupID: "b", BlockSize: 4096, CreatedAt: "t", Version: Version, VolumeID: "v"}
	got, err := m.Encode()
	require.NoError(t, err)
	require.Equal(t, `{
  "backup_description": null,
  "backup_id": "b",
  "backup_name": null,
  "chunk_size": 4096,
  "created_at": "t",
  "sha256s": [],
  "version": "1.0.0",
  "volume_id": "v"
}`, string(got))
	back, err := Parse(bytes.NewReader(got))
	require.NoError(t, err)
	require.Empty(t, back.Hashes)
	require.Nil(t, back.BackupName)
}

func TestParseErrorsNameTheField(t *testing.T) {
	_, raw := sampleManifest(t)
	cases := map[string]struct {
		data string
		want string
	}{
		"empty":        {"", "not a JSON object"},
		"truncated":    {string(raw[:len(raw)/2]), "sha256s"},
		"bad hash":     {strings.Replace(string(raw), `"54a7bd`, `"zza7bd`, 1), "sha256s[0]"},
		"short hash":   {strings.Replace(string(raw), `"54a7bd`, `"54a7b`, 1), "sha256s[0]"},
		"no chunk":     {strings.Replace(string(raw), `"chunk_size"`, `"chunk_sizx"`, 1), `"chunk_size" is missing`},
		"zero chunk":   {strings.Replace(string(raw), `"chunk_size": 32768`, `"chunk_size": 0`, 1), "chunk_size 0"},
		"bad version":  {strings.Replace(string(raw), `"1.0.0"`, `"2.0.0"`, 1), "version"},
		"list type":    {strings.Replace(string(raw), `"sha256s": [`, `"sha256s": {"a": [`, 1), "sha256s"},
		"not json":     {"hello", "not a JSON object"},
		"chunk string": {strings.Replace(string(raw), `"chunk_size": 32768`, `"chunk_size": "32768"`, 1), "chunk_size"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.data))
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestRuns(t *testing.T) {
	sel := func(set ...int) func(int) bool {
		m := map[int]bool{}
		for _, i := range set {
			m[i] = true
		}
		return func(i int) bool { return m[i] }
	}
	require.Empty(t, Runs(0, 10, 4, sel()))
	require.Equal(t, []Run{{0, 4}, {4, 8}, {8, 10}}, Runs(0, 10, 4, func(int) bool { return true }))
	require.Equal(t, []Run{{1, 5}, {9, 10}}, Runs(0, 10, 0, sel(1, 2, 3, 4, 9)))
	require.Equal(t, []Run{{1, 4}, {4, 5}, {9, 10}}, Runs(0, 10, 4, sel(1, 2, 3, 4, 9)))
	require.Equal(t, []Run{{6, 8}}, Runs(5, 8, 4, sel(6, 7, 9)))
}

// TestDiffMatchesCinderIncremental checks Diff against the extents real
// Cinder stored for the sample incremental (1 MiB objects, 32 KiB blocks).
func TestDiffMatchesCinderIncremental(t *testing.T) {
	load := func(dir string) *Manifest {
		files, err := filepath.Glob(filepath.Join(dir, "*_sha256file"))
		require.NoError(t, err)
		require.Len(t, files, 1)
		f, err := os.Open(files[0])
		require.NoError(t, err)
		defer f.Close()
		m, err := Parse(f)
		require.NoError(t, err)
		return m
	}
	parent := load(sampleFull)
	child := load(strings.TrimSuffix(sampleFull, "1") + "2")
	runs, err := Diff(parent, child, 1<<20)
	require.NoError(t, err)
	// Offsets from cinder-sample/README.md, in 32 KiB blocks.
	want := []Run{{0, 1}, {48, 51}, {84, 85}, {127, 128}, {128, 129}, {160, 161}, {196, 197}, {255, 256}}
	require.Equal(t, want, runs)

	other := *child
	other.BlockSize = 4096
	_, err = Diff(parent, &other, 1<<20)
	require.ErrorContains(t, err, "block size changed")
	_, err = Diff(parent, child, 1000)
	require.ErrorContains(t, err, "not a positive multiple")
}
