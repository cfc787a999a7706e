package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/bench/stats"
)

// WriteMatrixJSON writes the report as one indented JSON document (the
// format `chunkbench compare` reads).
func WriteMatrixJSON(w io.Writer, rep *MatrixReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// ReadMatrixJSON reads a report WriteMatrixJSON wrote.
func ReadMatrixJSON(r io.Reader) (*MatrixReport, error) {
	var rep MatrixReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("bench: reading a matrix report: %w", err)
	}
	if rep.Version != MatrixVersion {
		return nil, fmt.Errorf("bench: matrix report version %d: want %d", rep.Version, MatrixVersion)
	}
	return &rep, nil
}

// span returns the smallest and the largest of xs (0, 0 when empty).
func span(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

// maxRSSOf returns the largest of a result's peak RSS figures.
func maxRSSOf(r Result) int64 { return maxOf(r.PeakRSS) }

// maxOf returns the largest of xs, 0 when empty.
func maxOf(xs []int64) int64 {
	var m int64
	for _, v := range xs {
		m = max(m, v)
	}
	return m
}

// matrixHeader describes the run: data, machine, settings.
func matrixHeader(rep *MatrixReport) []string {
	m, s := rep.Machine, rep.Settings
	h := []string{
		fmt.Sprintf("chunkbench matrix: %s source (%s), seed %d, %d run(s) per cell", FormatSize(s.Size), s.Mix, s.Seed, s.Repeat),
		fmt.Sprintf("date:     %s", rep.Started.Format("2006-01-02 15:04 MST")),
	}
	if s.Revision != "" {
		h = append(h, "build:    "+s.Revision)
	}
	h = append(h, fmt.Sprintf("machine:  %s, %d cores, %s RAM, %s/%s, %s", m.CPU, m.Cores, FormatSize(m.MemTotal), m.OS, m.Arch, m.GoVersion))
	if m.LoadStart != "" {
		h = append(h, fmt.Sprintf("load avg: %s at the start, %s at the end (1, 5, 15 min)", m.LoadStart, m.LoadEnd))
	}
	return h
}

// matrixTable returns the rows of the terminal table, header first.
func matrixTable(rep *MatrixReport) [][]string {
	t := [][]string{{"engine", "target", "op", "codec", "object", "block", "workers", "MB/s", "95% CI", "peak RSS MiB", "op MiB", "op/object", "p50 ms", "p90 ms", "p99 ms"}}
	dash := func(v int64, f func(int64) string) string {
		if v == 0 {
			return "-"
		}
		return f(v)
	}
	short := func(n int64) string { return strings.ReplaceAll(FormatSize(n), " ", "") }
	for _, r := range rep.Results {
		s := stats.Summarize(r.Samples)
		ci := fmt.Sprintf("%.1f-%.1f", s.Low, s.High)
		if s.Confidence < 0.95 {
			ci += fmt.Sprintf(" (%.0f%%)", 100*s.Confidence)
		}
		rss, op, per := "-", "-", "-"
		if m := maxRSSOf(r); m > 0 {
			rss = fmt.Sprintf("%.1f", mib(m))
		}
		if m := maxOf(r.OpRSS); m > 0 {
			op = fmt.Sprintf("%.1f", mib(m))
			if r.ObjectSize > 0 {
				per = fmt.Sprintf("%.2f", float64(m)/float64(r.ObjectSize))
			}
		}
		p50, p90, p99 := "-", "-", "-"
		if l := r.Latency; l != nil {
			p50, p90, p99 = fmt.Sprintf("%.1f", l.P50), fmt.Sprintf("%.1f", l.P90), fmt.Sprintf("%.1f", l.P99)
		}
		w := "-"
		if r.Workers > 0 {
			w = strconv.Itoa(r.Workers)
		}
		t = append(t, []string{r.Engine, r.Target, r.Op, r.Codec, dash(r.ObjectSize, short), dash(int64(r.BlockSize), short), w,
			fmt.Sprintf("%.1f", s.Median), ci, rss, op, per, p50, p90, p99})
	}
	return t
}

// matrixNotes explain the table's columns.
var matrixNotes = []string{
	"MB/s: median over the runs of bytes / wall seconds, decimal MB (10^6 bytes): source bytes for backups, restore and verify, object bytes for put and get.",
	"95% CI: confidence interval of the median from order statistics (bench/stats); with 5 runs or fewer it is min-max, and its coverage is given in brackets.",
	"peak RSS MiB: the largest over the runs of the peak RSS of the child process that ran the operation alone (wait4's rusage). op MiB: the largest memory the operation added to it (peak RSS less the RSS of the loaded program just before; chunkbench links every SDK, whose code and initialisation take about 37 MiB, 23 of them Google's storage SDK); op/object: that / object size, the figure bounded by workers + 2.",
	"p50/p90/p99 ms: put and get only, per-object latency percentiles of each run, median over the runs.",
	"Incrementals (backup-incr-1, -10) back up a copy with 1% / 10% of the blocks changed, scattered, on the cell's full backup; restore and verify read that full backup.",
}

// profiled returns the results that have a profile.
func profiled(rep *MatrixReport) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.Profile != nil {
			out = append(out, r)
		}
	}
	return out
}

