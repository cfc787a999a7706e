//go:build unix

package bench

import (
	"os"
	"runtime"
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
