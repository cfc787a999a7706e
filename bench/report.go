package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteText writes the report as the command prints it: a header with the
// machine and the settings, the table of operations, the table of the
// issue's targets (chunkback against Cinder) and the notes.
func WriteText(w io.Writer, rep *Report) error {
	m := rep.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "chunkbench: %s semi-compressible source (half random, half text, in regions of %s-%s), %s blocks, %s objects\n",
		FormatSize(rep.Size), FormatSize(DefaultMinRegion), FormatSize(DefaultMaxRegion), FormatSize(int64(rep.BlockSize)), FormatSize(rep.ObjectSize))
	fmt.Fprintf(&b, "date:     %s\n", rep.Date.Format("2006-01-02 15:04 MST"))
	if rep.Revision != "" {
		fmt.Fprintf(&b, "build:    %s\n", rep.Revision)
	}
	fmt.Fprintf(&b, "machine:  %s, %d cores, %s RAM, %s/%s, %s\n", m.CPU, m.Cores, FormatSize(m.MemTotal), m.OS, m.Arch, m.GoVersion)
	if m.LoadStart != "" {
		fmt.Fprintf(&b, "load avg: %s at the start, %s at the end (1, 5, 15 min)\n", m.LoadStart, m.LoadEnd)
	}
	fmt.Fprintf(&b, "settings: workers %d, repeat %d, seed %d; sources generated in %.1f s\n\n", rep.Workers, rep.Repeat, rep.Seed, rep.GenerateSeconds)

	t := [][]string{{"operation", "MB/s", "seconds", "peak RSS MiB", "RSS/object", "op MiB", "objects", "stored MiB"}}
	for _, r := range rep.Rows {
		name := r.Op
		if r.Dependency {
			name += " (dep)"
		}
		rss, per := "-", "-"
		if r.PeakRSS > 0 {
			rss, per = fmt.Sprintf("%.1f", mib(r.PeakRSS)), fmt.Sprintf("%.2f", r.PeakRSSObjects)
		}
		op := "-"
		if r.OpRSS > 0 {
			op = fmt.Sprintf("%.1f", mib(r.OpRSS))
		}
		t = append(t, []string{name, fmt.Sprintf("%.1f", r.MBps), fmt.Sprintf("%.2f", r.Seconds), rss, per, op,
			strconv.Itoa(r.Objects), fmt.Sprintf("%.1f", mib(r.BytesStored))})
	}
	writeTable(&b, t)
	b.WriteString("(objects and stored MiB: stored by a backup; read from the store by a restore or verify)\n\n")

	t = [][]string{{"target", "chunkback", "Cinder", "chunkback/Cinder", "result"}}
	for _, c := range rep.Checks {
		ratio := "-"
		if c.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", c.Ratio)
		}
		t = append(t, []string{c.Target, c.Chunkback, c.Cinder, ratio, c.Result})
	}
	writeTable(&b, t)
	b.WriteString("\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable writes rows as aligned columns: the first left-aligned, the
// others right-aligned, with a rule under the header.
func writeTable(b *strings.Builder, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			switch {
			case i == 0:
				fmt.Fprintf(b, "%-*s", width[i], c)
			default:
				fmt.Fprintf(b, "  %*s", width[i], c)
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	line(rule)
	for _, r := range rows[1:] {
		line(r)
	}
}

// WriteCSV writes the table of operations as CSV with a header line, raw
// numbers (bytes, seconds, decimal MB/s).
func WriteCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"op", "engine", "kind", "dependency", "bytes", "seconds", "mb_per_s", "peak_rss_bytes", "peak_rss_per_object_size", "objects", "bytes_stored"})
	for _, r := range rep.Rows {
		_ = cw.Write([]string{r.Op, r.Engine, r.Kind, strconv.FormatBool(r.Dependency), strconv.FormatInt(r.Bytes, 10),
			strconv.FormatFloat(r.Seconds, 'f', 3, 64), strconv.FormatFloat(r.MBps, 'f', 1, 64),
			strconv.FormatInt(r.PeakRSS, 10), strconv.FormatFloat(r.PeakRSSObjects, 'f', 3, 64),
			strconv.Itoa(r.Objects), strconv.FormatInt(r.BytesStored, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the whole report (machine, settings, rows, checks, notes)
// as one indented JSON document.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
