package bench

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"

	"github.com/chunkback/chunkback/internal/servertest"
)

// BenchmarkTargets measures backup and restore throughput against every
// real server's targets (the URL_<KIND> entries of the env files that
// scripts/servers/start.sh writes), with one worker (one upload at a time)
// and with one per CPU (parallel uploads). The codec is "none", so the
// figure is the store's and the network path's, not the compressor's.
//
//	bash scripts/servers/start.sh
//	CHUNKBACK_BENCH_SIZE=1GiB go test -run '^$' -bench Targets -benchtime 1x ./bench/
//
// A server that is not running fails the benchmark (set
// CHUNKBACK_SKIP_SERVERS to leave some out).
func BenchmarkTargets(b *testing.B) {
	for _, server := range servertest.Servers() {
		b.Run("server="+server, func(b *testing.B) {
			env := servertest.Require(b, server)
			urls := env.URLs()
			for _, kind := range slices.Sorted(maps.Keys(urls)) {
				b.Run("target="+kind, func(b *testing.B) {
					env.SetCLIEnv(b)
					benchTarget(b, urls[kind])
				})
			}
		})
	}
}

func benchTarget(b *testing.B, url string) {
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("op=backup/workers=%d", workers), func(b *testing.B) {
			measure(b, func() Spec {
				s := spec(KindBackup, url)
				s.Source, s.Compression, s.Workers = source(b, 0), "none", workers
				return s
			}, deleteBackup(b))
		})
		b.Run(fmt.Sprintf("op=restore/workers=%d", workers), func(b *testing.B) {
			full := spec(KindBackup, url)
			full.Source, full.Compression, full.Workers = source(b, 0), "none", workers
			must(b, full)
			b.Cleanup(func() { deleteBackup(b)(full) })
			measure(b, func() Spec {
				s := spec(KindRestore, url)
				s.BackupID, s.Dest, s.Workers = full.BackupID, fmt.Sprintf("%s/restore-%s.img", b.TempDir(), NewID()), workers
				return s
			}, nil)
		})
	}
}
