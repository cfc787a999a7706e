package crypt

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// NewOpenReader returns a reader of the plaintext sealed in r with key and
// the identity ad. It reads and authenticates one segment at a time, and
// returns no byte of a segment before that segment is authenticated; it
// returns io.EOF only after the last segment has been, at the end of r. A
// failure to authenticate is an error wrapping ErrAuth; errors reading r are
// returned as they are.
func NewOpenReader(r io.Reader, key *Key, ad []byte) io.Reader {
	return &openReader{r: r, key: key, ad: ad}
}

type openReader struct {
	r    io.Reader
	key  *Key
	ad   []byte
	aead cipher.AEAD // nil until the header is read

	enc   []byte // a sealed segment, and one byte of the next
	have  int    // bytes held in enc
	plain []byte // opened bytes not yet returned
	buf   []byte // plain's storage
	seg   int64
	done  bool // the last segment was opened
	err   error
}

func authErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAuth, fmt.Sprintf(format, args...))
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			o.err = io.EOF
			continue
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// next reads and opens the next segment (the header first).
func (o *openReader) next() error {
	if o.aead == nil {
		hdr := make([]byte, HeaderSize)
		if _, err := io.ReadFull(o.r, hdr); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return authErr("truncated: %d-byte header expected", HeaderSize)
			}
			return err
		}
		if subtle.ConstantTimeCompare(hdr[:len(magic)], []byte(magic)) != 1 {
			return authErr("not a sealed object (no %q header)", magic)
		}
		if hdr[len(magic)] != version {
			return authErr("sealed format version %d is not supported (only %d)", hdr[len(magic)], version)
		}
		o.aead = objectAEAD(o.key, hdr, o.ad)
		o.enc = make([]byte, encSize+1)
		o.buf = make([]byte, 0, SegmentSize)
	}
	// Read a whole segment and one byte more: only the end of r tells the
	// last segment from the others.
	n, err := io.ReadFull(o.r, o.enc[o.have:])
	o.have += n
	last := false
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case err != nil:
		return err
	}
	size := min(o.have, encSize)
	if size < TagSize {
		return authErr("segment %d is truncated", o.seg)
	}
	if o.seg >= maxSegments {
		return authErr("more than %d segments", int64(maxSegments))
	}
	var nonce [12]byte
	plain, aerr := o.aead.Open(o.buf[:0], segmentNonce(&nonce, o.seg, last), o.enc[:size], nil)
	if aerr != nil {
		return authErr("segment %d does not authenticate: wrong key, or the object was altered, truncated or moved", o.seg)
	}
	o.plain = plain
	o.seg++
	if last {
		o.done = true
		o.have = 0
	} else {
		o.enc[0] = o.enc[encSize]
		o.have = 1
	}
	return nil
}
