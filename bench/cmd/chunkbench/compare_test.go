package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chunkback/chunkback/bench"
)

const (
	keyFull    = "engine=chunkback target=file op=backup-full codec=zlib object_size=52428800 block_size=32768 workers=2"
	keyRestore = "engine=chunkback target=file op=restore codec=zlib object_size=52428800 block_size=32768 workers=2"
	keyRestic  = "engine=restic target=file op=backup-full codec=zlib object_size=0 block_size=0 workers=0"
	keyVerify  = "engine=chunkback target=file op=verify codec=zlib object_size=52428800 block_size=32768 workers=2"
)

// result is a throughput result with these samples and peak RSS figures (MiB).
func result(key string, samples []float64, rssMiB ...int64) bench.Result {
	r := bench.Result{Key: key, Engine: "chunkback", Target: "file", Op: "backup-full", Codec: "zlib",
		Unit: "MB/s", HigherIsBetter: true, Samples: samples, Bytes: 1 << 30}
	for _, m := range rssMiB {
		r.PeakRSS = append(r.PeakRSS, m<<20)
	}
	for _, s := range samples {
		r.Seconds = append(r.Seconds, 1073.741824/s)
	}
	return r
}

// writeReport writes a report with these results, as chunkbench matrix
// --json does, and returns its path.
func writeReport(t *testing.T, name string, results ...bench.Result) string {
	t.Helper()
	rep := &bench.MatrixReport{
		Version: bench.MatrixVersion, Machine: bench.Machine{CPU: "AMD EPYC", Cores: 2, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"},
		Started: time.Date(2026, 11, 22, 4, 26, 0, 0, time.UTC), Results: results,
	}
	var b bytes.Buffer
	if err := bench.WriteMatrixJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, b.String())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// compare runs chunkbench compare with args and returns its output.
func compare(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runCompare(args, &stdout, &stderr)
	t.Logf("chunkbench compare %s:\n%s%serror: %v", strings.Join(args, " "), stdout.String(), stderr.String(), err)
	return stdout.String(), err
}

// line returns the line of out that starts with key.
func line(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, key) {
			return l
		}
	}
	t.Fatalf("no line for %s in:\n%s", key, out)
	return ""
}

var (
	steady = []float64{200, 202, 198, 201, 199, 200.5} // no ties: the exact test applies
	noise  = []float64{196, 205, 199, 203, 197, 201}   // same distribution: p large
	slower = []float64{150, 152, 149, 151, 148, 150.5} // -25%
	faster = []float64{260, 262, 258, 261, 259, 260.5} // +30%
)

func TestCompareRegression(t *testing.T) {
	old := writeReport(t, "old.json", result(keyFull, steady), result(keyRestore, steady), result(keyVerify, steady))
	new := writeReport(t, "new.json", result(keyFull, slower), result(keyRestore, noise), result(keyVerify, faster))
	out, err := compare(t, old, new)

	var re regressionError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a regressionError", err, err)
	}
	if len(re.Keys) != 1 || re.Keys[0] != keyFull || re.ExitCode() != 1 {
		t.Errorf("regressed %q (exit %d), want only %s, exit 1", re.Keys, re.ExitCode(), keyFull)
	}
	// 6 runs each, fully separated: p = 2/C(12, 6) = 2/924 = 0.002.
	if l := line(t, out, keyFull); !strings.Contains(l, "200.2 MB/s ± 1%") || !strings.Contains(l, "150.2 MB/s ± 1%") ||
		!strings.Contains(l, "-25.0%") || !strings.Contains(l, "(p=0.002 n=6+6)") || !strings.Contains(l, "REGRESSION") {
		t.Errorf("full backup line: %q", l)
	}
	if l := line(t, out, keyRestore); !strings.Contains(l, "  ~  ") || strings.Contains(l, "REGRESSION") {
		t.Errorf("noise line: %q", l)
	}
	if l := line(t, out, keyVerify); !strings.Contains(l, "+30.0%") || !strings.Contains(l, "improvement") {
		t.Errorf("improvement line: %q", l)
	}
	if !strings.Contains(err.Error(), keyFull) || !strings.Contains(err.Error(), "more than 5%") {
		t.Errorf("error message: %v", err)
	}

	// A threshold above the change: no regression.
	if _, err := compare(t, "--threshold", "30%", old, new); err != nil {
		t.Errorf("--threshold 30%%: %v", err)
	}
	// An alpha below the smallest p-value 6+6 runs can give: nothing is
	// significant.
	if out, err := compare(t, "--alpha", "0.001", old, new); err != nil || !strings.Contains(line(t, out, keyFull), "  ~  ") {
		t.Errorf("--alpha 0.001: %v", err)
	}
}

func TestCompareNoise(t *testing.T) {
	old := writeReport(t, "old.json", result(keyFull, steady), result(keyRestore, noise))
	new := writeReport(t, "new.json", result(keyFull, noise), result(keyRestore, steady))
	out, err := compare(t, old, new)
	if err != nil {
		t.Fatalf("noise only: %v", err)
	}
	for _, k := range []string{keyFull, keyRestore} {
		if l := line(t, out, k); !strings.Contains(l, "  ~  ") {
			t.Errorf("noise marked significant: %q", l)
		}
	}
}

