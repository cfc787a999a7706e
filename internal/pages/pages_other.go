//go:build !linux

package pages

import "unsafe"

// Release gives the memory of the whole pages inside b back to the
// operating system on Linux; elsewhere it does nothing. Callers treat the
// contents of b as undefined afterwards.
func Release(b []byte) {}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
