package compress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// DecompressFrom is Decompress for compressed data read from src (to its
// end) instead of held in memory, so a restore holds only the decompressed
// object, not the stored one as well.
//
// The checks are Decompress's, and its errors wrap ErrCorrupt, except that
// an error reading src (a dropped connection) is returned wrapped as it is,
// not as corruption, so callers can retry it.
func DecompressFrom(c Codec, dst []byte, src io.Reader, size int) ([]byte, error) {
	return decompressFrom(c, dst, src, size, true)
}

// DecompressFromUnchecked is DecompressFrom for callers that check the
// decompressed data themselves, as a restore checks every block's SHA-256:
// it does not compute zlib's Adler-32, which takes a tenth of a zlib
// restore's CPU time (the checksum must still be there). Everything else
// is checked as by DecompressFrom, and other codecs are decompressed
// exactly as by it.
func DecompressFromUnchecked(c Codec, dst []byte, src io.Reader, size int) ([]byte, error) {
	return decompressFrom(c, dst, src, size, false)
}

func decompressFrom(c Codec, dst []byte, src io.Reader, size int, checksum bool) ([]byte, error) {
	if err := checkSize(c.Name(), size); err != nil {
		return dst[:0], err
	}
	r := &sourceReader{r: src}
	var out []byte
	var err error
	switch c := c.(type) {
	case noneCodec:
		out, err = noneFrom(dst, r, size)
	case *zlibCodec:
		out, err = zlibFrom(c.name, dst, r, size, checksum)
	case *bz2Codec:
		out, err = bz2From(c.name, dst, r, size)
	case *zstdCodec:
		out, err = zstdFrom(c.name, dst, r, size)
	default:
		return dst[:0], fmt.Errorf("compress: codec %q cannot decompress a stream", c.Name())
	}
	if err != nil && r.err != nil {
		// The decoder failed because the source did: that is the error.
		return out, fmt.Errorf("reading compressed data: %w", r.err)
	}
	return out, err
}

// sourceReader remembers the first error other than io.EOF its reader
// returned, so that a broken source is not reported as corrupt data.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// atEOF reports whether r has nothing more to read.
func atEOF(r io.Reader) (bool, error) {
	var one [1]byte
	for range 100 {
		n, err := r.Read(one[:])
		if n > 0 {
			return false, nil
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, io.ErrNoProgress
}

func noneFrom(dst []byte, src io.Reader, size int) ([]byte, error) {
	out := outBuf(dst, size)
	n, err := io.ReadFull(src, out)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return out[:0], corrupt("none", "object is %d bytes, expected %d", n, size)
	}
	if err != nil {
		return out[:0], corrupt("none", "%v", err)
	}
	if end, err := atEOF(src); err != nil {
		return out[:0], corrupt("none", "%v", err)
	} else if !end {
		return out[:0], corrupt("none", "object is longer than the expected %d bytes", size)
	}
	return out, nil
}

// zlibStream is a pooled zlib decoder reading through a buffer of its own
// (the flate decoder needs an io.ByteReader).
type zlibStream struct {
	buf *bufio.Reader
	zr  io.ReadCloser // also a zlib.Resetter
	fr  io.ReadCloser // the bare deflate decoder, a flate.Resetter
	one [1]byte
}

var zlibStreams = sync.Pool{New: func() any {
	s := &zlibStream{}
	s.buf = bufio.NewReaderSize(eofReader{}, 64<<10)
	return s
}}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func zlibFrom(name string, dst []byte, src io.Reader, size int, checksum bool) ([]byte, error) {
	s := zlibStreams.Get().(*zlibStream)
	defer func() {
		s.buf.Reset(eofReader{})
		zlibStreams.Put(s)
	}()
	s.buf.Reset(src)
	var zr io.Reader
	if checksum {
		if s.zr == nil {
			r, err := zlib.NewReader(s.buf)
			if err != nil {
				return dst[:0], corrupt(name, "%v", err)
			}
			s.zr = r
		} else if err := s.zr.(zlib.Resetter).Reset(s.buf, nil); err != nil {
			return dst[:0], corrupt(name, "%v", err)
		}
		zr = s.zr
	} else {
		if err := zlibHeader(name, s.buf); err != nil {
			return dst[:0], err
		}
		if s.fr == nil {
			s.fr = flate.NewReader(s.buf)
		} else if err := s.fr.(flate.Resetter).Reset(s.buf, nil); err != nil {
			return dst[:0], corrupt(name, "%v", err)
		}
		zr = s.fr
	}
	out := outBuf(dst, size)
	if err := readExact(name, zr, out, s.one[:]); err != nil {
		return out[:0], err
	}
	if !checksum {
		var sum [4]byte
		if _, err := io.ReadFull(s.buf, sum[:]); err != nil {
			return out[:0], corrupt(name, "missing Adler-32 checksum: %v", err)
		}
	}
	if end, err := atEOF(s.buf); err != nil {
		return out[:0], corrupt(name, "%v", err)
	} else if !end {
		return out[:0], corrupt(name, "trailing data after the zlib stream")
	}
	return out, nil
}

// zlibHeader reads and checks an RFC 1950 header: deflate, a valid check
// bits field, no preset dictionary (Python's zlib.compress writes none).
func zlibHeader(name string, r io.Reader) error {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return corrupt(name, "truncated zlib header: %v", err)
	}
	switch {
	case h[0]&0x0f != 8 || h[0]>>4 > 7:
		return corrupt(name, "not a deflate zlib stream (header %#x)", h[0])
	case (uint16(h[0])<<8|uint16(h[1]))%31 != 0:
		return corrupt(name, "zlib header check bits are wrong")
	case h[1]&0x20 != 0:
		return corrupt(name, "zlib stream needs a preset dictionary")
	}
	return nil
}

