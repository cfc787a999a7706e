package bench

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/cindertest"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"67108864": 64 << 20, "64MiB": 64 << 20, "64m": 64 << 20, "1GiB": 1 << 30, "1 GiB": 1 << 30,
		"1.5K": 1536, "500MB": 500e6, "2gb": 2e9, "0": 0, "10b": 10,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "MiB", "-1", "1XB", "1e400", "1.2.3G"} {
		_, err := ParseSize(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "1 GiB", FormatSize(1<<30))
	require.Equal(t, "50 MiB", FormatSize(DefaultObjectSize))
}

func compressed(t *testing.T, data []byte) float64 {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	_, err := w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return float64(b.Len()) / float64(len(data))
}

// TestSource: the generator is deterministic, alternates random and text
// regions of a few MiB, half each, and they compress as promised.
func TestSource(t *testing.T) {
	o := SourceOptions{Size: 20<<20 + 12345, Seed: 7}
	var a, b bytes.Buffer
	require.NoError(t, WriteSource(&a, o))
	require.NoError(t, WriteSource(&b, o))
	require.Equal(t, int(o.Size), a.Len())
	require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "same options, same bytes")
	var c bytes.Buffer
	require.NoError(t, WriteSource(&c, SourceOptions{Size: 1 << 20, Seed: 8}))
	require.False(t, bytes.Equal(a.Bytes()[:1<<20], c.Bytes()), "another seed, other bytes")

	regions, err := o.Regions()
	require.NoError(t, err)
	require.Greater(t, len(regions), 2)
	var end, text, random int64
	for i, r := range regions {
		require.Equal(t, end, r.Offset)
		require.Equal(t, i%2 == 1, r.Text, "random and text alternate")
		require.LessOrEqual(t, r.Length, int64(DefaultMaxRegion))
		if i < len(regions)-1 {
			require.GreaterOrEqual(t, r.Length, int64(DefaultMinRegion))
		}
		if r.Text {
			text += r.Length
		} else {
			random += r.Length
		}
		end += r.Length
	}
	require.Equal(t, o.Size, end)
	require.InDelta(t, 0.5, float64(text)/float64(o.Size), 0.2)

	data := a.Bytes()
	rnd, txt := regions[0], regions[1]
	require.Greater(t, compressed(t, data[rnd.Offset:rnd.Offset+rnd.Length]), 0.99, "random does not compress")
	ratio := compressed(t, data[txt.Offset:txt.Offset+txt.Length])
	require.Less(t, ratio, 0.45, "text compresses about 3:1")
	require.Greater(t, ratio, 0.2)
}

// TestCreateModified changes exactly the blocks it reports, and the same
// ones every time.
func TestCreateModified(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	require.NoError(t, CreateSource(src, SourceOptions{Size: 4<<20 + 1000}))
	o := ModifyOptions{BlockSize: 32768, Fraction: 0.1, Seed: 3}
	changed, err := CreateModified(src, filepath.Join(dir, "a.img"), o)
	require.NoError(t, err)
	again, err := CreateModified(src, filepath.Join(dir, "b.img"), o)
	require.NoError(t, err)
	require.Equal(t, changed, again)
	require.Len(t, changed, 13) // round(0.1 x 129 blocks)
	require.True(t, slices.IsSorted(changed))

	orig, err := os.ReadFile(src)
	require.NoError(t, err)
	mod, err := os.ReadFile(filepath.Join(dir, "a.img"))
	require.NoError(t, err)
	require.Len(t, mod, len(orig))
	var differ []int64
	for i := int64(0); i*32768 < int64(len(orig)); i++ {
		lo, hi := i*32768, min((i+1)*32768, int64(len(orig)))
		if !bytes.Equal(orig[lo:hi], mod[lo:hi]) {
			differ = append(differ, i)
		}
	}
	require.Equal(t, changed, differ)

	one, err := CreateModified(src, filepath.Join(dir, "c.img"), ModifyOptions{Fraction: 0.0001})
	require.NoError(t, err)
	require.Len(t, one, 1, "a positive fraction changes at least one block")
}

func TestPlan(t *testing.T) {
	names := func(c Config) []string {
		plan, _, err := c.Plan()
		require.NoError(t, err)
		var out []string
		for _, o := range plan {
			out = append(out, o.Name)
		}
		return out
	}
	require.Len(t, names(Config{}), 8, "all chunkback operations")
	require.Len(t, names(Config{Cinder: true}), len(Reference))
	require.Equal(t, []string{"full-none", "restore-none"}, names(Config{Ops: []string{"restore-none"}}))
	require.Equal(t, []string{"full-zlib", "incr-1pct", "cinder-full-zlib", "cinder-incr-1pct"},
		names(Config{Ops: []string{"incr-1pct"}, Cinder: true}))
	_, asked, err := Config{Ops: []string{"verify"}}.Plan()
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"verify": true}, asked)
	_, _, err = Config{Ops: []string{"fast"}}.Plan()
	require.ErrorContains(t, err, "unknown operation")
	_, _, err = Config{Ops: []string{"cinder-full-zlib"}}.Plan()
	require.ErrorContains(t, err, "needs Cinder")
}

