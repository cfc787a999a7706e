// Command chunkbench measures chunkback on the reference workload — a
// semi-compressible 1 GiB file (half random, half text), 32 KiB blocks,
// 50 MiB objects — and, when real OpenStack Cinder is installed, Cinder on
// the same file in the same run, and checks the targets.
//
//	go run ./bench/cmd/chunkbench [flags]
//
// Each operation runs in a child process (this program, re-executed), so
// that its peak RSS is its own. Run it from inside the module: the Cinder
// harness is found from the working directory. Progress goes to standard
// error; the report (a table, --json or --csv) to standard output.
//
// Flags:
//
//	--size SIZE         source size (default 1GiB; units KiB, MiB, GiB, KB, MB, GB)
//	--dir DIR           where the scratch directory goes (default $TMPDIR)
//	--object-size N     bytes per object (default 52428800)
//	--block-size N      bytes per hash block (default 32768)
//	--workers N         chunkback workers (default 0: the number of CPUs)
//	--repeat N          runs of each operation; the median time is reported (default 1)
//	--ops LIST          comma-separated operations (default all): full-zlib, full-none,
//	                    full-zstd, incr-1pct, incr-10pct, restore-zlib, restore-none,
//	                    verify, and the cinder-* ones
//	--cinder            run real Cinder too (default: on when it is installed)
//	--json, --csv       print the report as JSON, or the operations as CSV
//
// Subcommands:
//
//	chunkbench matrix [flags]     a benchmark matrix: targets x codecs x object sizes x
//	                              block sizes x workers x operations (see matrix.go,
//	                              chunkbench matrix -h and bench/README.md)
//	chunkbench compare OLD NEW    compare two matrix reports (JSON) with statistics;
//	                              exits non-zero on a significant regression
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chunkback/chunkback/bench"
	"github.com/chunkback/chunkback/internal/cindertest"
)

func main() {
	bench.ChildMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "chunkbench:", err)
		// An error may choose the status (compare's regression: 1).
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "matrix":
			return runMatrix(ctx, args[1:], stdout, stderr)
		case "compare":
			return runCompare(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("chunkbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.String("size", "1GiB", "source size (bytes, or with a unit: KiB, MiB, GiB, KB, MB, GB)")
	dir := fs.String("dir", "", "directory for the scratch directory (default $TMPDIR)")
	objectSize := fs.Int64("object-size", bench.DefaultObjectSize, "bytes per object")
	blockSize := fs.Int("block-size", bench.DefaultBlockSize, "bytes per hash block")
	workers := fs.Int("workers", 0, "chunkback workers (0: the number of CPUs)")
	repeat := fs.Int("repeat", 1, "runs of each operation (the median time is reported)")
	seed := fs.Uint64("seed", bench.DefaultSeed, "seed of the generated data")
	ops := fs.String("ops", "all", "comma-separated operations to run (their dependencies run too)")
	cinder := fs.Bool("cinder", false, "run real OpenStack Cinder on the same file (default: on when it is installed)")
	asJSON := fs.Bool("json", false, "print the whole report as JSON")
	asCSV := fs.Bool("csv", false, "print the operations as CSV")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *asJSON && *asCSV {
		return errors.New("--json and --csv exclude each other")
	}
	n, err := bench.ParseSize(*size)
	if err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	if n <= 0 {
		return errors.New("--size must be positive")
	}
	if *workers < 0 || *repeat < 1 {
		return errors.New("--workers must be >= 0 and --repeat >= 1")
	}
	cinderSet := false
	fs.Visit(func(f *flag.Flag) { cinderSet = cinderSet || f.Name == "cinder" })
	if !cinderSet {
		err := cindertest.Available()
		*cinder = err == nil
		if err != nil {
			fmt.Fprintf(stderr, "chunkbench: not running Cinder: %v\n", err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to run operations in child processes: %w", err)
	}
	var list []string
	for _, o := range strings.Split(*ops, ",") {
		if o = strings.TrimSpace(o); o != "" {
			list = append(list, o)
		}
	}
	rep, err := bench.RunReference(ctx, bench.Config{
		Dir: *dir, Size: n, Seed: *seed, ObjectSize: *objectSize, BlockSize: *blockSize,
		Workers: *workers, Repeat: *repeat, Ops: list, Cinder: *cinder, Exe: exe, Log: stderr,
	})
	if err != nil {
		return err
	}
	switch {
	case *asJSON:
		return bench.WriteJSON(stdout, rep)
	case *asCSV:
		return bench.WriteCSV(stdout, rep)
	default:
		return bench.WriteText(stdout, rep)
	}
}
