package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/chunkback/chunkback/backup"
)

// output writes results (text or JSON on stdout) and progress (stderr).
type output struct {
	stdout, stderr io.Writer
	json           bool

	mu       sync.Mutex
	barShown bool
}

// result prints a command's result.
func (o *output) result(doc map[string]any, text string) {
	if o.json {
		o.emit(doc)
		return
	}
	fmt.Fprint(o.stdout, text)
}

func (o *output) emit(doc map[string]any) {
	enc := json.NewEncoder(o.stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc)
}

// progress returns the progress callback for a --progress mode.
func (o *output) progress(mode string) backup.ProgressFunc {
	if mode == "auto" {
		mode = "none"
		if f, ok := o.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return o.bar
	case "json":
		return func(p backup.Progress) {
			line, _ := json.Marshal(map[string]any{
				"op": p.Op, "backup_id": p.BackupID, "bytes_done": p.BytesDone, "bytes_total": p.BytesTotal,
				"bytes_stored": p.BytesStored, "bytes_changed": p.BytesChanged, "objects": p.Objects,
				"elapsed_seconds": p.Elapsed.Seconds(), "rate_bytes_per_second": p.Rate, "percent": p.Percent,
				"eta_seconds": p.ETA.Seconds(), "done": p.Done,
			})
			o.mu.Lock()
			defer o.mu.Unlock()
			fmt.Fprintf(o.stderr, "%s\n", line)
		}
	}
	return nil
}

// bar draws a one-line progress bar.
func (o *output) bar(p backup.Progress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.barShown = true
	const width = 30
	var line string
	if p.BytesTotal > 0 {
		filled := int(p.Percent / 100 * width)
		filled = max(0, min(width, filled))
		eta := "--"
		if p.ETA > 0 {
			eta = p.ETA.Round(time.Second).String()
		}
		line = fmt.Sprintf("%-7s [%s%s] %5.1f%%  %s / %s  %s/s  ETA %s", p.Op, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			p.Percent, bytesText(p.BytesDone), bytesText(p.BytesTotal), bytesText(int64(p.Rate)), eta)
	} else {
		line = fmt.Sprintf("%-7s %s  %s/s  %d objects", p.Op, bytesText(p.BytesDone), bytesText(int64(p.Rate)), p.Objects)
	}
	fmt.Fprintf(o.stderr, "\r\033[K%s", line)
}

// endProgress ends the bar's line.
func (o *output) endProgress() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.barShown {
		fmt.Fprintln(o.stderr)
		o.barShown = false
	}
}

// bytesText formats a byte count with binary units.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
