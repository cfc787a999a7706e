package s3

import (
	"testing"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func runConformance(t *testing.T, s server, opts targettest.Options) {
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		cfg := s.config(t)
		smallParts(&cfg)
		return open(t, cfg)
	}, opts)
}

func TestS3ConformanceMinIO(t *testing.T) {
	runConformance(t, minio(t), targettest.Options{})
}

// Ceph radosgw (Pacific) needs no option but path style: it honours
// If-None-Match on PUT atomically and the SDK's CRC32 checksums.
func TestS3ConformanceRadosgw(t *testing.T) {
	runConformance(t, radosgw(t), targettest.Options{})
}
