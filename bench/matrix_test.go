package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func keys(cells []Cell) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = c.Key()
	}
	return out
}

// TestMatrixCells: the matrix expands into every combination, in run order,
// put and get once per object size and workers, the peers without verify.
func TestMatrixCells(t *testing.T) {
	c := MatrixConfig{
		Targets: []string{"/tmp/a", "s3://user:secret@bucket/p?endpoint=http://127.0.0.1:9000&secret_key=x", "/tmp/b"},
		Codecs:  []string{"zlib", "none"}, ObjectSizes: []int64{1 << 20, 4 << 20}, BlockSizes: []int{32768, 65536},
		Workers: []int{1, 2}, Ops: []string{OpGet, OpBackupFull, OpVerify},
	}
	cells, err := c.Cells()
	require.NoError(t, err)
	// Per target: 2 object sizes x 2 workers x get, then 2 codecs x 2 x 2 x 2 x 2 ops.
	require.Len(t, cells, 3*(2*2+2*2*2*2*2))
	require.Equal(t, "engine=chunkback target=file op=get codec=- object_size=1048576 block_size=0 workers=1", cells[0].Key())
	require.Equal(t, "engine=chunkback target=file op=backup-full codec=zlib object_size=1048576 block_size=32768 workers=1", cells[4].Key())
	require.Equal(t, "engine=chunkback target=file op=verify codec=zlib object_size=1048576 block_size=32768 workers=1", cells[5].Key())
	ks := keys(cells)
	for _, k := range ks {
		require.NotContains(t, k, "secret")
		require.NotContains(t, k, "127.0.0.1")
	}
	require.Contains(t, ks, "engine=chunkback target=s3:bucket op=verify codec=none object_size=4194304 block_size=65536 workers=2")
	require.Contains(t, ks, "engine=chunkback target=file#2 op=get codec=- object_size=4194304 block_size=0 workers=2")
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(ks))), len(ks), "keys are unique")

	c.Cinder, c.Restic = true, true
	withPeers, err := c.Cells()
	require.NoError(t, err)
	peers := withPeers[len(cells):]
	require.Equal(t, []string{
		"engine=cinder target=file op=backup-full codec=zlib object_size=1048576 block_size=32768 workers=0",
		"engine=cinder target=file op=backup-full codec=zlib object_size=1048576 block_size=65536 workers=0",
		"engine=cinder target=file op=backup-full codec=zlib object_size=4194304 block_size=32768 workers=0",
		"engine=cinder target=file op=backup-full codec=zlib object_size=4194304 block_size=65536 workers=0",
	}, keys(peers[:4]))
	require.Len(t, peers, 2*2*2+2, "Cinder and restic: backup-full only, no verify, no get")
	require.Equal(t, "engine=restic target=file op=backup-full codec=none object_size=0 block_size=0 workers=0", peers[len(peers)-1].Key())

	all, err := MatrixConfig{Workers: []int{2}}.Cells()
	require.NoError(t, err)
	require.Len(t, all, len(MatrixOps()), "defaults: one target, zlib, one size, every operation")
	require.Equal(t, "file", all[0].Target)

	for _, bad := range []MatrixConfig{
		{Ops: []string{"backup"}},
		{Workers: []int{0}},
		{ObjectSizes: []int64{100000}, BlockSizes: []int{32768}},
		{Mix: &Mix{Compressible: 0.7, Zeros: 0.4}},
		{Targets: []string{" "}},
		{Repeat: -1},
	} {
		_, err := bad.Cells()
		require.Error(t, err, "%+v", bad)
	}
}

func TestTargetLabel(t *testing.T) {
	for raw, want := range map[string]string{
		"/var/backups":        "file",
		"file:///var/backups": "file",
		"relative/dir":        "file",
		"s3://bucket/prefix?endpoint=http://u:p@h:9000": "s3:bucket",
		"swift://container":                             "swift:container",
		"nfs://user:pw@server:2049/export/dir":          "nfs:server",
		"gs://":                                         "gs",
	} {
		require.Equal(t, want, TargetLabel(raw), raw)
	}
}

