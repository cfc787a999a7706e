package compress

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Codec compresses and decompresses whole objects. Implementations are safe
// for concurrent use; encoders and decoders are pooled internally.
type Codec interface {
	// Name is the name recorded in Cinder's _metadata for objects this codec
	// compressed: the configured name lower-cased ("zlib", "gzip", "bz2",
	// "bzip2", "zstd"), or "none".
	Name() string

	// Compress appends the compressed form of src to dst[:0] and returns it.
	// If the compressed form would not be smaller than src (Cinder then stores
	// the object raw, recorded as "none"), it returns (dst[:0], false, nil),
	// possibly with a grown dst; it stops as soon as the output reaches
	// len(src) rather than compressing all of a large incompressible input.
	// Give dst a capacity of at least len(src) to avoid allocating.
	Compress(dst, src []byte) (out []byte, smaller bool, err error)

	// Decompress appends the decompressed form of src to dst[:0]; size is the
	// expected uncompressed length from the metadata. Output longer or shorter
	// than size, trailing data and corrupt input are errors wrapping
	// ErrCorrupt; it never allocates more than size bytes of output. Give dst
	// a capacity of at least size to avoid allocating.
	Decompress(dst, src []byte, size int) ([]byte, error)
}

// ErrCorrupt is wrapped by every Decompress error: the compressed data is
// corrupt or truncated, or does not decompress to the expected length.
var ErrCorrupt = errors.New("compress: corrupt or truncated compressed data")

// ErrUnknownCodec is wrapped by the error New and ForMetadata return for a
// compression name Cinder does not know.
var ErrUnknownCodec = errors.New("compress: unknown compression algorithm")

// Cinder's default levels (Python's zlib.compress, bz2.compress and
// python-zstd's zstd.compress).
const (
	defaultZlibLevel = 6
	defaultBz2Level  = 9
	defaultZstdLevel = 3
	maxLevel         = 22
)

// Options tunes the codecs built by New. The zero value gives Cinder's
// defaults.
type Options struct {
	// Level is the compression level; 0 means Cinder's default for the codec.
	// Valid ranges:
	//   - zlib/gzip: 1 (fastest) to 9 (smallest); default 6, as Python's
	//     zlib.compress. Python's level 0 (stored) is not available.
	//   - bz2/bzip2: 1 to 9, the block size in units of 100 kB; default 9, as
	//     Python's bz2.compress.
	//   - zstd: 1 to 22, mapped to the klauspost/compress encoder levels:
	//     1-2 SpeedFastest, 3-5 SpeedDefault (≈ zstd level 3, Cinder's
	//     default), 6-9 SpeedBetterCompression (≈ 7-8), 10-22
	//     SpeedBestCompression (≈ 11).
	//   - none: ignored.
	// Validate accepts 0 to 22; New rejects levels outside the codec's range.
	Level int

	// DisableSampling turns off the incompressibility check. By default,
	// Compress first compresses a sample of inputs larger than 128 KiB (four
	// 16 KiB windows spread over the input, deflate at its fastest level) and,
	// if the sample does not shrink below 97% of its size, returns
	// smaller=false without compressing the whole input. This only saves time
	// (random data otherwise costs the full compression time); a chunk whose
	// sample looks incompressible but whose whole would have compressed
	// slightly is stored raw, which is still valid Cinder format.
	DisableSampling bool
}

// Validate reports whether the options are usable by some codec: Level must
// be 0 to 22. New additionally checks Level against the chosen codec.
func (o Options) Validate() error {
	if o.Level < 0 || o.Level > maxLevel {
		return fmt.Errorf("compress: invalid Options.Level %d: use 0 (codec default), 1-9 for zlib/gzip and bz2/bzip2, or 1-22 for zstd", o.Level)
	}
	return nil
}

const validNames = "none, zlib, gzip, bz2, bzip2, zstd"

// kind identifies a codec family.
type kind int

const (
	kindNone kind = iota
	kindZlib
	kindBz2
	kindZstd
)

