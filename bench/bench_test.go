package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"
)

// The Go benchmarks: go test -bench . ./bench/ (add -benchtime 1x in CI).
// Each runs on a generated semi-compressible source of CHUNKBACK_BENCH_SIZE
// bytes (default 64 MiB; "1GiB" is the reference size), with 32 KiB blocks
// and 50 MiB objects, against a posix target in b.TempDir() written without
// fsync. They report MB/s of source (b.SetBytes), the peak Go heap and stacks
// in use while they ran (peakMiB), and the objects stored or read per op.

// SizeEnv sets the size of the benchmarks' source, in bytes or with a unit.
const SizeEnv = "CHUNKBACK_BENCH_SIZE"

const defaultBenchSize = 64 << 20

var (
	scratch   string // the sources, shared by all benchmarks
	sourcesMu sync.Mutex
	sources   = map[float64]string{}
)

func TestMain(m *testing.M) {
	ChildMain() // RunChild re-executes this test binary
	dir, err := os.MkdirTemp("", "chunkback-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// benchSize is the source size: SizeEnv, or 64 MiB.
func benchSize(tb testing.TB) int64 {
	v := os.Getenv(SizeEnv)
	if v == "" {
		return defaultBenchSize
	}
	n, err := ParseSize(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive size such as 64MiB or 1GiB (%v)", SizeEnv, v, err)
	}
	return n
}

// source returns the generated source (changed == 0), or a copy with that
// share of its blocks changed; each is written once per test binary.
func source(tb testing.TB, changed float64) string {
	tb.Helper()
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	if p, ok := sources[changed]; ok {
		return p
	}
	if changed == 0 {
		p := filepath.Join(scratch, "source.img")
		if err := CreateSource(p, SourceOptions{Size: benchSize(tb)}); err != nil {
			tb.Fatal(err)
		}
		sources[0] = p
		return p
	}
	sourcesMu.Unlock()
	orig := source(tb, 0)
	sourcesMu.Lock()
	p := filepath.Join(scratch, fmt.Sprintf("source-%gpct.img", changed*100))
	if _, err := CreateModified(orig, p, ModifyOptions{BlockSize: DefaultBlockSize, Fraction: changed}); err != nil {
		tb.Fatal(err)
	}
	sources[changed] = p
	return p
}

// spec is a chunkback operation on a store with the reference settings.
func spec(kind, store string) Spec {
	return Spec{
		Engine: EngineChunkback, Kind: kind, Target: store, VolumeID: "bench-volume", BackupID: NewID(),
		ObjectSize: DefaultObjectSize, BlockSize: DefaultBlockSize,
	}
}

// must runs s in this process.
func must(tb testing.TB, s Spec) *Outcome {
	tb.Helper()
	return mustCtx(context.Background(), tb, s)
}

func mustCtx(ctx context.Context, tb testing.TB, s Spec) *Outcome {
	tb.Helper()
	out, err := Run(ctx, s)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// measure runs op b.N times, with after (untimed) after each, and reports
// the source's MB/s, the peak Go memory in use (peakMiB) and the objects of
// the last op. The timed operations carry the pprof label bench=timed (their
// goroutines inherit it), so that a -cpuprofile can leave the setup out:
//
//	go tool pprof -top -tagfocus bench=timed bench.test cpu.out
func measure(b *testing.B, op func() Spec, after func(Spec)) {
	b.SetBytes(benchSize(b))
	runtime.GC()
	stop := SampleHeap(5 * time.Millisecond)
	b.ResetTimer()
	var last *Outcome
	for range b.N {
		s := op()
		pprof.Do(context.Background(), pprof.Labels("bench", "timed"), func(ctx context.Context) {
			last = mustCtx(ctx, b, s)
		})
		b.StopTimer()
		if after != nil {
			after(s)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(stop())/(1<<20), "peakMiB")
	b.ReportMetric(float64(last.Objects), "objects")
}

// deleteBackup removes a backup made by an iteration, so that the store
// does not grow with b.N.
func deleteBackup(b *testing.B) func(Spec) {
	return func(s Spec) {
		s.Kind = KindDelete
		must(b, s)
	}
}

// fullBackup makes the full backup the other benchmarks start from.
func fullBackup(b *testing.B, store, codec string) Spec {
	s := spec(KindBackup, store)
	s.Source, s.Compression = source(b, 0), codec
	must(b, s)
	return s
}

// BenchmarkBackupFull: a full backup of the source, per codec.
func BenchmarkBackupFull(b *testing.B) {
	for _, codec := range []string{"zlib", "none", "zstd"} {
		b.Run("codec="+codec, func(b *testing.B) {
			store, src := b.TempDir(), source(b, 0)
			measure(b, func() Spec {
				s := spec(KindBackup, store)
				s.Source, s.Compression = src, codec
				return s
			}, deleteBackup(b))
		})
	}
}

// BenchmarkBackupIncremental: an incremental (zlib) on a full backup of the
// source, of a copy with 1% or 10% of its 32 KiB blocks changed, scattered.
func BenchmarkBackupIncremental(b *testing.B) {
	for _, changed := range []float64{0.01, 0.10} {
		b.Run(fmt.Sprintf("changed=%g%%", changed*100), func(b *testing.B) {
			store, src := b.TempDir(), source(b, changed)
			parent := fullBackup(b, store, "zlib")
			measure(b, func() Spec {
				s := spec(KindBackup, store)
				s.Source, s.Compression, s.ParentID = src, "zlib", parent.BackupID
				return s
			}, deleteBackup(b))
		})
	}
}

// BenchmarkRestore: a restore of a full backup into a new file, per codec.
func BenchmarkRestore(b *testing.B) {
	for _, codec := range []string{"zlib", "none"} {
		b.Run("codec="+codec, func(b *testing.B) {
			store := b.TempDir()
			full := fullBackup(b, store, codec)
			dest := filepath.Join(b.TempDir(), "restored.img")
			measure(b, func() Spec {
				s := spec(KindRestore, store)
				s.BackupID, s.Dest = full.BackupID, dest
				return s
			}, func(Spec) {
				if err := os.Remove(dest); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkVerify: a verify of a full zlib backup.
func BenchmarkVerify(b *testing.B) {
	store := b.TempDir()
	full := fullBackup(b, store, "zlib")
	measure(b, func() Spec {
		s := spec(KindVerify, store)
		s.BackupID = full.BackupID
		return s
	}, nil)
}
