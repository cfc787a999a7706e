package compress

import (
	"bytes"
	"sync"

	"github.com/dsnet/compress/bzip2"
)

// bz2Codec writes bzip2 streams, as Python's bz2.compress; it serves both
// "bz2" and "bzip2".
type bz2Codec struct {
	name    string
	level   int
	sample  bool
	writers sync.Pool // *bz2Writer
}

type bz2Writer struct {
	zw  *bzip2.Writer
	out boundedBuffer
}

func newBz2(name string, level int, sample bool) *bz2Codec {
	c := &bz2Codec{name: name, level: level, sample: sample}
	c.writers.New = func() any {
		w := new(bz2Writer)
		// dsnet's default level is 6; Cinder's (Python's) is 9, so the level
		// is always passed explicitly. The level is the block size in
		// 100 kB units and is written in the header ("BZh9").
		zw, err := bzip2.NewWriter(&w.out, &bzip2.WriterConfig{Level: c.level})
		if err != nil {
			panic(err) // level validated by build
		}
		w.zw = zw
		return w
	}
	return c
}

func (c *bz2Codec) Name() string { return c.name }

func (c *bz2Codec) Compress(dst, src []byte) ([]byte, bool, error) {
	return c.compress(dst, src, within{})
}

func (c *bz2Codec) compress(dst, src []byte, bound within) ([]byte, bool, error) {
	if len(src) == 0 || (c.sample && !worthCompressing(src)) {
		return dst[:0], false, nil
	}
	w := c.writers.Get().(*bz2Writer)
	defer c.writers.Put(w) // Reset reinitialises everything, even after an error
	// A block holds up to level x 100 kB of input (after bzip2's run-length
	// step, which only shortens input that compresses anyway).
	return encodeBounded(dst, src, &w.out, w.zw.Reset, w.zw, c.level*100_000+64<<10, bound)
}

func (c *bz2Codec) Decompress(dst, src []byte, size int) ([]byte, error) {
	return bz2Decompress(c.name, dst, src, size)
}

type bz2Reader struct {
	br  bytes.Reader
	zr  *bzip2.Reader
	one [1]byte
}

var bz2Readers = sync.Pool{New: func() any {
	r := new(bz2Reader)
	r.zr, _ = bzip2.NewReader(&r.br, nil) // never fails
	return r
}}

func bz2Decompress(name string, dst, src []byte, size int) ([]byte, error) {
	if err := checkSize(name, size); err != nil {
		return dst[:0], err
	}
	r := bz2Readers.Get().(*bz2Reader)
	defer func() {
		r.br.Reset(nil)
		bz2Readers.Put(r)
	}()
	r.br.Reset(src)
	if err := r.zr.Reset(&r.br); err != nil {
		return dst[:0], corrupt(name, "%v", err)
	}
	out := outBuf(dst, size)
	// dsnet's reader decodes concatenated streams, as Python's
	// bz2.decompress does; anything after the last stream that is not
	// another stream is an error (Python would ignore it).
	if err := readExact(name, r.zr, out, r.one[:]); err != nil {
		return out[:0], err
	}
	return out, nil
}
