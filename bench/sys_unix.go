//go:build unix

package bench

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
)

// maxRSS returns the peak RSS in bytes of an exited process and the
// descendants it waited for, from wait4's rusage.
func maxRSS(ps *os.ProcessState) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes there
	}
	return int64(ru.Maxrss) * 1024 // KiB on Linux and the BSDs
}

// flushDirty writes every dirty page of the system to disk (sync(2), which
// needs no privilege), so that an operation does not pay for the writeback
// of the files written before it.
func flushDirty() { syscall.Sync() }

// currentRSS returns this process's resident set size in bytes, from
// /proc/self/statm (0 where there is none).
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