// TestSourceMix: the shares of text and zeros are honoured, measured on the
// bytes: zero bytes counted, compressibility measured with zlib.
func TestSourceMix(t *testing.T) {
	const size = 4 << 20
	zeroPage := make([]byte, 4096)
	for _, m := range []Mix{{Compressible: 0.2, Zeros: 0.3}, {Compressible: 0, Zeros: 0}, {Compressible: 0.9, Zeros: 0.1}} {
		t.Run(m.String(), func(t *testing.T) {
			o := SourceOptions{Size: size, Seed: 5, MinRegion: 64 << 10, MaxRegion: 256 << 10, Mix: &m}
			var b bytes.Buffer
			require.NoError(t, WriteSource(&b, o))
			data := b.Bytes()
			require.Len(t, data, size)
			var zeroPages, pages int
			for off := 0; off < len(data); off += 4096 {
				pages++
				if bytes.Equal(data[off:off+4096], zeroPage) {
					zeroPages++
				}
			}
			require.InDelta(t, m.Zeros, float64(zeroPages)/float64(pages), 0.03, "share of all-zero pages")
			// Text compresses to about a third, random not at all, zeros
			// to nothing.
			random := 1 - m.Compressible - m.Zeros
			want := random + m.Compressible*0.33
			require.InDelta(t, want, compressed(t, data), 0.05, "zlib ratio of the whole source")
		})
	}
	// The reference mix, said explicitly, gives the very same bytes as nil.
	var a, b bytes.Buffer
	require.NoError(t, WriteSource(&a, SourceOptions{Size: 9 << 20, Seed: 3}))
	require.NoError(t, WriteSource(&b, SourceOptions{Size: 9 << 20, Seed: 3, Mix: &Mix{Compressible: 0.5}}))
	require.True(t, bytes.Equal(a.Bytes(), b.Bytes()))
	require.Error(t, WriteSource(io.Discard, SourceOptions{Size: 1, Mix: &Mix{Compressible: -0.1}}))
}

// TestRawPutGet: a put wraps round a source smaller than its objects, and a
// get reads back what was put; latencies are reported.
func TestRawPutGet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	require.NoError(t, CreateSource(src, SourceOptions{Size: 100 << 10}))
	store := filepath.Join(dir, "store")
	put := Spec{Engine: EngineChunkback, Kind: KindPut, Target: store, Source: src, VolumeID: "v", BackupID: NewID(), ObjectSize: 256 << 10, Workers: 3, Objects: 5}
	out, err := Run(ctx, put)
	require.NoError(t, err)
	require.Equal(t, int64(5*256<<10), out.Bytes)
	require.NotNil(t, out.Latency)
	require.LessOrEqual(t, out.Latency.P50, out.Latency.P99)
	orig, err := os.ReadFile(src)
	require.NoError(t, err)
	stored, err := os.ReadFile(filepath.Join(store, rawName(put.BackupID, 3)))
	require.NoError(t, err)
	for i, c := range stored {
		at := (3*256<<10 + i) % len(orig)
		require.Equal(t, orig[at], c, "byte %d of object 3", i)
	}
	get := put
	get.Kind, get.Source = KindGet, ""
	out, err = Run(ctx, get)
	require.NoError(t, err)
	require.Equal(t, 5, out.Objects)
	get.Objects = 6 // one that is not there
	_, err = Run(ctx, get)
	require.Error(t, err)
	require.NoError(t, deleteRaw(ctx, store, put.BackupID))
	left, err := filepath.Glob(filepath.Join(store, RawPrefix, put.BackupID, "*"))
	require.NoError(t, err)
	require.Empty(t, left)

	p := percentiles([]time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10})
	require.Equal(t, Latency{P50: 5e-6, P90: 9e-6, P99: 10e-6}, *p)
}

// sampleReport is a hand-made report of three results.
func sampleReport() *MatrixReport {
	res := func(c Cell, samples ...float64) Result {
		r := Result{Key: c.Key(), Engine: c.Engine, Target: c.Target, Op: c.Op, Codec: c.Codec, ObjectSize: c.ObjectSize,
			BlockSize: c.BlockSize, Workers: c.Workers, Bytes: 64 << 20, Unit: "MB/s", HigherIsBetter: true, Samples: samples}
		for _, s := range samples {
			r.Seconds = append(r.Seconds, float64(r.Bytes)/1e6/s)
			r.PeakRSS = append(r.PeakRSS, 100<<20)
			if c.Engine == EngineChunkback {
				r.OpRSS = append(r.OpRSS, 60<<20)
			}
		}
		return r
	}
	put := res(Cell{Engine: EngineChunkback, Target: "file", Op: OpPut, Codec: "-", ObjectSize: 1 << 20, Workers: 2}, 900, 1000, 1100)
	put.Latency = &Latency{P50: 1.5, P90: 2.5, P99: 3.5}
	return &MatrixReport{
		Version: MatrixVersion, Started: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC),
		Machine:  Machine{CPU: "Test CPU", Cores: 2, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"},
		Settings: MatrixSettings{Size: 64 << 20, Mix: Mix{Compressible: 0.5}, Seed: 1, Repeat: 3},
		Results: []Result{
			put,
			res(Cell{Engine: EngineChunkback, Target: "file", Op: OpBackupFull, Codec: "zlib", ObjectSize: 1 << 20, BlockSize: 32768, Workers: 2}, 200, 210, 190),
			res(Cell{Engine: EngineRestic, Target: "file", Op: OpBackupFull, Codec: "zlib"}, 50, 55, 45),
		},
	}
}

