package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/chunkback/chunkback/bench"
	"github.com/chunkback/chunkback/internal/cindertest"
)

// matrixUsage is the help text of the matrix subcommand.
const matrixUsage = `usage: chunkbench matrix [flags]

Runs every combination of --target x --codec x --object-size x --block-size x
--workers x --ops, each --repeat times in a child process, on one generated
source, and prints a table (median MB/s, its 95% confidence interval, peak RSS;
latency percentiles for put and get). Lists are comma-separated. With --profile,
the first run of each backup, restore and verify is CPU-profiled and a second
table gives each one's share of CPU per stage (hash, md5, codec, io, memory,
other).

`

// runMatrix is the matrix subcommand.
func runMatrix(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chunkbench matrix", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), matrixUsage)
		fs.PrintDefaults()
	}
	targets := fs.String("target", "", "targets: --target URLs of the CLI (credentials from the environment); default a scratch directory")
	codecs := fs.String("codec", "zlib", "codecs (none, zlib, bz2, zstd)")
	objectSizes := fs.String("object-size", strconv.Itoa(bench.DefaultObjectSize), "object sizes, bytes or with a unit")
	blockSizes := fs.String("block-size", strconv.Itoa(bench.DefaultBlockSize), "block sizes, bytes or with a unit")
	workers := fs.String("workers", "", "worker counts (default: the number of CPUs)")
	ops := fs.String("ops", strings.Join(bench.MatrixOps(), ","), "operations")
	size := fs.String("size", "1GiB", "source size (bytes, or with a unit: KiB, MiB, GiB, KB, MB, GB)")
	repeat := fs.Int("repeat", 3, "runs per cell")
	compressible := fs.Float64("compressible", 0.5, "share of the source that is text (compresses about 3:1)")
	zeros := fs.Float64("zeros", 0, "share of the source that is zeros")
	seed := fs.Uint64("seed", bench.DefaultSeed, "seed of the generated data")
	peers := fs.String("peers", "", "peers to run on the same data: restic, cinder")
	dir := fs.String("dir", "", "directory for the scratch directory (default $TMPDIR)")
	jsonOut := fs.String("json", "", "write the report as JSON to this file (- for standard output)")
	csvOut := fs.String("csv", "", "write the results as CSV to this file (- for standard output)")
	svgOut := fs.String("svg", "", "write a chart of median MB/s per target and operation to this SVG file")
	readme := fs.String("update-readme", "", "rewrite the section between the chunkbench markers of this Markdown file")
	profile := fs.Bool("profile", false, "CPU-profile the first run of each backup, restore and verify and report where the time goes")
	profileDir := fs.String("profile-dir", "", "with --profile, keep the profiles (pprof format) in this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("matrix: unexpected arguments %q", fs.Args())
	}
	c := bench.MatrixConfig{
		Targets: list(*targets), Codecs: list(*codecs), Ops: list(*ops), Repeat: *repeat, Seed: *seed,
		Mix: &bench.Mix{Compressible: *compressible, Zeros: *zeros}, Dir: *dir, Log: stderr,
		Profile: *profile, ProfileDir: *profileDir,
	}
	if *profileDir != "" && !*profile {
		return errors.New("--profile-dir needs --profile")
	}
	var err error
	if c.Size, err = bench.ParseSize(*size); err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	if c.ObjectSizes, err = sizes[int64](*objectSizes); err != nil {
		return fmt.Errorf("--object-size: %w", err)
	}
	if c.BlockSizes, err = sizes[int](*blockSizes); err != nil {
		return fmt.Errorf("--block-size: %w", err)
	}
	for _, w := range list(*workers) {
		n, err := strconv.Atoi(w)
		if err != nil {
			return fmt.Errorf("--workers: %q is not a number", w)
		}
		c.Workers = append(c.Workers, n)
	}
	for _, p := range list(*peers) {
		switch p {
		case bench.PeerRestic:
			c.Restic = true
			if err := bench.ResticAvailable(); err != nil {
				return err
			}
		case bench.PeerCinder:
			c.Cinder = true
			if err := cindertest.Available(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("--peers: unknown peer %q: choose from restic, cinder", p)
		}
	}
	if err := c.Validate(); err != nil {
		return err
	}
	outs := slices.DeleteFunc([]string{*jsonOut, *csvOut}, func(s string) bool { return s != "-" })
	if len(outs) > 1 {
		return errors.New("--json - and --csv - cannot both go to standard output")
	}
	// Fail now, not after an hour of measuring, on an output that cannot
	// be written.
	for _, path := range []string{*jsonOut, *csvOut, *svgOut} {
		if path != "" && path != "-" {
			if _, err := os.Stat(filepath.Dir(path)); err != nil {
				return fmt.Errorf("output %s: %w", path, err)
			}
		}
	}
	if *readme != "" {
		if _, err := os.Stat(*readme); err != nil {
			return fmt.Errorf("--update-readme: %w", err)
		}
	}
	if c.Exe, err = os.Executable(); err != nil {
		return fmt.Errorf("finding this program to run operations in child processes: %w", err)
	}
	rep, err := bench.RunMatrix(ctx, c)
	if err != nil {
		return err
	}
	if len(outs) == 0 {
		if err := bench.WriteMatrixText(stdout, rep); err != nil {
			return err
		}
	}
	write := func(path string, f func(io.Writer, *bench.MatrixReport) error) error {
		if path == "" {
			return nil
		}
		if path == "-" {
			return f(stdout, rep)
		}
		var b bytes.Buffer
		if err := f(&b, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "chunkbench: wrote %s\n", path)
		return os.WriteFile(path, b.Bytes(), 0o644)
	}
	if err := errors.Join(write(*jsonOut, bench.WriteMatrixJSON), write(*csvOut, bench.WriteMatrixCSV), write(*svgOut, bench.WriteMatrixSVG)); err != nil {
		return err
	}
	if *readme == "" {
		return nil
	}
	link := ""
	if *svgOut != "" {
		if link, err = relativeTo(filepath.Dir(*readme), *svgOut); err != nil {
			return err
		}
	}
	cmd := "go run ./bench/cmd/chunkbench matrix " + strings.Join(redactArgs(args), " ")
	if err := bench.UpdateReadme(*readme, bench.MatrixReadmeSection(rep, cmd, link)); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "chunkbench: updated %s\n", *readme)
	return nil
}

// list splits a comma-separated list, leaving out empty items.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// sizes parses a comma-separated list of sizes.
func sizes[T int | int64](s string) ([]T, error) {
	var out []T
	for _, v := range list(s) {
		n, err := bench.ParseSize(v)
		if err != nil {
			return nil, err
		}
		out = append(out, T(n))
	}
	return out, nil
}

// relativeTo returns path relative to dir, with forward slashes (a
// Markdown link).
func relativeTo(dir, path string) (string, error) {
	ad, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	ap, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(ad, ap)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// redactArgs returns the command line with each --target URL replaced by
// its label and the output paths kept, for the README: a URL may carry a
// secret in its query.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "target" || !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasVal && i+1 < len(out) {
			i++
			val = out[i]
		}
		var labels []string
		for _, u := range list(val) {
			labels = append(labels, "<"+bench.TargetLabel(u)+">")
		}
		if hasVal {
			out[i] = "--target=" + strings.Join(labels, ",")
		} else {
			out[i] = strings.Join(labels, ",")
		}
	}
	return out
}