// profileTable returns the rows of the "where the time goes" table, header
// first: a line per profiled result, its CPU seconds and the share of each
// stage in percent (nil with no profiled result).
func profileTable(rep *MatrixReport) [][]string {
	rs := profiled(rep)
	if len(rs) == 0 {
		return nil
	}
	short := func(n int64) string { return strings.ReplaceAll(FormatSize(n), " ", "") }
	t := [][]string{append([]string{"target", "op", "codec", "object", "block", "workers", "CPU s"}, ProfileStages()...)}
	for _, r := range rs {
		row := []string{r.Target, r.Op, r.Codec, short(r.ObjectSize), short(int64(r.BlockSize)), strconv.Itoa(r.Workers), fmt.Sprintf("%.2f", r.ProfileCPUSeconds)}
		for _, st := range ProfileStages() {
			row = append(row, fmt.Sprintf("%.0f%%", 100*r.Profile[st]))
		}
		t = append(t, row)
	}
	return t
}

// profileNote explains the "where the time goes" table.
const profileNote = "Where the time goes: the first run of each cell, CPU-profiled (runtime/pprof, 100 samples per CPU second) from the start of the operation to its end; " +
	"each sample's CPU time goes to the stage of its leaf function: hash (SHA-256), md5, codec (compress/*, klauspost, dsnet, adler32), " +
	"io (system calls, internal/poll, the netpoller, os file reads and writes), memory (memmove, memclr, mallocgc, the garbage collector), other (the rest: chunkback's own code, the scheduler). " +
	"A sample in the race detector or in asynchronous preemption counts for the function it interrupted."

