package pages

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Release gives the memory of the whole pages inside b back to the
// operating system. b stays valid: those bytes read as zeros until written
// again, and the bytes of b outside whole pages keep their values. Callers
// treat the contents of b as undefined afterwards (elsewhere than on Linux,
// Release leaves them as they were and gives nothing back).
//
// It is safe on memory from the Go heap: the heap keeps no bookkeeping
// inside []byte objects, and MADV_DONTNEED on private anonymous memory only
// drops the pages' contents.
func Release(b []byte) {
	if p := interior(b); p != nil {
		_ = unix.Madvise(p, unix.MADV_DONTNEED) // advice: a failure only keeps the memory
	}
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