// bz2Stream is a pooled bzip2 decoder.
type bz2Stream struct {
	zr  *bzip2.Reader
	one [1]byte
}

var bz2Streams = sync.Pool{New: func() any {
	s := &bz2Stream{}
	s.zr, _ = bzip2.NewReader(eofReader{}, nil) // never fails
	return s
}}

func bz2From(name string, dst []byte, src io.Reader, size int) ([]byte, error) {
	s := bz2Streams.Get().(*bz2Stream)
	defer func() {
		_ = s.zr.Reset(eofReader{})
		bz2Streams.Put(s)
	}()
	if err := s.zr.Reset(src); err != nil {
		return dst[:0], corrupt(name, "%v", err)
	}
	out := outBuf(dst, size)
	// As in bz2Decompress: concatenated streams are read, anything else
	// after the last one is an error.
	if err := readExact(name, s.zr, out, s.one[:]); err != nil {
		return out[:0], err
	}
	return out, nil
}

// zstdStream is a pooled streaming zstd decoder with a buffer to peek at
// the frame header through.
type zstdStream struct {
	buf *bufio.Reader
	dec *zstd.Decoder
	one [1]byte
}

var zstdStreams = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1), // decode in the caller's goroutine
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
	)
	if err != nil {
		panic(err) // options are constant and valid
	}
	return &zstdStream{buf: bufio.NewReaderSize(eofReader{}, 64<<10), dec: d}
}}

func zstdFrom(name string, dst []byte, src io.Reader, size int) ([]byte, error) {
	s := zstdStreams.Get().(*zstdStream)
	defer func() {
		_ = s.dec.Reset(nil)
		s.buf.Reset(eofReader{})
		zstdStreams.Put(s)
	}()
	s.buf.Reset(src)
	head, err := s.buf.Peek(zstd.HeaderMaxSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return dst[:0], corrupt(name, "%v", err)
	}
	if _, err := zstdHeader(name, head, size); err != nil {
		return dst[:0], err
	}
	if err := s.dec.Reset(s.buf); err != nil {
		return dst[:0], corrupt(name, "%v", err)
	}
	out := outBuf(dst, size)
	// readExact also rejects a second frame that decodes to anything.
	if err := readExact(name, s.dec, out, s.one[:]); err != nil {
		return out[:0], err
	}
	return out, nil
}
