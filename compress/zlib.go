package compress

import (
	"bytes"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// zlibCodec writes RFC 1950 zlib streams, as Python's zlib.compress; it
// serves both "zlib" and "gzip" (Cinder's "gzip" is zlib too).
type zlibCodec struct {
	name    string
	level   int
	sample  bool
	writers sync.Pool // *zlibWriter
}

type zlibWriter struct {
	zw  *zlib.Writer
	out boundedBuffer
}

func newZlib(name string, level int, sample bool) *zlibCodec {
	c := &zlibCodec{name: name, level: level, sample: sample}
	c.writers.New = func() any {
		w := new(zlibWriter)
		zw, err := zlib.NewWriterLevel(&w.out, c.level)
		if err != nil {
			panic(err) // level validated by build
		}
		w.zw = zw
		return w
	}
	return c
}

func (c *zlibCodec) Name() string { return c.name }

func (c *zlibCodec) Compress(dst, src []byte) ([]byte, bool, error) {
	return c.compress(dst, src, within{})
}

// zlibBacklog bounds the input a deflate encoder holds back: a block is at
// most 16K tokens, one per byte of input that does not compress.
const zlibBacklog = 256 << 10

func (c *zlibCodec) compress(dst, src []byte, bound within) ([]byte, bool, error) {
	if len(src) == 0 || (c.sample && !worthCompressing(src)) {
		return dst[:0], false, nil
	}
	w := c.writers.Get().(*zlibWriter)
	defer c.writers.Put(w)
	reset := func(out io.Writer) error { w.zw.Reset(out); return nil }
	return encodeBounded(dst, src, &w.out, reset, w.zw, zlibBacklog, bound)
}

func (c *zlibCodec) Decompress(dst, src []byte, size int) ([]byte, error) {
	return zlibDecompress(c.name, dst, src, size)
}

type zlibReader struct {
	br  bytes.Reader
	zr  io.ReadCloser // also a zlib.Resetter
	one [1]byte
}

// emptyZlib is zlib.compress(b"").
var emptyZlib = []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}

var zlibReaders = sync.Pool{New: func() any {
	r := new(zlibReader)
	r.br.Reset(emptyZlib)
	zr, err := zlib.NewReader(&r.br)
	if err != nil {
		panic(err)
	}
	r.zr = zr
	return r
}}

func zlibDecompress(name string, dst, src []byte, size int) ([]byte, error) {
	if err := checkSize(name, size); err != nil {
		return dst[:0], err
	}
	r := zlibReaders.Get().(*zlibReader)
	defer func() {
		r.br.Reset(nil)
		zlibReaders.Put(r)
	}()
	r.br.Reset(src)
	if err := r.zr.(zlib.Resetter).Reset(&r.br, nil); err != nil {
		return dst[:0], corrupt(name, "%v", err)
	}
	out := outBuf(dst, size)
	if err := readExact(name, r.zr, out, r.one[:]); err != nil {
		return out[:0], err
	}
	if n := r.br.Len(); n != 0 {
		return out[:0], corrupt(name, "%d bytes of trailing data after the zlib stream", n)
	}
	return out, nil
}