// profileReading is the one-line reading of the "where the time goes"
// table: the range of the share of the hash, md5, codec and I/O together,
// and the largest share of memory and of other, with where each is.
func profileReading(rep *MatrixReport) string {
	rs := profiled(rep)
	if len(rs) == 0 {
		return ""
	}
	where := func(r Result) string {
		return fmt.Sprintf("%s %s %s %dw", r.Op, r.Codec, strings.ReplaceAll(FormatSize(r.ObjectSize), " ", ""), r.Workers)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var mem, other Result
	for _, r := range rs {
		core := r.Profile[StageHash] + r.Profile[StageMD5] + r.Profile[StageCodec] + r.Profile[StageIO]
		lo, hi = min(lo, core), max(hi, core)
		if mem.Profile == nil || r.Profile[StageMemory] > mem.Profile[StageMemory] {
			mem = r
		}
		if other.Profile == nil || r.Profile[StageOther] > other.Profile[StageOther] {
			other = r
		}
	}
	return fmt.Sprintf("Reading: the hash (SHA-256, MD5), the codec and I/O take %.0f-%.0f%% of the CPU of each operation profiled; "+
		"memory stays at or under %.0f%% (largest: %s) and other at or under %.0f%% (largest: %s).",
		100*lo, 100*hi, 100*mem.Profile[StageMemory], where(mem), 100*other.Profile[StageOther], where(other))
}

// WriteMatrixText writes the report as a terminal table: a header with the
// data and the machine, a line per cell, and notes on the columns; with
// profiles, a second table of where the time goes, and its reading.
func WriteMatrixText(w io.Writer, rep *MatrixReport) error {
	var b strings.Builder
	for _, l := range matrixHeader(rep) {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	writeTable(&b, matrixTable(rep))
	b.WriteString("\n")
	for _, n := range matrixNotes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if t := profileTable(rep); t != nil {
		b.WriteString("\nwhere the time goes (share of CPU by stage):\n\n")
		writeTable(&b, t)
		fmt.Fprintf(&b, "\n%s\n- %s\n", profileReading(rep), profileNote)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// matrixCSVHeader is the header line of WriteMatrixCSV.
var matrixCSVHeader = []string{"key", "engine", "target", "op", "codec", "object_size", "block_size", "workers", "bytes", "runs",
	"median_mb_per_s", "ci_low_mb_per_s", "ci_high_mb_per_s", "ci_confidence", "min_mb_per_s", "max_mb_per_s",
	"median_seconds", "peak_rss_bytes", "peak_rss_per_object_size", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "op_rss_bytes"}

// MatrixCSVHeader returns the header line of WriteMatrixCSV.
func MatrixCSVHeader() []string { return slices.Clone(matrixCSVHeader) }

// WriteMatrixCSV writes a line per result with a header line: the summary
// of its runs, in raw numbers (bytes, seconds, decimal MB/s; empty where
// not measured).
func WriteMatrixCSV(w io.Writer, rep *MatrixReport) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(matrixCSVHeader)
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	for _, r := range rep.Results {
		s := stats.Summarize(r.Samples)
		lo, hi := span(r.Samples)
		rss := maxRSSOf(r)
		per := ""
		if r.ObjectSize > 0 && rss > 0 {
			per = f(float64(rss)/float64(r.ObjectSize), 3)
		}
		var p50, p90, p99 string
		if l := r.Latency; l != nil {
			p50, p90, p99 = f(l.P50, 3), f(l.P90, 3), f(l.P99, 3)
		}
		_ = cw.Write([]string{r.Key, r.Engine, r.Target, r.Op, r.Codec, strconv.FormatInt(r.ObjectSize, 10), strconv.Itoa(r.BlockSize),
			strconv.Itoa(r.Workers), strconv.FormatInt(r.Bytes, 10), strconv.Itoa(len(r.Samples)),
			f(s.Median, 1), f(s.Low, 1), f(s.High, 1), f(s.Confidence, 4), f(lo, 1), f(hi, 1),
			f(median(r.Seconds), 3), strconv.FormatInt(rss, 10), per, p50, p90, p99, strconv.FormatInt(maxOf(r.OpRSS), 10)})
	}
	cw.Flush()
	return cw.Error()
}

// seriesLabels names each result's bar in the chart: the engine and every
// setting that varies between the report's results (the operation aside,
// since it names the group; settings that do not apply, such as restic's
// object size, are left out).
func seriesLabels(rs []Result) []string {
	// varies reports whether a setting takes more than one value among the
	// results it applies to.
	varies := func(f func(Result) string) bool {
		seen := map[string]bool{}
		for _, r := range rs {
			if v := f(r); v != "" {
				seen[v] = true
			}
		}
		return len(seen) > 1
	}
	size := func(what string, n int64) string {
		if n == 0 {
			return ""
		}
		return what + " " + strings.ReplaceAll(FormatSize(n), " ", "")
	}
	dims := []func(Result) string{
		func(r Result) string { return r.Target },
		func(r Result) string { return strings.Trim(r.Codec, "-") },
		func(r Result) string { return size("obj", r.ObjectSize) },
		func(r Result) string { return size("blk", int64(r.BlockSize)) },
		func(r Result) string {
			if r.Workers == 0 {
				return ""
			}
			return fmt.Sprintf("%dw", r.Workers)
		},
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		parts := []string{r.Engine}
		for _, d := range dims {
			if v := d(r); v != "" && varies(d) {
				parts = append(parts, v)
			}
		}
		out[i] = strings.Join(parts, " ")
	}
	return out
}

// niceCeil returns a round number >= v for the top of an axis, and the
// step of its ticks.
func niceCeil(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 0.2
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag / 5; step*5 >= v {
			break
		}
	}
	// Guard against rounding: at least v.
	top = math.Ceil(v/step) * step
	return top, step
}

var svgPalette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// WriteMatrixSVG draws the report as an SVG chart: for each operation, a
// group of bars, one per series (engine, target and the settings that vary),
// the height of a bar the median MB/s, its whisker the minimum and maximum
// of the runs, the median written above it. The target's raw put and get,
// much faster than the engines, get a panel and a scale of their own above
// the backups, restores and verifies. Each bar is a <rect class="bar"> with
// a data-key attribute, the result's key.
func WriteMatrixSVG(w io.Writer, rep *MatrixReport) error {
	rs := rep.Results
	if len(rs) == 0 {
		return errors.New("bench: no results to chart")
	}
	labels := seriesLabels(rs)
	var series []string // in order of first appearance
	for _, l := range labels {
		if !slices.Contains(series, l) {
			series = append(series, l)
		}
	}
	type panel struct {
		title string
		ops   []string
	}
	var panels []panel
	for _, p := range []panel{
		{"the target: put and get of objects", []string{OpPut, OpGet}},
		{"backups, restore, verify (MB/s of source)", []string{OpBackupFull, OpBackupIncr1, OpBackupIncr10, OpRestore, OpVerify}},
	} {
		p.ops = slices.DeleteFunc(p.ops, func(op string) bool {
			return !slices.ContainsFunc(rs, func(r Result) bool { return r.Op == op })
		})
		if len(p.ops) > 0 {
			panels = append(panels, p)
		}
	}

	const (
		barW, barGap, groupGap = 22.0, 4.0, 28.0
		left, right, head      = 72.0, 24.0, 52.0
		plotH, panelHead       = 240.0, 40.0
		panelFoot, legendRow   = 36.0, 18.0
	)
	count := func(op string) int {
		n := 0
		for _, r := range rs {
			if r.Op == op {
				n++
			}
		}
		return n
	}
	groupW := func(op string) float64 { return float64(count(op))*(barW+barGap) - barGap }
	plotW := 0.0
	for _, p := range panels {
		pw := groupGap
		for _, op := range p.ops {
			pw += groupW(op) + groupGap
		}
		plotW = max(plotW, pw)
	}
	width := max(640, left+plotW+right)
	legendCols := max(1, int((width-left)/260))
	legendRows := (len(series) + legendCols - 1) / legendCols
	height := head + float64(len(panels))*(panelHead+plotH+panelFoot) + float64(legendRows)*legendRow + 16

	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", width, height)
	st, m := rep.Settings, rep.Machine
	p(`<text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(fmt.Sprintf("chunkbench: median MB/s per operation (whiskers: min-max of %d runs)", st.Repeat)))
	p(`<text x="%.0f" y="40" fill="#555">%s</text>`+"\n", left, esc(fmt.Sprintf("%s source (%s); %s, %d cores, %s; %s",
		FormatSize(st.Size), st.Mix, m.CPU, m.Cores, m.GoVersion, rep.Started.Format("2006-01-02"))))
	top0 := head
	for _, pn := range panels {
		var top float64
		for _, r := range rs {
			if slices.Contains(pn.ops, r.Op) {
				_, hi := span(r.Samples)
				top = max(top, hi)
			}
		}
		top, step := niceCeil(top * 1.1)
		plotTop := top0 + panelHead
		y := func(v float64) float64 { return plotTop + plotH - v/top*plotH }
		p(`<text x="%.0f" y="%.1f" font-weight="bold" fill="#333">%s</text>`+"\n", left, top0+24, esc(pn.title))
		for v := 0.0; v <= top+step/2; v += step {
			p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", left, left+plotW, y(v), y(v))
			p(`<text x="%.1f" y="%.1f" text-anchor="end" fill="#333">%s</text>`+"\n", left-6, y(v)+4, strconv.FormatFloat(v, 'f', -1, 64))
		}
		p(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" fill="#333">MB/s</text>`+"\n", plotTop+plotH/2)
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left+plotW, y(0), y(0))
		x := left + groupGap
		for _, op := range pn.ops {
			gw := groupW(op)
			for i, r := range rs {
				if r.Op != op {
					continue
				}
				med := stats.Summarize(r.Samples).Median
				if math.IsNaN(med) {
					med = 0 // no runs
				}
				lo, hi := span(r.Samples)
				color := svgPalette[slices.Index(series, labels[i])%len(svgPalette)]
				p(`<rect class="bar" data-key="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
					esc(r.Key), x, y(med), barW, y(0)-y(med), color, esc(fmt.Sprintf("%s %s: median %.1f MB/s, min %.1f, max %.1f", labels[i], op, med, lo, hi)))
				cx := x + barW/2
				p(`<path class="whisker" d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#222" fill="none"/>`+"\n",
					cx, y(lo), y(hi), cx-5, y(lo), cx+5, cx-5, y(hi), cx+5)
				p(`<text transform="translate(%.1f %.1f) rotate(-90)" font-size="10" fill="#222">%.0f</text>`+"\n", cx+3.5, y(hi)-4, med)
				x += barW + barGap
			}
			x -= barGap
			p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#111">%s</text>`+"\n", x-gw/2, y(0)+18, esc(op))
			x += groupGap
		}
		top0 = plotTop + plotH + panelFoot
	}
	for i, l := range series {
		lx := left + float64(i%legendCols)*260
		yy := top0 + 12 + float64(i/legendCols)*legendRow
		p(`<rect class="legend" x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", lx, yy-10, svgPalette[i%len(svgPalette)])
		p(`<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+18, yy, esc(l))
	}
	p("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// Markers of the section UpdateReadme rewrites.
const (
	ReadmeBegin = "<!-- chunkbench:begin -->"
	ReadmeEnd   = "<!-- chunkbench:end -->"
)

// MatrixReadmeSection returns the Markdown UpdateReadme puts between the
// markers: the command that ran, the machine, a link to the chart (svg, a
// path relative to the README; empty for none) and the table, in a fixed
// format so that a rerun changes only the figures.
func MatrixReadmeSection(rep *MatrixReport, command, svg string) string {
	var b strings.Builder
	if command != "" {
		fmt.Fprintf(&b, "`%s`\n\n", command)
	}
	if svg != "" {
		fmt.Fprintf(&b, "![median MB/s per operation, whiskers min-max](%s)\n\n", svg)
	}
	b.WriteString("```\n")
	for _, l := range matrixHeader(rep) {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	writeTable(&b, matrixTable(rep))
	b.WriteString("```\n\n")
	for _, n := range matrixNotes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if t := profileTable(rep); t != nil {
		b.WriteString("\n**Where the time goes** (share of CPU by stage, first run of each cell):\n\n")
		writeMarkdownTable(&b, t)
		fmt.Fprintf(&b, "\n%s\n\n- %s\n", profileReading(rep), profileNote)
	}
	return b.String()
}

// writeMarkdownTable writes rows, header first, as a Markdown table, the
// columns after the first three right-aligned.
func writeMarkdownTable(b *strings.Builder, rows [][]string) {
	for i, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			for j := range row {
				if j < 3 {
					b.WriteString("|---")
				} else {
					b.WriteString("|--:")
				}
			}
			b.WriteString("|\n")
		}
	}
}

// UpdateReadme replaces what lies between ReadmeBegin and ReadmeEnd in the
// file path with section (or, without the markers, appends a "## Matrix
// results" section holding them). A marker counts only as a line of its
// own, so the README can quote it in its text.
func UpdateReadme(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	body := ReadmeBegin + "\n" + strings.TrimRight(section, "\n") + "\n" + ReadmeEnd
	s := string(old)
	i, j := markerLine(s, ReadmeBegin), markerLine(s, ReadmeEnd)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + body + s[j+len(ReadmeEnd):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("bench: %s: %s and %s must both be there, in that order", path, ReadmeBegin, ReadmeEnd)
	default:
		s = strings.TrimRight(s, "\n") + "\n\n## Matrix results\n\n" + body + "\n"
	}
	if s == string(old) {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(s), st.Mode().Perm())
}

// markerLine returns the offset of the first line of s that is marker
// alone, or -1.
func markerLine(s, marker string) int {
	for off := 0; off < len(s); {
		line, _, _ := strings.Cut(s[off:], "\n")
		if strings.TrimRight(line, "\r") == marker {
			return off
		}
		off += len(line) + 1
	}
	return -1
}
