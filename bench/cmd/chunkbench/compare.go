package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/bench"
	"github.com/chunkback/chunkback/bench/stats"
)

// Metrics compare can judge.
const (
	metricThroughput = "throughput" // the samples, in the result's unit
	metricMemory     = "memory"     // peak RSS, in MiB, lower is better
)

// regressionError is what runCompare returns when a matched result regressed
// significantly beyond the threshold: main exits with status 1 on it (2 on
// any other error), so that a CI pipeline can gate on it.
type regressionError struct {
	// Keys are the results that regressed.
	Keys []string
	// Metric, Threshold and Alpha are the settings of the comparison.
	Metric           string
	Threshold, Alpha float64
}

func (e regressionError) Error() string {
	return fmt.Sprintf("%d result(s) regressed in %s by more than %s (p < %g): %s",
		len(e.Keys), e.Metric, formatPercent(e.Threshold), e.Alpha, strings.Join(e.Keys, "; "))
}

// ExitCode is the status main exits with: 1.
func (regressionError) ExitCode() int { return 1 }

// runCompare runs "chunkbench compare [--alpha 0.05] [--threshold 5%]
// [--metric throughput|memory] OLD.json NEW.json": it matches the results of
// two matrix reports by key, compares each pair's samples (median, 95%
// confidence interval, two-sided Mann-Whitney U test), prints a table to
// stdout and returns a regressionError when any matched result is
// significantly worse than in OLD by more than the threshold.
func runCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chunkbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: chunkbench compare [--alpha 0.05] [--threshold 5%] [--metric throughput|memory] OLD.json NEW.json")
		fs.PrintDefaults()
	}
	alpha := fs.Float64("alpha", stats.DefaultAlpha, "significance level: a difference counts when its p-value is below it")
	thresholdFlag := fs.String("threshold", "5%", "smallest change of the median that is a regression (5% or 0.05)")
	metric := fs.String("metric", metricThroughput, "what to compare: throughput (the samples) or memory (peak RSS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("compare: want two report files, OLD.json and NEW.json; got %d argument(s)", fs.NArg())
	}
	if !(*alpha > 0 && *alpha < 1) {
		return fmt.Errorf("compare: --alpha %v: want a level between 0 and 1, such as 0.05", *alpha)
	}
	threshold, err := parseThreshold(*thresholdFlag)
	if err != nil {
		return err
	}
	if *metric != metricThroughput && *metric != metricMemory {
		return fmt.Errorf("compare: --metric %q: want %s or %s", *metric, metricThroughput, metricMemory)
	}
	oldPath, newPath := fs.Arg(0), fs.Arg(1)
	oldRep, err := readReport(oldPath)
	if err != nil {
		return err
	}
	newRep, err := readReport(newPath)
	if err != nil {
		return err
	}
	return compareReports(stdout, oldPath, newPath, oldRep, newRep, *metric, threshold, *alpha)
}

// parseThreshold parses "5%" (a percentage) or "0.05" (a fraction).
func parseThreshold(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || !(v >= 0 && v < 1) || !pct && v >= 1 {
		return 0, fmt.Errorf("compare: --threshold %q: want a percentage such as 5%% or a fraction such as 0.05 (below 100%%)", s)
	}
	return v, nil
}