func TestCompareMissingKeys(t *testing.T) {
	old := writeReport(t, "old.json", result(keyFull, steady), result(keyRestic, steady))
	new := writeReport(t, "new.json", result(keyFull, steady), result(keyVerify, steady))
	out, err := compare(t, old, new)
	if err != nil {
		t.Fatalf("%v", err)
	}
	wantOld := "only in " + old + ":\n  " + keyRestic + "\n"
	wantNew := "only in " + new + ":\n  " + keyVerify + "\n"
	if !strings.Contains(out, wantOld) || !strings.Contains(out, wantNew) {
		t.Errorf("output lacks %q or %q", wantOld, wantNew)
	}
	line(t, out, keyFull)

	// Nothing in common is an error, not a pass.
	other := writeReport(t, "other.json", result(keyRestore, steady))
	_, err = compare(t, old, other)
	var re regressionError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "no results in common") {
		t.Errorf("no common results: error %v", err)
	}
}

func TestCompareMemory(t *testing.T) {
	old := writeReport(t, "old.json", result(keyFull, steady, 200, 201, 199, 200, 202, 198), result(keyRestore, steady))
	new := writeReport(t, "new.json", result(keyFull, steady, 240, 241, 239, 240, 242, 238), result(keyRestore, steady))
	// Throughput did not change.
	if _, err := compare(t, old, new); err != nil {
		t.Errorf("throughput: %v", err)
	}
	// Memory rose 20%: a regression (lower is better); the restore has
	// no peak RSS measured and is listed as not compared.
	out, err := compare(t, "--metric", "memory", old, new)
	var re regressionError
	if !errors.As(err, &re) || len(re.Keys) != 1 || re.Keys[0] != keyFull || re.Metric != "memory" {
		t.Fatalf("memory: error %v", err)
	}
	if l := line(t, out, keyFull); !strings.Contains(l, "200 MiB") || !strings.Contains(l, "240 MiB") || !strings.Contains(l, "+20.0%") {
		t.Errorf("memory line: %q", l)
	}
	if !strings.Contains(out, "not compared (no memory measured in one of the files): "+keyRestore) {
		t.Errorf("restore without peak RSS not listed")
	}
}

func TestCompareFewRuns(t *testing.T) {
	// Three runs each cannot give p < 0.05 (the best is 2/C(6, 3) = 0.1):
	// no regression, and a note says to run more.
	old := writeReport(t, "old.json", result(keyFull, steady[:3]))
	new := writeReport(t, "new.json", result(keyFull, slower[:3]))
	out, err := compare(t, old, new)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if l := line(t, out, keyFull); !strings.Contains(l, "(p=0.100 n=3+3) ²") || !strings.Contains(l, "¹") {
		t.Errorf("line: %q", l)
	}
	if !strings.Contains(out, "² too few runs") || !strings.Contains(out, "¹ fewer than 6 runs") {
		t.Errorf("footnotes missing")
	}
	// One run each: an infinite interval.
	old = writeReport(t, "old1.json", result(keyFull, steady[:1]))
	new = writeReport(t, "new1.json", result(keyFull, slower[:1]))
	if out, err := compare(t, old, new); err != nil || !strings.Contains(line(t, out, keyFull), "200 MB/s ± ∞ ¹") {
		t.Errorf("one run: %v", err)
	}
}

func TestCompareBadFiles(t *testing.T) {
	good := writeReport(t, "good.json", result(keyFull, steady))
	const head = `{"version": 1, "machine": {}, "started": "2026-11-22T04:26:00Z", "results": [`
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"samples-string", head + `{"key": "k", "unit": "MB/s", "samples": "fast"}]}`, []string{"results.samples", "string"}},
		{"samples-missing", head + `{"key": "k", "unit": "MB/s"}]}`, []string{`results[0] (key "k")`, `field "samples" is missing`}},
		{"samples-negative", head + `{"key": "k", "unit": "MB/s", "samples": [1, -2]}]}`, []string{`field "samples" [1] = -2`}},
		{"key-missing", head + `{"unit": "MB/s", "samples": [1]}]}`, []string{`results[0]`, `field "key" is missing`}},
		{"key-twice", head + `{"key": "k", "unit": "MB/s", "samples": [1]}, {"key": "k", "unit": "MB/s", "samples": [1]}]}`, []string{`results[1]`, `field "key" repeats that of results[0]`}},
		{"unit-missing", head + `{"key": "k", "samples": [1]}]}`, []string{`field "unit" is missing`}},
		{"peak-rss-negative", head + `{"key": "k", "unit": "MB/s", "samples": [1], "peak_rss": [-1]}]}`, []string{`field "peak_rss" [0] = -1`}},
		{"version", `{"version": 2, "results": []}`, []string{"version 2"}},
		{"not-json", `throughput: fast`, []string{"invalid character"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := writeFile(t, "bad.json", tc.content)
			_, err := compare(t, good, bad)
			var re regressionError
			if err == nil || errors.As(err, &re) {
				t.Fatalf("error %v, want a bad-file error", err)
			}
			for _, w := range append(tc.want, bad) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := compare(t, good, filepath.Join(t.TempDir(), "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("absent file: %v", err)
	}
}

func TestCompareFlags(t *testing.T) {
	good := writeReport(t, "good.json", result(keyFull, steady))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{good}, "want two report files"},
		{[]string{"--alpha", "1.5", good, good}, "--alpha"},
		{[]string{"--threshold", "5", good, good}, "--threshold"},
		{[]string{"--threshold", "fast", good, good}, "--threshold"},
		{[]string{"--metric", "latency", good, good}, "--metric"},
	} {
		if _, err := compare(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one with %q", tc.args, err, tc.want)
		}
	}
	for in, want := range map[string]float64{"5%": 0.05, "0.05": 0.05, "12.5%": 0.125, "0": 0} {
		if got, err := parseThreshold(in); err != nil || got != want {
			t.Errorf("parseThreshold(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
