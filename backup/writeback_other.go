//go:build !linux

package backup

import "io"

// writeback is a no-op where sync_file_range does not exist.
type writeback struct{}

func newWriteback(io.WriterAt) *writeback { return nil }
func (w *writeback) start(off, n int64)   {}
func (w *writeback) stop()                {}
