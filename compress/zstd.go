package compress

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdCodec writes one Zstandard frame per object with Frame_Content_Size
// set, as python-zstd's zstd.compress (which Cinder uses); python-zstd's
// zstd.decompress rejects frames without a content size.
//
// Inputs are encoded by the streaming encoder, told the content size in
// advance, so that encoding stops as soon as the output cannot end smaller
// and consumed input can be released (CompressReleasing); inputs under
// zstdSmall bytes by EncodeAll in a single-segment frame.
type zstdCodec struct {
	name   string
	level  zstd.EncoderLevel
	sample bool
	// Streaming encoders with concurrency 1 (synchronous), each used by
	// one goroutine at a time.
	writers sync.Pool // *zstdWriter
	// Encoders forcing a single-segment frame header: EncodeAll only
	// writes the content size of inputs under 256 bytes in single-segment
	// frames.
	smallEncoders sync.Pool
}

type zstdWriter struct {
	enc *zstd.Encoder
	out boundedBuffer
}

// zstdWindow is the encoder window for levels up to SpeedDefault.
const zstdWindow = 2 << 20

// zstdSmall is the input size below which EncodeAll would omit the frame
// content size unless the frame is single-segment.
const zstdSmall = 256

// zstdBacklog bounds the input the synchronous streaming encoder holds back:
// one 128 KiB block being filled.
const zstdBacklog = 256 << 10

func newZstd(name string, level int, sample bool) *zstdCodec {
	c := &zstdCodec{name: name, level: zstd.EncoderLevelFromZstd(level), sample: sample}
	c.writers.New = func() any { return &zstdWriter{enc: c.newEncoder(false)} }
	c.smallEncoders.New = func() any { return c.newEncoder(true) }
	return c
}

func (c *zstdCodec) newEncoder(single bool) *zstd.Encoder {
	opts := []zstd.EOption{
		zstd.WithEncoderLevel(c.level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
	}
	if c.level <= zstd.SpeedDefault {
		// libzstd levels 3-6 use a 2 MiB window (window log 21) on large
		// inputs; klauspost's default 8 MiB costs 16 MiB of history per
		// encoder for little gain on backup chunks.
		opts = append(opts, zstd.WithWindowSize(zstdWindow))
	}
	if single {
		opts = append(opts, zstd.WithSingleSegment(true))
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		panic(err) // options are constant and valid
	}
	return e
}

func (c *zstdCodec) Name() string { return c.name }

func (c *zstdCodec) Compress(dst, src []byte) ([]byte, bool, error) {
	return c.compress(dst, src, within{})
}

func (c *zstdCodec) compress(dst, src []byte, bound within) ([]byte, bool, error) {
	if len(src) == 0 || (c.sample && !worthCompressing(src)) {
		return dst[:0], false, nil
	}
	if len(src) < zstdSmall {
		e := c.smallEncoders.Get().(*zstd.Encoder)
		out := e.EncodeAll(src, compressTarget(dst, len(src)))
		c.smallEncoders.Put(e)
		if len(out) >= len(src) {
			return out[:0], false, nil
		}
		return out, true, nil
	}
	w := c.writers.Get().(*zstdWriter)
	defer c.writers.Put(w) // the encoder writes to w.out, which encodeBounded empties
	reset := func(out io.Writer) error { w.enc.ResetContentSize(out, int64(len(src))); return nil }
	return encodeBounded(dst, src, &w.out, reset, w.enc, zstdBacklog, bound)
}

func (c *zstdCodec) Decompress(dst, src []byte, size int) ([]byte, error) {
	return zstdDecompress(c.name, dst, src, size)
}

// zstdMaxWindow bounds the window of non-single-segment frames, as
// libzstd's default decoder limit (window log 27). Python's and klauspost's
// level-3 encoders use at most 8 MiB.
const zstdMaxWindow = 128 << 20

var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecodeAllCapLimit(true), // never grow dst beyond cap
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderLowmem(false),
	)
	if err != nil {
		panic(err)
	}
	return d
}}

func zstdDecompress(name string, dst, src []byte, size int) ([]byte, error) {
	if err := checkSize(name, size); err != nil {
		return dst[:0], err
	}
	h, err := zstdHeader(name, src, size)
	if err != nil {
		return dst[:0], err
	}
	n, err := zstdFrameLen(src, h.HeaderSize, h.HasCheckSum)
	if err != nil {
		return dst[:0], corrupt(name, "%v", err)
	}
	if n != len(src) {
		return dst[:0], corrupt(name, "%d bytes of trailing data after the frame", len(src)-n)
	}
	var buf []byte
	if cap(dst) >= size {
		buf = dst[:0:size]
	} else {
		buf = make([]byte, 0, size)
	}
	d := zstdDecoders.Get().(*zstd.Decoder)
	out, err := d.DecodeAll(src, buf)
	zstdDecoders.Put(d)
	if err != nil {
		return buf[:0], corrupt(name, "%v", err)
	}
	if len(out) != size {
		return buf[:0], corrupt(name, "decompressed %d bytes, expected %d", len(out), size)
	}
	if cap(dst) >= size {
		return dst[:size], nil // same memory as out, with dst's capacity
	}
	return out, nil
}

// zstdHeader decodes the frame header at the start of src and checks it is
// one Cinder writes: a data frame recording its content size, size bytes.
func zstdHeader(name string, src []byte, size int) (zstd.Header, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return h, corrupt(name, "truncated frame header")
		}
		return h, corrupt(name, "%v", err)
	}
	switch {
	case h.Skippable:
		return h, corrupt(name, "skippable frame instead of a data frame")
	case !h.HasFCS:
		return h, corrupt(name, "frame without content size (python-zstd cannot read it either)")
	case h.FrameContentSize != uint64(size):
		return h, corrupt(name, "frame content size %d, expected %d", h.FrameContentSize, size)
	}
	return h, nil
}

// zstdFrameLen returns the length of the frame starting at src[0], whose
// header is hdrLen bytes long, by walking its block headers.
func zstdFrameLen(src []byte, hdrLen int, checksum bool) (int, error) {
	pos := hdrLen
	for {
		if len(src)-pos < 3 {
			return 0, errors.New("truncated frame")
		}
		bh := uint32(src[pos]) | uint32(src[pos+1])<<8 | uint32(src[pos+2])<<16
		pos += 3
		n := int(bh >> 3)
		switch (bh >> 1) & 3 {
		case 0, 2: // raw, compressed
		case 1: // RLE: one byte repeated
			n = 1
		default:
			return 0, errors.New("reserved block type")
		}
		if len(src)-pos < n {
			return 0, errors.New("truncated frame")
		}
		pos += n
		if bh&1 != 0 { // last block
			break
		}
	}
	if checksum {
		if len(src)-pos < 4 {
			return 0, errors.New("truncated frame checksum")
		}
		pos += 4
	}
	return pos, nil
}