func TestMatrixJSONAndCSV(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	require.NoError(t, WriteMatrixJSON(&b, rep))
	require.Contains(t, b.String(), `"key": "engine=chunkback target=file op=put codec=- object_size=1048576 block_size=0 workers=2"`)
	require.Contains(t, b.String(), `"started": "2026-11-22T05:00:00Z"`)
	require.Contains(t, b.String(), `"latency_ms": {`)
	back, err := ReadMatrixJSON(&b)
	require.NoError(t, err)
	want := *rep
	want.Settings = MatrixSettings{} // not in the JSON
	require.Equal(t, &want, back)
	_, err = ReadMatrixJSON(strings.NewReader(`{"version": 2}`))
	require.ErrorContains(t, err, "version")

	b.Reset()
	require.NoError(t, WriteMatrixCSV(&b, rep))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+len(rep.Results))
	require.Equal(t, MatrixCSVHeader(), rows[0])
	col := func(name string) int { return slices.Index(rows[0], name) }
	require.Equal(t, "1000.0", rows[1][col("median_mb_per_s")])
	require.Equal(t, "900.0", rows[1][col("min_mb_per_s")])
	require.Equal(t, "2.500", rows[1][col("latency_p90_ms")])
	require.Equal(t, "100.000", rows[1][col("peak_rss_per_object_size")])
	require.Equal(t, "", rows[3][col("peak_rss_per_object_size")], "restic has no object size")
	require.Equal(t, strconv.Itoa(60<<20), rows[1][col("op_rss_bytes")])
	require.Equal(t, "0", rows[3][col("op_rss_bytes")], "restic runs in a process of its own")
	require.Equal(t, "", rows[2][col("latency_p50_ms")])

	b.Reset()
	require.NoError(t, WriteMatrixText(&b, rep))
	require.Contains(t, b.String(), "Test CPU")
	require.Regexp(t, `chunkback\s+file\s+backup-full\s+zlib\s+1MiB\s+32KiB\s+2\s+200.0\s+190.0-210.0 \(75%\)\s+100.0\s+60.0\s+60.00`, b.String())
}

// svgBar is a bar of the chart.
type svgBar struct {
	Key    string  `xml:"data-key,attr"`
	Class  string  `xml:"class,attr"`
	Y      float64 `xml:"y,attr"`
	Height float64 `xml:"height,attr"`
	Fill   string  `xml:"fill,attr"`
}

// TestMatrixSVG: the chart is well-formed XML with one bar per result, as
// tall as its median, and a legend entry per series.
func TestMatrixSVG(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	require.NoError(t, WriteMatrixSVG(&b, rep))
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var bars []svgBar
	legends, texts := 0, []string{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "well-formed XML")
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "rect":
			var r svgBar
			require.NoError(t, dec.DecodeElement(&r, &se))
			switch r.Class {
			case "bar":
				bars = append(bars, r)
			case "legend":
				legends++
			}
		case "text":
			var s string
			require.NoError(t, dec.DecodeElement(&s, &se))
			texts = append(texts, s)
		}
	}
	require.Len(t, bars, len(rep.Results))
	for i, bar := range bars {
		require.Equal(t, rep.Results[i].Key, bar.Key)
		require.Greater(t, bar.Height, 0.0)
	}
	// Put has a panel of its own above; in the other, heights are
	// proportional to the medians 200 and 50, on one baseline.
	require.InDelta(t, 4.0, bars[1].Height/bars[2].Height, 0.01)
	require.InDelta(t, bars[1].Y+bars[1].Height, bars[2].Y+bars[2].Height, 0.01)
	require.Less(t, bars[0].Y+bars[0].Height, bars[1].Y, "the put panel is above")
	require.Equal(t, 2, legends, "two series: chunkback and restic (nothing else varies)")
	require.Equal(t, bars[0].Fill, bars[1].Fill)
	require.NotEqual(t, bars[1].Fill, bars[2].Fill)
	require.Contains(t, texts, "chunkback")
	require.Contains(t, texts, "restic")
	require.Contains(t, texts, OpBackupFull)
	require.Contains(t, texts, "the target: put and get of objects")
	require.Error(t, WriteMatrixSVG(io.Discard, &MatrixReport{}))
	b.Reset()
	require.NoError(t, WriteMatrixSVG(&b, &MatrixReport{Results: []Result{{Key: "k", Op: OpVerify}}}), "a result without runs")
	require.NotContains(t, b.String(), "NaN")
}

func TestUpdateReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	head, tail := "# title\n\nthe markers are `"+ReadmeBegin+"` and `"+ReadmeEnd+"`\n\n", "\n\n## after\n\nmore\n"
	require.NoError(t, os.WriteFile(path, []byte(head+ReadmeBegin+"\nold figures\n"+ReadmeEnd+tail), 0o644))
	sec := MatrixReadmeSection(sampleReport(), "go run ./bench/cmd/chunkbench matrix --size 64MiB", "matrix.svg")
	require.Contains(t, sec, "![median MB/s per operation, whiskers min-max](matrix.svg)")
	require.Contains(t, sec, "machine:  Test CPU, 2 cores")
	require.NoError(t, UpdateReadme(path, sec))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, head+ReadmeBegin+"\n"+sec+ReadmeEnd+tail, string(got))
	require.NoError(t, UpdateReadme(path, sec))
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, got, again, "the same report, the same file")

	bare := filepath.Join(t.TempDir(), "bare.md")
	require.NoError(t, os.WriteFile(bare, []byte("# bare\n"), 0o644))
	require.NoError(t, UpdateReadme(bare, "figures\n"))
	got, err = os.ReadFile(bare)
	require.NoError(t, err)
	require.Equal(t, "# bare\n\n## Matrix results\n\n"+ReadmeBegin+"\nfigures\n"+ReadmeEnd+"\n", string(got))

	require.NoError(t, os.WriteFile(bare, []byte(ReadmeEnd+"\n"+ReadmeBegin), 0o644))
	require.Error(t, UpdateReadme(bare, "x"))
}

// TestMatrixEndToEnd runs a tiny matrix on a posix target through the
// command's path: each operation in a child process (this test binary), with
// restic beside it when installed.
func TestMatrixEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	store := filepath.Join(t.TempDir(), "store")
	var log bytes.Buffer
	c := MatrixConfig{
		Targets: []string{store}, Codecs: []string{"zlib"}, ObjectSizes: []int64{256 << 10}, BlockSizes: []int{32768},
		Workers: []int{2}, Size: 2 << 20, Repeat: 2, Mix: &Mix{Compressible: 0.3, Zeros: 0.2}, Seed: 9,
		Dir: t.TempDir(), Exe: exe, Log: &log, Restic: ResticAvailable() == nil,
	}
	rep, err := RunMatrix(context.Background(), c)
	require.NoError(t, err, log.String())
	want := len(MatrixOps())
	if c.Restic {
		want += 4
	} else {
		t.Log("restic is not installed: not run")
	}
	require.Len(t, rep.Results, want)
	for _, r := range rep.Results {
		require.Len(t, r.Samples, 2, r.Key)
		require.Len(t, r.PeakRSS, 2, r.Key)
		for i := range r.Samples {
			require.Greater(t, r.Samples[i], 0.0, r.Key)
			require.Greater(t, r.PeakRSS[i], int64(1<<20), "%s: peak RSS measured in a child", r.Key)
		}
		if r.Engine == EngineChunkback {
			require.Len(t, r.OpRSS, 2, r.Key)
			for i := range r.OpRSS {
				require.Positive(t, r.OpRSS[i], r.Key)
				require.Less(t, r.OpRSS[i], r.PeakRSS[i], "%s: the program's own RSS is not the operation's", r.Key)
			}
		}
		require.Equal(t, isRaw(r.Op), r.Latency != nil, r.Key)
		switch {
		case isRaw(r.Op):
			require.Equal(t, int64(8*256<<10), r.Bytes, r.Key)
		default:
			require.Equal(t, int64(2<<20), r.Bytes, r.Key)
		}
	}
	require.Equal(t, "engine=chunkback target=file op=put codec=- object_size=262144 block_size=0 workers=2", rep.Results[0].Key)
	require.Equal(t, 2, strings.Count(log.String(), "op=verify"), "a line per run")
	// Nothing is left on the target: puts and backups are deleted.
	var left []string
	require.NoError(t, filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}))
	require.Empty(t, left)
}
