package pages

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInterior(t *testing.T) {
	b := make([]byte, 10*size)
	base := size - int(addr(b)%uintptr(size))
	if base == size {
		base = 0
	}
	assert.Nil(t, interior(b[:size-1]), "shorter than a page")
	p := interior(b[1 : 3*size+1])
	require.NotNil(t, p)
	assert.Zero(t, addr(p)%uintptr(size), "starts on a page boundary")
	assert.Zero(t, len(p)%size, "whole pages")
	assert.GreaterOrEqual(t, addr(p), addr(b[1:]))
	assert.LessOrEqual(t, addr(p)+uintptr(len(p)), addr(b[1:])+uintptr(3*size))
	assert.Len(t, interior(b[base:base+4*size]), 4*size, "an aligned range is released whole")
}

// rssKiB reads the process's resident set from /proc.
func rssKiB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func TestReleaseGivesMemoryBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Release gives memory back on Linux only")
	}
	const n = 64 << 20
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) + 1
	}
	before := rssKiB(t)
	edge := bytes.Clone(b[:10])
	Release(b[10 : n-10])
	after := rssKiB(t)
	assert.Greater(t, before-after, 60<<10, "RSS fell by %d KiB, want nearly 64 MiB", before-after)
	assert.Equal(t, edge, b[:10], "bytes outside whole pages keep their values")
	assert.Equal(t, byte((n-1)%251)+1, b[n-1])
	p := interior(b[10 : n-10])
	assert.Equal(t, make([]byte, len(p)), p, "released pages read as zeros")
	// The slice is still usable.
	p[0], p[len(p)-1] = 7, 9
	assert.Equal(t, byte(7), p[0])
	runtime.KeepAlive(b)
}