// lookup maps a lower-cased Cinder name to the codec family and the name to
// record in the metadata.
func lookup(lower string) (kind, string, bool) {
	switch lower {
	case "none", "off", "no":
		return kindNone, "none", true
	case "zlib", "gzip":
		return kindZlib, lower, true
	case "bz2", "bzip2":
		return kindBz2, lower, true
	case "zstd":
		return kindZstd, lower, true
	}
	return 0, "", false
}

func unknown(name string) error {
	return fmt.Errorf("%w: compression %q is not supported: use one of %s", ErrUnknownCodec, name, validNames)
}

// defaults holds one codec per accepted name, with default options, shared by
// ForMetadata and New(name, Options{}) so their pools are shared too.
var defaults = func() map[string]Codec {
	m := make(map[string]Codec)
	for _, n := range []string{"none", "off", "no", "zlib", "gzip", "bz2", "bzip2", "zstd"} {
		k, rec, _ := lookup(n)
		c, err := build(k, rec, Options{})
		if err != nil {
			panic(err)
		}
		m[n] = c
	}
	return m
}()

// New returns the codec for a Cinder compression name, case-insensitive and
// with surrounding white space trimmed (as in a cinder.conf value):
// none|off|no give the "none" codec (Name() "none"), zlib|gzip, bz2|bzip2 and
// zstd the compressing codecs, whose Name() is the lower-cased name. An
// unknown name gives an error wrapping ErrUnknownCodec that names the value
// and lists the valid names. Codecs with zero Options are shared.
func New(name string, opts Options) (Codec, error) {
	lower := strings.ToLower(strings.TrimSpace(name))
	k, rec, ok := lookup(lower)
	if !ok {
		return nil, unknown(name)
	}
	if opts == (Options{}) {
		return defaults[lower], nil
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return build(k, rec, opts)
}

// ForMetadata returns the codec to decompress an object whose metadata
// "compression" field is name: any name New accepts, case-insensitive (as
// Cinder's restore, it does not trim white space). Same errors as New. The
// codecs are shared, so calling it per object is cheap.
func ForMetadata(name string) (Codec, error) {
	c, ok := defaults[strings.ToLower(name)]
	if !ok {
		return nil, unknown(name)
	}
	return c, nil
}

func build(k kind, name string, opts Options) (Codec, error) {
	sample := !opts.DisableSampling
	badLevel := func(valid string) error {
		return fmt.Errorf("compress: invalid Options.Level %d for %s: use 0 (default) or %s", opts.Level, name, valid)
	}
	switch k {
	case kindNone:
		return noneCodec{}, nil
	case kindZlib:
		level := opts.Level
		if level == 0 {
			level = defaultZlibLevel
		}
		if level < 1 || level > 9 {
			return nil, badLevel("1-9")
		}
		return newZlib(name, level, sample), nil
	case kindBz2:
		level := opts.Level
		if level == 0 {
			level = defaultBz2Level
		}
		if level < 1 || level > 9 {
			return nil, badLevel("1-9")
		}
		return newBz2(name, level, sample), nil
	case kindZstd:
		level := opts.Level
		if level == 0 {
			level = defaultZstdLevel
		}
		if level < 1 || level > maxLevel {
			return nil, badLevel("1-22")
		}
		return newZstd(name, level, sample), nil
	}
	panic("unreachable")
}

// corrupt returns an error wrapping ErrCorrupt.
func corrupt(codec, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, codec, fmt.Sprintf(format, args...))
}

// checkSize rejects a negative expected length.
func checkSize(codec string, size int) error {
	if size < 0 {
		return corrupt(codec, "invalid expected length %d", size)
	}
	return nil
}

// outBuf returns a slice of length size backed by dst if it is big enough.
func outBuf(dst []byte, size int) []byte {
	if cap(dst) >= size {
		return dst[:size]
	}
	return make([]byte, size)
}

