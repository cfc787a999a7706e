package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Format constants (see the package documentation).
const (
	// SegmentSize is the plaintext each segment holds (the last one less).
	SegmentSize = 64 << 10
	// HeaderSize is the length of a sealed object's header.
	HeaderSize = len(magic) + 1 + saltSize
	// TagSize is the authentication tag each segment adds.
	TagSize = 16

	version  = 1
	saltSize = 32
	encSize  = SegmentSize + TagSize // a full sealed segment
	// maxSegments keeps segment numbers within the nonce's 32 bits.
	maxSegments = 1 << 32
)

const magic = "CBSE"

// Overhead returns how many bytes sealing adds to n bytes of plaintext.
func Overhead(n int64) int64 {
	return int64(HeaderSize) + TagSize*segments(n)
}

// segments returns the number of segments n bytes of plaintext take.
func segments(n int64) int64 {
	if n <= 0 {
		return 1
	}
	return (n + SegmentSize - 1) / SegmentSize
}

// Seal appends the sealed form of plaintext, bound to key and the
// identity ad, to dst and returns the result. Give dst a capacity of
// len(dst) + len(plaintext) + Overhead(len(plaintext)) to reuse it.
func Seal(dst, plaintext []byte, key *Key, ad []byte) []byte {
	return sealWith(dst, plaintext, key, ad, newHeader())
}

// sealWith is Seal with a given header (tests fix the salt).
func sealWith(dst, plaintext []byte, key *Key, ad, hdr []byte) []byte {
	n := int64(len(plaintext))
	if segments(n) > maxSegments {
		panic("crypt: plaintext too large to seal") // 256 TiB: no object is
	}
	dst = grow(dst, int(n+Overhead(n)))
	dst = append(dst, hdr...)
	aead := objectAEAD(key, hdr, ad)
	var nonce [12]byte
	last := segments(n) - 1
	for i := int64(0); i <= last; i++ {
		seg := plaintext[i*SegmentSize : min((i+1)*SegmentSize, n)]
		dst = aead.Seal(dst, segmentNonce(&nonce, i, i == last), seg, nil)
	}
	return dst
}

// grow returns dst with room for n more bytes.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// newHeader returns a header with a fresh random salt.
func newHeader() []byte {
	hdr := make([]byte, HeaderSize)
	copy(hdr, magic)
	hdr[len(magic)] = version
	_, _ = rand.Read(hdr[len(magic)+1:]) // crypto/rand.Read never fails
	return hdr
}

// objectAEAD returns the AES-256-GCM of one object: its key is derived from
// the subkey, the header's salt and the object's identity.
func objectAEAD(key *Key, hdr, ad []byte) cipher.AEAD {
	info := make([]byte, 0, 32+len(ad))
	info = append(info, "chunkback object v1\x00"...)
	info = append(info, hdr[:len(magic)+1]...)
	info = append(info, ad...)
	k, err := hkdf.Key(sha256.New, key[:], hdr[len(magic)+1:HeaderSize], string(info), KeySize)
	if err != nil {
		panic(err) // only for lengths past 255 hash blocks; ours is one
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		panic(err) // only for a key that is not 16, 24 or 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // only for a block size other than 16
	}
	return aead
}

// segmentNonce fills n with segment i's nonce.
func segmentNonce(n *[12]byte, i int64, last bool) []byte {
	*n = [12]byte{}
	binary.BigEndian.PutUint32(n[7:11], uint32(i))
	if last {
		n[11] = 1
	}
	return n[:]
}

// SealReader reads the sealed form of a plaintext that it reads, a segment
// at a time, from a seekable source: the sealed form of a large object is
// never held whole. Its salt is fixed when it is made, so seeking back and
// reading again yields the same bytes (a retried upload sends what the
// first attempt did).
type SealReader struct {
	src  io.ReadSeeker
	size int64
	hdr  []byte
	aead cipher.AEAD

	pos    int64 // position in the sealed stream
	srcPos int64 // position of src, relative to where it started; -1 unknown
	base   int64 // src's position when the reader was made
	seg    int64 // segment held in enc, or -1
	enc    []byte
	plain  []byte
}

// NewSealReader returns a reader of the sealed form of the size bytes src
// holds from its current position on.
func NewSealReader(src io.ReadSeeker, size int64, key *Key, ad []byte) (*SealReader, error) {
	if size < 0 || segments(size) > maxSegments {
		return nil, fmt.Errorf("crypt: cannot seal %d bytes", size)
	}
	base, err := src.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	hdr := newHeader()
	return &SealReader{src: src, size: size, hdr: hdr, aead: objectAEAD(key, hdr, ad), base: base, seg: -1}, nil
}

// Size returns the length of the sealed stream.
func (r *SealReader) Size() int64 { return r.size + Overhead(r.size) }

// Read reads sealed bytes.
func (r *SealReader) Read(p []byte) (int, error) {
	if r.pos >= r.Size() {
		return 0, io.EOF
	}
	if r.pos < int64(HeaderSize) {
		n := copy(p, r.hdr[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	off := r.pos - int64(HeaderSize)
	seg := off / encSize
	if seg != r.seg {
		if err := r.sealSegment(seg); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.enc[off-seg*encSize:])
	r.pos += int64(n)
	return n, nil
}

// sealSegment reads plaintext segment i from src and seals it into enc.
func (r *SealReader) sealSegment(i int64) error {
	r.seg = -1
	start := i * SegmentSize
	n := min(SegmentSize, r.size-start)
	if r.srcPos != start {
		if _, err := r.src.Seek(r.base+start, io.SeekStart); err != nil {
			r.srcPos = -1
			return err
		}
		r.srcPos = start
	}
	if r.plain == nil {
		r.plain = make([]byte, SegmentSize)
		r.enc = make([]byte, 0, encSize)
	}
	got, err := io.ReadFull(r.src, r.plain[:n])
	r.srcPos += int64(got)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("crypt: the plaintext ended at byte %d, before its size %d", start+int64(got), r.size)
	}
	if err != nil {
		return err
	}
	var nonce [12]byte
	r.enc = r.aead.Seal(r.enc[:0], segmentNonce(&nonce, i, i == segments(r.size)-1), r.plain[:n], nil)
	r.seg = i
	return nil
}

// Seek sets the position in the sealed stream (io.SeekStart, io.SeekCurrent
// or io.SeekEnd).
func (r *SealReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.Size()
	}
	if offset < 0 {
		return r.pos, errors.New("crypt: seek to a negative position")
	}
	r.pos = offset
	return offset, nil
}
