//go:build ceph

package rbd

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// copyPiece is the most one copy step reads and writes: a default RBD
// object, so that memory stays at workers x copyPiece.
const copyPiece = 4 << 20

// copyStats counts what copyExtents did.
type copyStats struct {
	read, written, discarded atomic.Int64
}

// extentWriter is where copyExtents writes.
type extentWriter interface {
	io.WriterAt
	Discard(offset, length int64) error
}

// copyExtents copies the given extents of src into dst with workers
// goroutines. A data extent is read and written, except that all-zero
// pieces are skipped (zeroed: dst reads as zeros already) or discarded; an
// extent without data (a discarded range) is discarded unless zeroed.
func copyExtents(ctx context.Context, src io.ReaderAt, dst extentWriter, extents []diffExtent, zeroed bool, workers int, st *copyStats) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pieces := make(chan diffExtent)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for p := range pieces {
				if ctx.Err() != nil {
					continue
				}
				if err := copyOne(src, dst, p, zeroed, &buf, st); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, x := range extents {
		if !x.Data && zeroed {
			continue
		}
		step := int64(copyPiece)
		if !x.Data {
			step = maxDiscard
		}
		for off := x.Offset; off < x.Offset+x.Length; off += step {
			p := diffExtent{Offset: off, Length: min(step, x.Offset+x.Length-off), Data: x.Data}
			select {
			case pieces <- p:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(pieces)
	wg.Wait()
	return context.Cause(ctx)
}

// copyOne copies one piece; buf is the worker's buffer.
func copyOne(src io.ReaderAt, dst extentWriter, p diffExtent, zeroed bool, buf *[]byte, st *copyStats) error {
	if !p.Data {
		st.discarded.Add(p.Length)
		return dst.Discard(p.Offset, p.Length)
	}
	if int64(cap(*buf)) < p.Length {
		*buf = make([]byte, copyPiece)
	}
	b := (*buf)[:p.Length]
	n, err := src.ReadAt(b, p.Offset)
	st.read.Add(int64(n))
	if err != nil && !(err == io.EOF && n == len(b)) {
		return err
	}
	if allZero(b) {
		if zeroed {
			return nil
		}
		st.discarded.Add(p.Length)
		return dst.Discard(p.Offset, p.Length)
	}
	st.written.Add(p.Length)
	_, err = dst.WriteAt(b, p.Offset)
	return err
}

// zeros is compared against: bytes.Equal is vectorised.
var zeros = make([]byte, 64<<10)

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// gaps returns the parts of [0, size) that no data extent covers.
func gaps(extents []diffExtent, size int64) []diffExtent {
	var out []diffExtent
	at := int64(0)
	for _, x := range extents {
		if !x.Data {
			continue
		}
		if x.Offset > at {
			out = append(out, diffExtent{Offset: at, Length: x.Offset - at})
		}
		at = max(at, x.Offset+x.Length)
	}
	if at < size {
		out = append(out, diffExtent{Offset: at, Length: size - at})
	}
	return out
}
