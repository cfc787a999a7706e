package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SkipResticEnv, set to 1, skips the tests and benchmarks that run restic.
// Otherwise they fail when restic is missing, naming the install command.
const SkipResticEnv = "CHUNKBACK_SKIP_RESTIC"

// needRestic skips tb when SkipResticEnv is 1 and fails it when restic is
// not installed.
func needRestic(tb testing.TB) {
	tb.Helper()
	if os.Getenv(SkipResticEnv) == "1" {
		tb.Skipf("%s=1", SkipResticEnv)
	}
	if err := ResticAvailable(); err != nil {
		tb.Fatalf("%v (or set %s=1 to skip)", err, SkipResticEnv)
	}
}

func TestResticSpecValidate(t *testing.T) {
	ok := ResticSpec{Kind: KindBackup, Repo: "r", Source: "s"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid backup spec: %v", err)
	}
	if err := (ResticSpec{Kind: KindRestore, Repo: "r", Dest: "d"}).Validate(); err != nil {
		t.Fatalf("valid restore spec: %v", err)
	}
	for _, tc := range []struct {
		spec ResticSpec
		want string
	}{
		{ResticSpec{Kind: KindVerify, Repo: "r"}, `kind "verify"`},
		{ResticSpec{Kind: KindBackup, Repo: "r", Source: "s", Compression: "lz4"}, `compression "lz4"`},
		{ResticSpec{Kind: KindBackup, Source: "s"}, "a repository directory"},
		{ResticSpec{Kind: KindBackup, Repo: "r"}, "a source file"},
		{ResticSpec{Kind: KindRestore, Repo: "r"}, "a destination file"},
	} {
		err := tc.spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one with %q", tc.spec, err, tc.want)
		}
	}
	for in, want := range map[string]string{"": "auto", "zlib": "auto", "zstd": "auto", "none": "off", "off": "off", "max": "max"} {
		if got, err := resticCompression(in); got != want || err != nil {
			t.Errorf("resticCompression(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestRestic backs up a generated file with real restic, then a copy with
// one block changed on top of it, restores both and compares them
// with what was backed up.
func TestRestic(t *testing.T) {
	needRestic(t)
	ctx := context.Background()
	dir := t.TempDir()
	const size = 16 << 20
	src, mod := filepath.Join(dir, "source.img"), filepath.Join(dir, "modified.img")
	if err := CreateSource(src, SourceOptions{Size: size}); err != nil {
		t.Fatal(err)
	}
	// One 32 KiB block changed of 512.
	if _, err := CreateModified(src, mod, ModifyOptions{Fraction: 1.0 / 512}); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")

	full, err := RunRestic(ctx, ResticSpec{Kind: KindBackup, Repo: repo, Source: src, Compression: "zlib"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full: %+v", *full)
	// Half the source is text that compresses: restic stores less than the
	// source, in at least a few chunks (restic's average is 1 MiB).
	if full.Bytes != size || full.SnapshotID == "" || full.Seconds <= 0 || full.PeakRSS <= 0 ||
		full.Objects < 4 || full.BytesStored <= 0 || full.BytesStored >= size {
		t.Errorf("full backup: %+v", *full)
	}

	incr, err := RunRestic(ctx, ResticSpec{Kind: KindBackup, Repo: repo, Source: mod, Parent: full.SnapshotID, Compression: "zlib"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental: %+v", *incr)
	// One changed block changes the chunk that holds it (restic's
	// content-defined chunks average 1 MiB; where they end depends on the
	// repository's random polynomial): one new chunk, two if the change
	// moves a boundary, three at most, and less stored than the full.
	if incr.Bytes != size || incr.SnapshotID == "" || incr.SnapshotID == full.SnapshotID ||
		incr.Objects < 1 || incr.Objects > 3 || incr.BytesStored <= 0 || incr.BytesStored >= full.BytesStored {
		t.Errorf("incremental backup: %+v, full stored %d", *incr, full.BytesStored)
	}

	for _, tc := range []struct {
		name, snapshot, want string
	}{{"full", full.SnapshotID, src}, {"incremental", incr.SnapshotID, mod}} {
		dest := filepath.Join(dir, "restored-"+tc.name+".img")
		out, err := RunRestic(ctx, ResticSpec{Kind: KindRestore, Repo: repo, Snapshot: tc.snapshot, Dest: dest})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("restore %s: %+v", tc.name, *out)
		if out.Bytes != size || out.SnapshotID != tc.snapshot || out.PeakRSS <= 0 || out.Seconds <= 0 {
			t.Errorf("restore %s: %+v", tc.name, *out)
		}
		sameFile(t, dest, tc.want)
		// The directory restic restored into is gone.
		if left, _ := filepath.Glob(dest + ".restic-*"); len(left) != 0 {
			t.Errorf("restore %s left %v", tc.name, left)
		}
		if _, err := RunRestic(ctx, ResticSpec{Kind: KindRestore, Repo: repo, Snapshot: tc.snapshot, Dest: dest}); err == nil {
			t.Errorf("restore %s over an existing file: no error", tc.name)
		}
	}

	// Compression off stores at least the whole source; the restore of the
	// latest snapshot (no ID given) gives it back.
	repoOff := filepath.Join(dir, "repo-off")
	off, err := RunRestic(ctx, ResticSpec{Kind: KindBackup, Repo: repoOff, Source: src, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if off.BytesStored < size {
		t.Errorf("compression off stored %d bytes of %d", off.BytesStored, size)
	}
	dest := filepath.Join(dir, "restored-off.img")
	if _, err := RunRestic(ctx, ResticSpec{Kind: KindRestore, Repo: repoOff, Dest: dest}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, src)

	startup, err := ResticStartup(ctx, repo)
	if err != nil || startup <= 0 {
		t.Errorf("ResticStartup: %v, %v", startup, err)
	}
	t.Logf("restic start-up (open the repository): %.3f s", startup)
}

// sameFile fails t unless the files a and b hold the same bytes.
func sameFile(t *testing.T, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Errorf("%s (%d bytes) differs from %s (%d bytes)", a, len(da), b, len(db))
	}
}

// BenchmarkRestic runs restic on the benchmarks' source (CHUNKBACK_BENCH_SIZE,
// the file BenchmarkBackupFull backs up), so that its figures sit next to
// chunkback's: a full backup into a new repository with compression auto
// (restic's zstd, beside chunkback's zlib and zstd) and off (beside none),
// and a restore of the auto backup. Each op is a restic process, start-up
// and key derivation included; peakRSSMiB is the largest peak RSS of the
// restic processes (chunkback's benchmarks report peakMiB, Go heap in use,
// instead). Repositories are created and removed untimed.
func BenchmarkRestic(b *testing.B) {
	needRestic(b)
	ctx := context.Background()
	src := source(b, 0)
	for _, comp := range []string{"auto", "off"} {
		b.Run("backup/compression="+comp, func(b *testing.B) {
			b.SetBytes(benchSize(b))
			var peak int64
			for b.Loop() {
				b.StopTimer()
				repo, err := os.MkdirTemp(scratch, "restic-")
				if err != nil {
					b.Fatal(err)
				}
				if err := resticInit(ctx, repo); err != nil {
					b.Fatal(err)
				}
				flushDirty()
				b.StartTimer()
				out, err := RunRestic(ctx, ResticSpec{Kind: KindBackup, Repo: repo, Source: src, Compression: comp})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, out.PeakRSS)
				os.RemoveAll(repo)
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peakRSSMiB")
		})
	}
	b.Run("restore", func(b *testing.B) {
		repo, err := os.MkdirTemp(scratch, "restic-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(repo)
		full, err := RunRestic(ctx, ResticSpec{Kind: KindBackup, Repo: repo, Source: src})
		if err != nil {
			b.Fatal(err)
		}
		dest := filepath.Join(repo, "..", filepath.Base(repo)+"-restored.img")
		b.SetBytes(benchSize(b))
		var peak int64
		for b.Loop() {
			b.StopTimer()
			os.Remove(dest)
			flushDirty()
			b.StartTimer()
			out, err := RunRestic(ctx, ResticSpec{Kind: KindRestore, Repo: repo, Snapshot: full.SnapshotID, Dest: dest})
			if err != nil {
				b.Fatal(err)
			}
			peak = max(peak, out.PeakRSS)
		}
		b.StopTimer()
		os.Remove(dest)
		b.ReportMetric(float64(peak)/(1<<20), "peakRSSMiB")
	})
}
