package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chunkback/chunkback/internal/targeturl"
	"github.com/chunkback/chunkback/target"
)

// checkFlags are the flags of chunkback check.
type checkFlags struct {
	every time.Duration
	count int
	probe target.ProbeOptions
}

// cmdCheck probes the target (target.Probe): once, or every --every until
// interrupted or --count rounds are done. It fails when the last round did.
func cmdCheck(ctx context.Context, args []string, out *output) error {
	c := common{progress: "none"}
	var f checkFlags
	fs := flag.NewFlagSet("chunkback check", flag.ContinueOnError)
	fs.SetOutput(out.stderr)
	fs.StringVar(&c.target, "target", os.Getenv("CHUNKBACK_TARGET"), "storage target: "+targeturl.Schemes+" (default $CHUNKBACK_TARGET)")
	fs.BoolVar(&c.json, "json", false, "print each round as a JSON document on stdout (one line each when repeating)")
	fs.DurationVar(&f.every, "every", 0, "repeat the check at this interval until interrupted (or --count rounds)")
	fs.IntVar(&f.count, "count", 0, "number of rounds (default: 1, or until interrupted with --every)")
	fs.StringVar(&f.probe.Prefix, "prefix", target.DefaultProbePrefix, "where in the target the probe objects go")
	fs.Int64Var(&f.probe.LargeSize, "large-size", 0, "also write and read back an object of this many bytes (0: none)")
	fs.DurationVar(&f.probe.MaxClockSkew, "max-skew", target.DefaultMaxClockSkew, "flag a clock skew with the store beyond this")
	fs.DurationVar(&f.probe.StepTimeout, "step-timeout", target.DefaultProbeStepTimeout, "time allowed to each step")
	if _, err := parse(fs, args, &c, out, 0); err != nil {
		return err
	}
	switch {
	case f.every < 0:
		return usageError{fmt.Sprintf("--every %v: use a positive interval, or 0 for one round", f.every)}
	case f.count < 0:
		return usageError{fmt.Sprintf("--count %d: use a positive number of rounds", f.count)}
	}
	if err := f.probe.Validate(); err != nil {
		return usageError{err.Error()}
	}
	rounds := f.count
	if rounds == 0 && f.every == 0 {
		rounds = 1
	}
	repeat := rounds != 1

	var t *targeturl.Opened
	defer func() {
		if t != nil {
			_ = t.Close()
		}
	}()
	var last *target.ProbeReport
	for round := 1; rounds == 0 || round <= rounds; round++ {
		if round > 1 && f.every > 0 {
			select {
			case <-time.After(f.every):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		last = checkRound(ctx, &t, c.target, f.probe)
		printRound(out, c.target, round, repeat, last)
	}
	switch {
	case ctx.Err() != nil && (last == nil || !last.OK):
		return fmt.Errorf("%w: %w", errReported, context.Canceled)
	case last != nil && !last.OK:
		return fmt.Errorf("%w: the check failed", errReported)
	}
	return nil
}

// checkRound opens the target if it is not open (recording the open as a
// step), then probes it. A target that failed to open is tried again in the
// next round.
func checkRound(ctx context.Context, t **targeturl.Opened, rawURL string, opts target.ProbeOptions) *target.ProbeReport {
	var open target.ProbeStep
	if *t == nil {
		start := time.Now()
		// One attempt per request: the check reports what the store does,
		// and its latencies, without retries hiding either.
		opened, err := targeturl.Open(ctx, rawURL, targeturl.Options{Retry: &target.RetryPolicy{MaxAttempts: 1}})
		open = target.NewProbeStep(target.StepOpen, start, err)
		if err != nil {
			r := &target.ProbeReport{Start: start}
			r.Prepend(open)
			r.DurationMS = open.LatencyMS
			return r
		}
		*t = opened
	}
	r, err := target.Probe(ctx, *t, opts)
	if r == nil { // invalid options, which cmdCheck validated
		r = &target.ProbeReport{Start: time.Now()}
		r.Prepend(target.NewProbeStep(target.StepCheck, time.Now(), err))
	}
	if open.Name != "" {
		r.Prepend(open)
	}
	return r
}

// roundDoc is one round as JSON: the probe's report with the round's
// number and the target.
type roundDoc struct {
	Target string `json:"target"`
	Round  int    `json:"round"`
	*target.ProbeReport
}

func printRound(out *output, rawURL string, round int, repeat bool, r *target.ProbeReport) {
	name := displayURL(rawURL)
	if out.json {
		doc := roundDoc{Target: name, Round: round, ProbeReport: r}
		if !repeat {
			enc := json.NewEncoder(out.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(doc)
			return
		}
		line, _ := json.Marshal(doc)
		fmt.Fprintf(out.stdout, "%s\n", line)
		return
	}
	if repeat {
		fmt.Fprintln(out.stdout, roundLine(round, r))
		return
	}
	fmt.Fprint(out.stdout, roundTable(name, r))
}

// roundLine is a round in one line: time, verdict, each step's latency (or
// failure), the clock skew, and the problems.
func roundLine(round int, r *target.ProbeReport) string {
	var b strings.Builder
	verdict := "ok"
	if !r.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s round=%d %s", r.Start.UTC().Format(time.RFC3339), round, verdict)
	for _, s := range r.Steps {
		switch {
		case s.Skipped:
			continue
		case s.OK:
			fmt.Fprintf(&b, " %s=%s", s.Name, strings.ReplaceAll(latencyText(s.LatencyMS), " ", ""))
		default:
			fmt.Fprintf(&b, " %s=FAIL(%s)", s.Name, s.Kind)
		}
	}
	if sk := r.ClockSkew; sk != nil {
		fmt.Fprintf(&b, " skew=%v", time.Duration(sk.SkewMS)*time.Millisecond)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, " problems: %s", strings.Join(r.Problems, "; "))
	}
	return b.String()
}

// roundTable is a round as a table of steps, then the findings.
func roundTable(name string, r *target.ProbeReport) string {
	var b strings.Builder
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "check of %s: %s (%s)\n", name, verdict, latencyText(r.DurationMS))
	fmt.Fprintf(&b, "%-13s  %-4s  %10s  %s\n", "STEP", "OK", "LATENCY", "DETAIL")
	for _, s := range r.Steps {
		ok, detail := "ok", s.Note
		switch {
		case s.Skipped:
			ok = "-"
		case !s.OK:
			ok, detail = "FAIL", s.Kind // the problems below hold the message
		}
		lat := latencyText(s.LatencyMS)
		if s.Skipped {
			lat = "-"
		}
		fmt.Fprintf(&b, "%-13s  %-4s  %10s  %s\n", s.Name, ok, lat, detail)
	}
	if sk := r.ClockSkew; sk != nil {
		fmt.Fprintf(&b, "clock skew: %v (flagged beyond %v)\n", time.Duration(sk.SkewMS)*time.Millisecond, time.Duration(sk.MaxMS)*time.Millisecond)
	}
	if r.ReadOnly {
		fmt.Fprintln(&b, "read-only credentials")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}

func latencyText(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// displayURL is the target URL for output, without any user information
// (credentials never belong in the URL, but a mistaken one stays hidden).
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	if u.User != nil {
		u.User = nil
	}
	return u.String()
}