// errNotSmaller aborts compression once the output reaches the input size.
var errNotSmaller = errors.New("compress: output not smaller than input")

// encodeBounded runs a stream encoder (zlib, bz2, zstd) over src into a
// buffer that refuses to grow to len(src): compression that would not make
// the object smaller stops as soon as that is known. reset points the
// encoder at the buffer; out is the encoder's own buffer, emptied again
// afterwards so the pooled encoder holds no reference to the result.
//
// src is written in feedPiece pieces. Once the output exceeds w.extra
// bytes, the consumed prefix goes to w.release whenever the output is
// certain to end smaller than src (see certainlySmaller), and compression
// gives up while it is not. backlog is how much consumed input the encoder
// may hold back without output.
func encodeBounded(dst, src []byte, out *boundedBuffer, reset func(io.Writer) error, enc io.WriteCloser, backlog int, w within) ([]byte, bool, error) {
	*out = boundedBuffer{buf: compressTarget(dst, len(src)), limit: len(src) - 1}
	err := reset(out)
	for done := 0; err == nil && done < len(src); {
		n := min(feedPiece, len(src)-done)
		if _, err = enc.Write(src[done : done+n]); err != nil {
			break
		}
		done += n
		if w.release == nil || len(out.buf) <= w.extra {
			continue
		}
		if !certainlySmaller(len(out.buf), done, len(src), backlog) {
			err = errNotSmaller // not released yet: it never is once certain
			break
		}
		w.release(done)
	}
	if err == nil {
		err = enc.Close()
	}
	buf := out.buf
	out.buf = nil
	switch {
	case errors.Is(err, errNotSmaller):
		return buf[:0], false, nil
	case err != nil:
		return buf[:0], false, err
	}
	return buf, true, nil
}

// within bounds what compression holds (CompressWithin); the zero value
// sets no bound.
type within struct {
	extra   int
	release func(n int)
}

// feedPiece is how much input encodeBounded writes to an encoder at a time:
// the granularity at which consumed input can be released.
const feedPiece = 1 << 20

// certainlySmaller reports whether an encoder that has written out bytes
// after consuming done of n input bytes, holding back at most backlog of
// them, must finish below n bytes whatever the rest of the input is. The
// rest is assumed to expand by 1/64 plus 1 KiB, more than any of the
// codecs' worst cases (stored deflate blocks, raw zstd blocks and bzip2 on
// random data all stay under 1%, plus headers and trailers).
func certainlySmaller(out, done, n, backlog int) bool {
	rest := min(n, n-done+backlog)
	return out+rest+rest/64+1024 < n
}

