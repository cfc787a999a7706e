package backup

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/chunkback/chunkback/chunk"
)

// maxSparseExtents bounds the extent list of a sparse file: a file
// fragmented into more data extents than this is read whole instead (the
// list would cost more memory than skipping saves time).
const maxSparseExtents = 1 << 20

// dataExtents returns the data extents of a sparse regular file, found with
// SEEK_DATA/SEEK_HOLE, so that its holes are never read. It returns nil
// when src is not such a file, has no hole, or its filesystem cannot tell:
// the caller then reads everything, as before.
func dataExtents(src io.Reader, size int64) []chunk.Extent {
	f, ok := src.(*os.File)
	if !ok || size <= 0 {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	fd := int(f.Fd())
	// SEEK_DATA/SEEK_HOLE move the file offset: put it back.
	cur, err := unix.Seek(fd, 0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	defer func() { _, _ = unix.Seek(fd, cur, io.SeekStart) }()
	var extents []chunk.Extent
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) || (err == nil && data >= size) {
			break // only a hole is left
		}
		if err != nil {
			return nil // EINVAL: the filesystem does not support it
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil
		}
		hole = min(hole, size)
		extents = append(extents, chunk.Extent{Offset: data, Length: hole - data})
		if len(extents) > maxSparseExtents {
			return nil
		}
		off = hole
	}
	if len(extents) == 1 && extents[0].Offset == 0 && extents[0].Length == size {
		return nil // dense
	}
	if extents == nil {
		extents = []chunk.Extent{} // all hole
	}
	return extents
}