// readReport reads and checks a matrix report: every result needs a unique
// key, a unit and samples that are finite numbers >= 0; errors name the
// file, the result and the field.
func readReport(path string) (*bench.MatrixReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	defer f.Close()
	rep, err := bench.ReadMatrixJSON(f)
	if err != nil {
		return nil, fmt.Errorf("compare: %s: %w", path, err)
	}
	seen := map[string]int{}
	for i, r := range rep.Results {
		bad := func(field, format string, a ...any) error {
			return fmt.Errorf("compare: %s: results[%d] (key %q): field %q %s", path, i, r.Key, field, fmt.Sprintf(format, a...))
		}
		if r.Key == "" {
			return nil, bad("key", "is missing")
		}
		if j, dup := seen[r.Key]; dup {
			return nil, bad("key", "repeats that of results[%d]", j)
		}
		seen[r.Key] = i
		if r.Unit == "" {
			return nil, bad("unit", "is missing")
		}
		if len(r.Samples) == 0 {
			return nil, bad("samples", "is missing or empty: want one number per run")
		}
		for j, v := range r.Samples {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, bad("samples", "[%d] = %v: want a number >= 0", j, v)
			}
		}
		for j, v := range r.PeakRSS {
			if v < 0 {
				return nil, bad("peak_rss", "[%d] = %d: want bytes >= 0 (0: not measured)", j, v)
			}
		}
	}
	return rep, nil
}

// values returns the measurements of r for the metric, its unit and
// whether higher is better; nil when the metric was not measured.
func values(r bench.Result, metric string) ([]float64, string, bool) {
	if metric == metricThroughput {
		return r.Samples, r.Unit, r.HigherIsBetter
	}
	var xs []float64
	for _, v := range r.PeakRSS {
		if v > 0 {
			xs = append(xs, float64(v)/(1<<20))
		}
	}
	return xs, "MiB", false
}

