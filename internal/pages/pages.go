// Package pages gives the memory behind byte slices back to the operating
// system while the slices stay allocated, so that a buffer kept for reuse
// costs no memory between uses.
//
// A backup reuses its object buffers rather than allocating new ones
// (garbage of 50 MiB objects would let the Go heap grow to twice the live
// data), but a reused buffer holds its memory even while it waits. Release
// hands the pages of a finished part back: they cost nothing until written
// again, when the kernel supplies zeroed pages.
package pages

import "os"

// size is the kernel's page size.
var size = os.Getpagesize()

// interior returns the whole pages inside b, or nil.
func interior(b []byte) []byte {
	if len(b) < size {
		return nil
	}
	start := 0
	if rem := int(addr(b) % uintptr(size)); rem != 0 {
		start = size - rem
	}
	end := start + (len(b)-start)/size*size
	if end <= start {
		return nil
	}
	return b[start:end]
}
