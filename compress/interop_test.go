package compress

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pythonBin is the Debian python, which has python3-zstd (Cinder's zstd
// module); a pyenv python earlier on PATH would not.
const pythonBin = "/usr/bin/python3"

// interopScript decompresses every go-<codec>-<i> file in dir with Python's
// module and compares it with raw-<i>, then writes py-<codec>-<i> compressed
// by Python exactly as Cinder does (module.compress(data)).
const interopScript = `
import os, sys
try:
    import zlib, bz2, zstd
except ImportError as e:
    print("MISSING-MODULE: %s" % e)
    sys.exit(3)
d = sys.argv[1]
mods = {"zlib": zlib, "gzip": zlib, "bz2": bz2, "bzip2": bz2, "zstd": zstd}
bad = 0
for f in sorted(os.listdir(d)):
    if not f.startswith("raw-"):
        continue
    i = f[4:]
    raw = open(os.path.join(d, f), "rb").read()
    for name, mod in mods.items():
        g = os.path.join(d, "go-%s-%s" % (name, i))
        if os.path.exists(g):
            try:
                out = mod.decompress(open(g, "rb").read())
                if out != raw:
                    print("MISMATCH %s %s: got %d bytes, want %d" % (name, i, len(out), len(raw)))
                    bad += 1
            except Exception as e:
                print("ERROR %s %s: %r" % (name, i, e))
                bad += 1
        with open(os.path.join(d, "py-%s-%s" % (name, i)), "wb") as w:
            w.write(mod.compress(raw))
print("checked")
sys.exit(1 if bad else 0)
`

func TestPythonInterop(t *testing.T) {
	if os.Getenv("CHUNKBACK_SKIP_PYTHON") == "1" {
		t.Skip("CHUNKBACK_SKIP_PYTHON=1")
	}
	if _, err := os.Stat(pythonBin); err != nil {
		t.Fatalf("%s not found (%v): install python3 and python3-zstd (apt-get install python3 python3-zstd), or set CHUNKBACK_SKIP_PYTHON=1 to skip", pythonBin, err)
	}
	inputs := [][]byte{
		[]byte("a"),
		make([]byte, 200),
		[]byte(strings.Repeat("cinder ", 40)),
		textData(1000, 20),
		textData(1<<20, 21),
		mixedData(3<<20, 22),
		randomData(64<<10, 23),
		textData(9<<20, 24),
	}
	dir := t.TempDir()
	for i, in := range inputs {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("raw-%d", i)), in, 0o600))
		for _, name := range compressingNames {
			c, err := New(name, Options{DisableSampling: true})
			require.NoError(t, err)
			out, smaller, err := c.Compress(nil, in)
			require.NoError(t, err)
			if smaller {
				require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("go-%s-%d", name, i)), out, 0o600))
			}
		}
	}
	cmd := exec.Command(pythonBin, "-c", interopScript, dir)
	outb, err := cmd.CombinedOutput()
	output := string(outb)
	if strings.Contains(output, "MISSING-MODULE") {
		t.Fatalf("%s cannot import Cinder's compression modules: %s\nInstall the zstd module with `apt-get install python3-zstd` (Debian package; Cinder imports `zstd`), or set CHUNKBACK_SKIP_PYTHON=1 to skip", pythonBin, strings.TrimSpace(output))
	}
	require.NoError(t, err, "python:\n%s", output)
	require.Contains(t, output, "checked")

	// Python-compressed objects decode in Go, through the metadata names.
	for i, in := range inputs {
		for _, name := range compressingNames {
			py, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("py-%s-%d", name, i)))
			require.NoError(t, err)
			if len(py) >= len(in) {
				continue // Cinder would store this object raw
			}
			c, err := ForMetadata(strings.ToUpper(name))
			require.NoError(t, err)
			got, err := c.Decompress(nil, py, len(in))
			require.NoError(t, err, "%s input %d", name, i)
			assert.True(t, bytes.Equal(in, got), "%s input %d", name, i)
			_, err = c.Decompress(nil, py, len(in)+1)
			assert.ErrorIs(t, err, ErrCorrupt)
		}
	}
}

// TestCinderSample decompresses the objects of real Cinder backups and checks
// them against the md5 in their _metadata.
func TestCinderSample(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "cinder-sample", "backups")
	metas, err := filepath.Glob(filepath.Join(root, "*", "*", "*", "*_metadata"))
	require.NoError(t, err)
	if len(metas) == 0 {
		t.Fatalf("no Cinder sample backups found under %s (expected /work/shared/cinder-sample, written by Cinder's PosixBackupDriver)", root)
	}
	counts := map[string]int{}
	for _, mf := range metas {
		raw, err := os.ReadFile(mf)
		require.NoError(t, err)
		var meta struct {
			Objects []map[string]struct {
				Compression string `json:"compression"`
				Length      int    `json:"length"`
				MD5         string `json:"md5"`
			} `json:"objects"`
		}
		require.NoError(t, json.Unmarshal(raw, &meta), mf)
		var buf []byte
		for _, obj := range meta.Objects {
			for name, o := range obj {
				body, err := os.ReadFile(filepath.Join(filepath.Dir(mf), name))
				require.NoError(t, err)
				c, err := ForMetadata(o.Compression)
				require.NoError(t, err, name)
				buf, err = c.Decompress(buf, body, o.Length)
				require.NoError(t, err, name)
				sum := md5.Sum(buf)
				assert.Equal(t, o.MD5, hex.EncodeToString(sum[:]), name)
				counts[o.Compression]++
				if o.Compression != "none" {
					_, err = c.Decompress(nil, body, o.Length-1)
					assert.ErrorIs(t, err, ErrCorrupt)
				}
			}
		}
	}
	t.Logf("checked objects per compression: %v", counts)
	require.NotZero(t, counts["zlib"], "the sample should contain zlib objects")
}