// compareReports writes the comparison table and returns a
// regressionError when a result regressed.
func compareReports(w io.Writer, oldPath, newPath string, oldRep, newRep *bench.MatrixReport, metric string, threshold, alpha float64) error {
	old := map[string]bench.Result{}
	for _, r := range oldRep.Results {
		old[r.Key] = r
	}
	inNew := map[string]bool{}
	var b strings.Builder
	fmt.Fprintf(&b, "old: %s (%s)\nnew: %s (%s)\n", oldPath, describe(oldRep), newPath, describe(newRep))
	if om, nm := oldRep.Machine, newRep.Machine; om.CPU != nm.CPU || om.Cores != nm.Cores || om.Arch != nm.Arch {
		fmt.Fprintf(&b, "warning: the reports come from different machines (%s, %d cores vs %s, %d cores)\n", om.CPU, om.Cores, nm.CPU, nm.Cores)
	}
	fmt.Fprintf(&b, "metric: %s; alpha %g; threshold %s\n\n", metric, alpha, formatPercent(threshold))

	rows := [][]string{{"name", "old", "new", "delta", "p-value, runs", ""}}
	var regressed, unmeasured []string
	var fewRuns, smallN bool
	for _, nr := range newRep.Results {
		inNew[nr.Key] = true
		or, ok := old[nr.Key]
		if !ok {
			continue
		}
		ov, unit, higher := values(or, metric)
		nv, _, _ := values(nr, metric)
		if len(ov) == 0 || len(nv) == 0 {
			unmeasured = append(unmeasured, nr.Key)
			continue
		}
		if metric == metricThroughput && or.Unit != nr.Unit {
			return fmt.Errorf("compare: %s: unit %q in %s, %q in %s", nr.Key, or.Unit, oldPath, nr.Unit, newPath)
		}
		c := stats.Compare(ov, nv, higher)
		c.Alpha = alpha
		delta := "~"
		if c.Significant() {
			delta = formatDelta(c.Delta)
		}
		verdict := ""
		switch {
		case c.Regression(threshold):
			verdict = "REGRESSION"
			regressed = append(regressed, nr.Key)
		case c.Improvement(threshold):
			verdict = "improvement"
		}
		stat := fmt.Sprintf("(p=%.3f n=%d+%d)", c.P, c.Old.N, c.New.N)
		if minP(c.Old.N, c.New.N) >= alpha {
			stat += " ²"
			fewRuns = true
		}
		smallN = smallN || c.Old.Confidence < 0.95 || c.New.Confidence < 0.95
		rows = append(rows, []string{nr.Key, formatSummary(c.Old, unit), formatSummary(c.New, unit), delta, stat, verdict})
	}
	if len(rows) == 1 {
		b.WriteString("no results in common\n")
	} else {
		writeTable(&b, rows)
	}
	if smallN {
		b.WriteString("¹ fewer than 6 runs: the interval is the range of the runs and covers the median with less than 95% confidence\n")
	}
	if fewRuns {
		n := 1
		for minP(n, n) >= alpha {
			n++
		}
		fmt.Fprintf(&b, "² too few runs for any difference to reach p < %g: it takes %d runs in each file (--repeat %d)\n", alpha, n, n)
	}
	for _, k := range unmeasured {
		fmt.Fprintf(&b, "not compared (no %s measured in one of the files): %s\n", metric, k)
	}
	var onlyOld, onlyNew []string
	for _, r := range oldRep.Results {
		if !inNew[r.Key] {
			onlyOld = append(onlyOld, r.Key)
		}
	}
	for _, r := range newRep.Results {
		if _, ok := old[r.Key]; !ok {
			onlyNew = append(onlyNew, r.Key)
		}
	}
	for _, l := range []struct {
		path string
		keys []string
	}{{oldPath, onlyOld}, {newPath, onlyNew}} {
		if len(l.keys) > 0 {
			fmt.Fprintf(&b, "\nonly in %s:\n", l.path)
			for _, k := range l.keys {
				fmt.Fprintf(&b, "  %s\n", k)
			}
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(rows) == 1 {
		return fmt.Errorf("compare: %s and %s have no results in common", oldPath, newPath)
	}
	if len(regressed) > 0 {
		return regressionError{Keys: regressed, Metric: metric, Threshold: threshold, Alpha: alpha}
	}
	return nil
}

// describe names a report's run: when it started, on what.
func describe(rep *bench.MatrixReport) string {
	return fmt.Sprintf("%s, %s, %d cores, %s", rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Machine.CPU, rep.Machine.Cores, rep.Machine.GoVersion)
}

// minP is the smallest two-sided p-value a Mann-Whitney test of m and n runs
// can give: 2 / C(m+n, m).
func minP(m, n int) float64 {
	c := 1.0
	for i := 1; i <= m; i++ {
		c = c * float64(n+i) / float64(i)
	}
	return min(1, 2/c)
}

// formatSummary writes a median and the half-width of its confidence
// interval relative to it, as benchstat does: "217.9 MB/s ± 3%".
func formatSummary(s stats.Summary, unit string) string {
	mark := ""
	if s.Confidence < 0.95 {
		mark = " ¹"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.4g %s ± ∞%s", s.Median, unit, mark)
	}
	half := max(s.High-s.Median, s.Median-s.Low)
	if s.Median == 0 {
		return fmt.Sprintf("%.4g %s ± %.3g%s", s.Median, unit, half, mark)
	}
	return fmt.Sprintf("%.4g %s ± %.0f%%%s", s.Median, unit, 100*half/math.Abs(s.Median), mark)
}

// formatDelta writes a relative change: "+12.3%", "-4.0%".
func formatDelta(d float64) string {
	if math.IsInf(d, 0) {
		return fmt.Sprintf("%+v", d)
	}
	return fmt.Sprintf("%+.1f%%", 100*d)
}

// formatPercent writes a fraction as a percentage: 0.05 -> "5%".
func formatPercent(f float64) string {
	return strconv.FormatFloat(100*f, 'f', -1, 64) + "%"
}

// writeTable writes rows as columns separated by two spaces, the first
// column and the last two left-aligned, the others right-aligned, with a
// rule under the headings.
func writeTable(b *strings.Builder, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for n, r := range rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i > 0 {
				line.WriteString("  ")
			}
			if i == 0 || i >= len(r)-2 {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		if n == 0 {
			var rule []string
			for i, w := range widths {
				if r[i] == "" { // no heading, no rule
					w = 0
				}
				rule = append(rule, strings.Repeat("-", w))
			}
			b.WriteString(strings.TrimRight(strings.Join(rule, "  "), " ") + "\n")
		}
	}
}
