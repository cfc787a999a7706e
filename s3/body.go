package s3

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"io"
)

// errShortBody is wrapped by the error of a Put whose body ends before its size.
var errShortBody = errors.New("the body ended before the size given to Put")

// section is the part [start, start+size) of a caller's body as a
// ReadSeeker of its own, so the SDK can read it, rewind it (to sign it, to
// compute a checksum) and know its length, without a copy. A body that ends
// early is an error (io.ErrUnexpectedEOF), never a short object.
type section struct {
	r     io.ReadSeeker
	start int64
	size  int64
	pos   int64 // relative to start
	// seeked is whether r may not be at start+pos (after a Seek of ours
	// that was not followed by a Read yet).
	seeked bool
}

func newSection(r io.ReadSeeker, start, size int64) *section {
	return &section{r: r, start: start, size: size, seeked: true}
}

func (s *section) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if s.seeked {
		if _, err := s.r.Seek(s.start+s.pos, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek the body: %w", err)
		}
		s.seeked = false
	}
	if rest := s.size - s.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.r.Read(p)
	s.pos += int64(n)
	if err == io.EOF {
		if s.pos < s.size {
			return n, fmt.Errorf("%w (%d of %d bytes): %w", errShortBody, s.pos, s.size, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

// Seek moves within the section; the caller's body is sought lazily, on
// the next Read.
func (s *section) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.size
	default:
		return s.pos, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return s.pos, fmt.Errorf("seek to %d: negative position", offset)
	}
	if offset != s.pos {
		s.pos = offset
		s.seeked = true
	}
	return s.pos, nil
}

// md5 returns the MD5 of the whole section and rewinds it.
func (s *section) md5() ([]byte, error) {
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := md5.New()
	if _, err := io.Copy(h, s); err != nil {
		return nil, err
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// errMD5Mismatch is wrapped by the error of a Put whose body does not have
// the MD5 the caller gave.
var errMD5Mismatch = errors.New("the body's MD5 differs from PutOptions.ContentMD5")

// streamBody is the body of a multipart upload: exactly size bytes of r,
// read once, front to back. When want is set it hashes what it serves and,
// at the end, fails instead of reporting io.EOF if the MD5 differs, so the
// upload is aborted before it is completed.
type streamBody struct {
	r      io.Reader
	left   int64
	h      hash.Hash
	want   []byte
	endErr error // what Read returns once the body is served: io.EOF or a mismatch
}

func newStreamBody(r io.Reader, size int64, want []byte) *streamBody {
	b := &streamBody{r: r, left: size, want: want}
	if want != nil {
		b.h = md5.New()
	}
	return b
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, b.end()
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.h != nil {
		b.h.Write(p[:n])
	}
	if err == io.EOF {
		if b.left > 0 {
			return n, fmt.Errorf("%w (%d bytes missing): %w", errShortBody, b.left, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

func (b *streamBody) end() error {
	if b.endErr == nil {
		b.endErr = io.EOF
		if b.h != nil {
			if got := b.h.Sum(nil); !bytes.Equal(got, b.want) {
				b.endErr = fmt.Errorf("%w (%x, not %x)", errMD5Mismatch, got, b.want)
			}
		}
	}
	return b.endErr
}
