//go:build !linux

package backup

import "io"

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(io.WriterAt, int64, int64) {}