// boundedBuffer is an io.Writer appending to buf, failing with errNotSmaller
// when buf would grow beyond limit bytes.
type boundedBuffer struct {
	buf   []byte
	limit int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if len(p) > b.limit-len(b.buf) {
		return 0, errNotSmaller
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// compressTarget prepares dst for a compressed form that must stay below
// len(src) bytes: it returns dst[:0] with capacity for len(src)-1 bytes.
func compressTarget(dst []byte, srcLen int) []byte {
	if cap(dst) < srcLen-1 {
		return make([]byte, 0, srcLen-1)
	}
	return dst[:0]
}

// readExact reads exactly len(out) bytes of decompressed output from r and
// then requires r to be at the end of its stream; one is scratch space.
func readExact(codec string, r io.Reader, out []byte, one []byte) error {
	n, zero := 0, 0
	for n < len(out) {
		m, err := r.Read(out[n:])
		n += m
		if err == io.EOF {
			if n < len(out) {
				return corrupt(codec, "decompressed %d bytes, expected %d", n, len(out))
			}
			break
		}
		if err != nil {
			return corrupt(codec, "%v", err)
		}
		if m == 0 {
			if zero++; zero > 100 {
				return corrupt(codec, "%v", io.ErrNoProgress)
			}
		}
	}
	for zero = 0; ; {
		m, err := r.Read(one)
		if m > 0 {
			return corrupt(codec, "decompressed data longer than the expected %d bytes", len(out))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return corrupt(codec, "%v", err)
		}
		if zero++; zero > 100 {
			return corrupt(codec, "%v", io.ErrNoProgress)
		}
	}
}

// Sampling: inputs larger than sampleMinLen are probed with sampleWindows
// windows of sampleWindow bytes, compressed with deflate at BestSpeed. The
// windows sit at golden-ratio offsets rather than evenly spaced ones: even
// spacing aliases with regular layouts (a volume that alternates 32 KiB of
// random and text data would show only its random half at offsets 0, 1/4,
// 1/2, 3/4), a low-discrepancy sequence does not.
const (
	sampleWindow  = 4 << 10
	sampleWindows = 16
	sampleMinLen  = 2 * sampleWindows * sampleWindow
	// Compress the whole input only if the sample shrinks below
	// samplePercent% of its size.
	samplePercent = 97
)

// goldenFrac is the fractional part of the golden ratio.
const goldenFrac = 0.6180339887498949

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
}

type sampler struct {
	w   *flate.Writer
	cnt countWriter
}

var samplers = sync.Pool{New: func() any {
	s := new(sampler)
	s.w, _ = flate.NewWriter(&s.cnt, flate.BestSpeed)
	return s
}}

// worthCompressing reports whether src may compress: true for small inputs,
// else whether a sample of it compresses below samplePercent%.
func worthCompressing(src []byte) bool {
	if len(src) <= sampleMinLen {
		return true
	}
	s := samplers.Get().(*sampler)
	defer samplers.Put(s)
	s.cnt.n = 0
	s.w.Reset(&s.cnt)
	span := float64(len(src) - sampleWindow)
	for i := range sampleWindows {
		_, frac := math.Modf(float64(i) * goldenFrac)
		off := int(frac * span)
		_, _ = s.w.Write(src[off : off+sampleWindow])
	}
	_ = s.w.Close()
	return s.cnt.n*100 < samplePercent*sampleWindows*sampleWindow
}

// CompressWithin is c.Compress(dst, src) holding at most about
// len(src)+extra bytes of input and output together, so that a backup's
// memory stays within its bound whatever the compression ratio.
//
// While the output is at most extra bytes, src is kept whole. Beyond that,
// compression hands each consumed prefix of src to release once the output
// is certain to end smaller than src (release(n): src[:n] is no longer
// needed and will not be stored raw, so its memory may be given back); if
// that is not yet certain, it gives up and returns smaller=false with src
// untouched, and the caller stores src raw, as for data that does not
// compress. release is called with growing n and must not touch src[n:].
// With extra >= len(src), CompressWithin is Compress.
//
// Codecs other than this package's are compressed with Compress.
func CompressWithin(c Codec, dst, src []byte, extra int, release func(n int)) ([]byte, bool, error) {
	w := within{extra: extra, release: release}
	switch c := c.(type) {
	case *zlibCodec:
		return c.compress(dst, src, w)
	case *bz2Codec:
		return c.compress(dst, src, w)
	case *zstdCodec:
		return c.compress(dst, src, w)
	}
	return c.Compress(dst, src)
}

// EncoderMemory estimates the bytes one of c's encoders holds while it
// compresses, besides its input and output: the state a backup keeps per
// worker. The figures are upper bounds of what TestEncoderMemory measures:
// none 0, zlib 1.5 MiB, zstd 8 MiB at levels up to 5 (its window is 2 MiB;
// 24 MiB above), bz2 2 MiB plus 2.5 MiB per level (24.5 MiB at Cinder's 9).
func EncoderMemory(c Codec) int {
	switch c := c.(type) {
	case *zlibCodec:
		return 3 << 19
	case *zstdCodec:
		if c.level <= zstd.SpeedDefault {
			return 8 << 20
		}
		return 24 << 20
	case *bz2Codec:
		return (5*c.level + 4) << 19
	}
	return 0
}
