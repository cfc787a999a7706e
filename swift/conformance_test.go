package swift

import (
	"testing"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// TestSwiftConformance runs the conformance suite against each real server,
// once with Swift's single-PUT limit (every object in one PUT) and once with
// 1 MiB segments, so that the suite's large objects (20 MiB, 3 MiB, and the
// 4 MiB bodies it cancels and fails) go up as static large objects.
func TestSwiftConformance(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		for _, tc := range []struct {
			name        string
			segmentSize int64
			manyObjects int
		}{
			{"SinglePut", 0, 0},
			// Listing is not what this run is about: fewer objects.
			{"SLO", 1 << 20, 300},
		} {
			t.Run(tc.name, func(t *testing.T) {
				targettest.RunWithOptions(t, func(t *testing.T) target.Target {
					cfg := s.config(t)
					cfg.SegmentSize = tc.segmentSize
					return open(t, cfg)
				}, targettest.Options{NonAtomicIfNotExists: s.nonAtomicINE, ManyObjects: tc.manyObjects})
			})
		}
	})
}
