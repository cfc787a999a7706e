package compress

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncoderMemory checks EncoderMemory against what compressing takes
// from the heap besides the output buffer, with fresh encoders (a codec
// built with options has pools of its own).
func TestEncoderMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what allocations take")
	}
	src := textData(8<<20, 21)
	for _, tc := range []struct {
		name  string
		level int
	}{{"zlib", 6}, {"zlib", 9}, {"zstd", 3}, {"zstd", 9}, {"bz2", 9}, {"bz2", 1}} {
		c, err := New(tc.name, Options{Level: tc.level, DisableSampling: true})
		require.NoError(t, err)
		dst := make([]byte, 0, len(src))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, smaller, err := c.Compress(dst, src)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.True(t, smaller)
		took := int(after.TotalAlloc - before.TotalAlloc)
		t.Logf("%s level %d: %.1f MiB, estimate %.1f MiB", tc.name, tc.level, float64(took)/(1<<20), float64(EncoderMemory(c))/(1<<20))
		assert.LessOrEqual(t, took, EncoderMemory(c), "%s level %d", tc.name, tc.level)
		assert.Greater(t, took, EncoderMemory(c)/4, "%s level %d: the estimate is far too high", tc.name, tc.level)
	}
	none, _ := New("none", Options{})
	assert.Zero(t, EncoderMemory(none))
}
