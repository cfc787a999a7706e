package backup

import (
	"io"

	"golang.org/x/sys/unix"
)

// writeback asks the kernel to start writing just-restored ranges of a file
// to disk. The restore's final fsync then finds little left to flush, and the
// disk works while the CPU decompresses and verifies later objects. Ranges go
// through one goroutine: sync_file_range can block when the device queue is
// full, and that must stall the flusher, not the restore workers.
type writeback struct {
	fd    int
	spans chan span
	done  chan struct{}
}

func newWriteback(dst io.WriterAt) *writeback {
	f, ok := dst.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	w := &writeback{fd: int(f.Fd()), spans: make(chan span, 256), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for s := range w.spans {
			_ = unix.SyncFileRange(w.fd, s.Start, s.End-s.Start, unix.SYNC_FILE_RANGE_WRITE)
		}
	}()
	return w
}

// start queues a range; when the queue is full it is left to the final fsync.
func (w *writeback) start(off, n int64) {
	if w == nil {
		return
	}
	select {
	case w.spans <- span{off, off + n}:
	default:
	}
}

// stop ends the flusher and waits for it.
func (w *writeback) stop() {
	if w != nil {
		close(w.spans)
		<-w.done
	}
}