// TestRunRestoresExactly: the operations Run performs, in-process, give back
// the source byte for byte.
func TestRunRestoresExactly(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	require.NoError(t, CreateSource(src, SourceOptions{Size: 3 << 20, MaxRegion: 1 << 20}))
	store := filepath.Join(dir, "store")
	s := Spec{Engine: EngineChunkback, Kind: KindBackup, Target: store, Source: src, VolumeID: "vol", BackupID: NewID(),
		Compression: "zstd", ObjectSize: 1 << 20, BlockSize: 32768}
	out, err := Run(context.Background(), s)
	require.NoError(t, err)
	require.Equal(t, int64(3<<20), out.Bytes)
	require.Equal(t, 3, out.Objects)
	require.Less(t, out.BytesStored, out.Bytes)

	s.Kind, s.Dest = KindRestore, filepath.Join(dir, "out.img")
	_, err = Run(context.Background(), s)
	require.NoError(t, err)
	want, err := os.ReadFile(src)
	require.NoError(t, err)
	got, err := os.ReadFile(s.Dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got))
	_, err = Run(context.Background(), s)
	require.Error(t, err, "a restore never overwrites a file")

	s.Kind = KindVerify
	out, err = Run(context.Background(), s)
	require.NoError(t, err)
	require.Equal(t, int64(3<<20), out.Bytes)
	require.Equal(t, 3, out.Objects)

	require.Error(t, Spec{Engine: "tar", Kind: KindBackup}.Validate())
	require.Error(t, Spec{Engine: EngineChunkback, Kind: KindBackup, Target: store, VolumeID: "v", BackupID: "b"}.Validate(), "no source")
}

// TestReference runs a tiny reference workload exactly as chunkbench does:
// every operation in a child process (this test binary, re-executed), then
// the three report formats.
func TestReference(t *testing.T) {
	runReference(t, Config{Ops: []string{"full-zlib", "incr-1pct", "restore-zlib", "verify"}})
}

// TestReferenceWithCinder adds real Cinder's twins of a full backup.
func TestReferenceWithCinder(t *testing.T) {
	cindertest.Require(t)
	rep := runReference(t, Config{Ops: []string{"full-zlib"}, Cinder: true})
	require.NotNil(t, rep.Row("cinder-full-zlib"))
	require.Greater(t, rep.CinderStartup, 0.0)
	require.Equal(t, rep.Row("full-zlib").Objects, rep.Row("cinder-full-zlib").Objects)
	require.NotEqual(t, "n/a", rep.Checks[0].Result, "the zlib ratio is checked")
}

func runReference(t *testing.T, c Config) *Report {
	exe, err := os.Executable()
	require.NoError(t, err)
	c.Dir, c.Size, c.ObjectSize, c.Exe = t.TempDir(), 3<<20+5000, 1<<20, exe
	var log bytes.Buffer
	c.Log = &log
	rep, err := RunReference(context.Background(), c)
	require.NoError(t, err, log.String())
	plan, _, err := c.Plan()
	require.NoError(t, err)
	require.Len(t, rep.Rows, len(plan))
	for _, r := range rep.Rows {
		require.Equal(t, c.Size, r.Bytes, r.Op)
		require.Greater(t, r.MBps, 0.0, r.Op)
		require.Positive(t, r.Objects, r.Op)
		if runtime.GOOS == "linux" {
			require.Greater(t, r.PeakRSS, int64(1<<20), "%s: the child's peak RSS", r.Op)
		}
	}
	require.Equal(t, 4, rep.Row("full-zlib").Objects)
	entries, err := os.ReadDir(c.Dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the scratch directory is removed")

	var text, csv, js bytes.Buffer
	require.NoError(t, WriteText(&text, rep))
	require.Contains(t, text.String(), "full-zlib >= 8x Cinder")
	require.Contains(t, text.String(), rep.Machine.GoVersion)
	require.NoError(t, WriteCSV(&csv, rep))
	require.Len(t, strings.Split(strings.TrimSpace(csv.String()), "\n"), len(rep.Rows)+1)
	require.NoError(t, WriteJSON(&js, rep))
	var back Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, rep.Rows, back.Rows)
	return rep
}
