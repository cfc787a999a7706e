package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the generated source: the reference workload is a 1 GiB
// semi-compressible file, half random and half text, in regions of a few MiB.
const (
	// DefaultSeed seeds every generator when no seed is given.
	DefaultSeed = 1
	// DefaultMinRegion and DefaultMaxRegion bound the length of a region.
	DefaultMinRegion = 1 << 20
	DefaultMaxRegion = 8 << 20
	// regionAlign is the granularity of region lengths.
	regionAlign = 4096
	// genBuf is the size of the buffer WriteSource fills and writes.
	genBuf = 1 << 20
)

// SourceOptions describes a generated source. The same options always give
// the same bytes, on every platform and Go version: the generators are
// math/rand/v2's ChaCha8 and PCG, whose outputs are specified, and no
// floating point is involved.
type SourceOptions struct {
	// Size is the length in bytes.
	Size int64
	// Seed selects the content. 0 means DefaultSeed.
	Seed uint64
	// MinRegion and MaxRegion bound each region's length (rounded down to a
	// multiple of 4 KiB). Defaults DefaultMinRegion and DefaultMaxRegion.
	MinRegion, MaxRegion int64
	// Mix sets the shares of text and zeros. nil is the reference mix, half
	// random and half text, no zeros; Mix{Compressible: 0.5} gives the same
	// bytes.
	Mix *Mix
}

// Mix is the make-up of a generated source: the share of its bytes that is
// text (compressible about 3:1), the share that is zeros (extents chunkback
// skips), and the rest random (incompressible).
type Mix struct {
	// Compressible is the share of text, in [0, 1].
	Compressible float64
	// Zeros is the share of all-zero bytes, in [0, 1 - Compressible].
	Zeros float64
}

// Validate checks that both shares are in [0, 1] and sum to at most 1.
func (m Mix) Validate() error {
	if !(m.Compressible >= 0 && m.Zeros >= 0 && m.Compressible+m.Zeros <= 1+1e-9) {
		return fmt.Errorf("bench: compressible share %v and zero share %v must be in [0, 1] and sum to at most 1", m.Compressible, m.Zeros)
	}
	return nil
}

// String describes the mix: "50% text, 0% zeros, 50% random".
func (m Mix) String() string {
	return fmt.Sprintf("%g%% text, %g%% zeros, %g%% random", pct(m.Compressible), pct(m.Zeros), pct(max(0, 1-m.Compressible-m.Zeros)))
}

func pct(f float64) float64 { return math.Round(f*1000) / 10 }

// ppm converts a share to parts per million, so that region lengths are
// computed in integers.
func ppm(f float64) int64 { return int64(math.Round(f * 1e6)) }

func (o SourceOptions) withDefaults() (SourceOptions, error) {
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.MinRegion == 0 {
		o.MinRegion = DefaultMinRegion
	}
	if o.MaxRegion == 0 {
		o.MaxRegion = max(DefaultMaxRegion, o.MinRegion)
	}
	if o.Mix != nil {
		if err := o.Mix.Validate(); err != nil {
			return o, err
		}
	}
	switch {
	case o.Size < 0:
		return o, fmt.Errorf("bench: source size %d is negative", o.Size)
	case o.MinRegion < regionAlign || o.MaxRegion < o.MinRegion:
		return o, fmt.Errorf("bench: region lengths [%d, %d] must satisfy %d <= min <= max", o.MinRegion, o.MaxRegion, regionAlign)
	}
	return o, nil
}

// Region is one stretch of a generated source.
type Region struct {
	// Offset and Length place the region in the source.
	Offset, Length int64
	// Text is true for a text region; Zero for an all-zero one; neither
	// for a random one.
	Text, Zero bool
}

// Regions returns the layout of the source o describes, in groups: a
// length n is drawn for each group uniformly from [MinRegion, MaxRegion] (in
// steps of 4 KiB), and the group's 2n bytes are a random region, a text region
// and a zero region in the shares of o.Mix (rounded to 4 KiB; empty regions
// are left out). The reference mix (nil, or half text and no zeros) thus
// gives pairs of a random and a text region of the same length, and a source
// half random and half text (to within the last, cut-off group). Random
// regions do not compress; text regions, log lines and prose drawn from a
// small vocabulary, compress about 3:1 with zlib.
func (o SourceOptions) Regions() ([]Region, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	mix := Mix{Compressible: 0.5}
	if o.Mix != nil {
		mix = *o.Mix
	}
	textPPM, zeroPPM := ppm(mix.Compressible), ppm(mix.Zeros)
	r := rand.New(rand.NewPCG(o.Seed, 0x7265_6769_6f6e)) // "region"
	steps := (o.MaxRegion-o.MinRegion)/regionAlign + 1
	var out []Region
	for off := int64(0); off < o.Size; {
		units := 2 * (o.MinRegion/regionAlign + r.Int64N(steps)) // of 4 KiB
		text := (units*textPPM + 500_000) / 1_000_000
		zero := min((units*zeroPPM+500_000)/1_000_000, units-text)
		parts := []Region{{Length: units - text - zero}, {Length: text, Text: true}, {Length: zero, Zero: true}}
		for _, p := range parts {
			l := min(p.Length*regionAlign, o.Size-off)
			if l <= 0 {
				continue
			}
			p.Offset, p.Length = off, l
			out = append(out, p)
			off += l
		}
	}
	return out, nil
}

// WriteSource writes the source o describes to w, in writes of 1 MiB, with
// memory bounded whatever the size.
func WriteSource(w io.Writer, o SourceOptions) error {
	regions, err := o.Regions()
	if err != nil {
		return err
	}
	o, _ = o.withDefaults()
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], o.Seed)
	random := rand.NewChaCha8(key)
	text := newTextGen(o.Seed)
	buf := make([]byte, genBuf)
	for _, reg := range regions {
		for left := reg.Length; left > 0; {
			p := buf[:min(left, int64(len(buf)))]
			switch {
			case reg.Text:
				text.fill(p)
			case reg.Zero:
				clear(p)
			default:
				_, _ = random.Read(p) // never fails
			}
			if _, err := w.Write(p); err != nil {
				return err
			}
			left -= int64(len(p))
		}
	}
	return nil
}

// CreateSource writes the source o describes to a new file at path
// (replacing any file there).
func CreateSource(path string, o SourceOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteSource(f, o); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return f.Close()
}

// ModifyOptions describes how CreateModified changes a source.
type ModifyOptions struct {
	// BlockSize is the block (hash) size of the backups; each change falls
	// inside one block. Default 32768.
	BlockSize int
	// Fraction is the share of blocks changed, in [0, 1]: 0.01 changes 1%
	// of the blocks (at least one when Fraction > 0).
	Fraction float64
	// Seed selects the blocks and the changes. 0 means DefaultSeed.
	Seed uint64
}

// CreateModified copies the file src to dst (replacing any file there) and
// changes a share of its blocks: round(Fraction x blocks) distinct blocks,
// scattered uniformly over the file, each of which gets 256 bytes at a random
// place inside it XORed with random bytes (so every chosen block's hash
// changes, and its compressibility stays what it was). It returns the indexes
// of the blocks changed, ascending. The same options and source always give
// the same result.
func CreateModified(src, dst string, o ModifyOptions) ([]int64, error) {
	if o.BlockSize == 0 {
		o.BlockSize = 32768
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.BlockSize <= 0 || !(o.Fraction >= 0 && o.Fraction <= 1) {
		return nil, fmt.Errorf("bench: block size %d must be positive and fraction %v in [0, 1]", o.BlockSize, o.Fraction)
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return nil, err
	}
	fail := func(err error) ([]int64, error) {
		out.Close()
		os.Remove(dst)
		return nil, fmt.Errorf("bench: writing %s: %w", dst, err)
	}
	size, err := io.Copy(out, in)
	if err != nil {
		return fail(err)
	}
	bs := int64(o.BlockSize)
	blocks := (size + bs - 1) / bs
	k := int64(math.Round(o.Fraction * float64(blocks)))
	if o.Fraction > 0 && k == 0 && blocks > 0 {
		k = 1
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x6d6f_6469_6679)) // "modify"
	chosen := pickDistinct(r, blocks, k)
	const span = 256
	mask := make([]byte, span)
	buf := make([]byte, span)
	for _, b := range chosen {
		length := min(bs, size-b*bs)
		n := min(int64(span), length)
		at := b*bs + r.Int64N(length-n+1)
		for i := range mask[:n] {
			mask[i] = byte(r.Uint32())
		}
		mask[0] |= 1 // never all zero: the block must change
		if _, err := out.ReadAt(buf[:n], at); err != nil {
			return fail(err)
		}
		for i := range buf[:n] {
			buf[i] ^= mask[i]
		}
		if _, err := out.WriteAt(buf[:n], at); err != nil {
			return fail(err)
		}
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return nil, err
	}
	return chosen, nil
}

// pickDistinct returns k distinct integers of [0, n), ascending (Floyd's
// algorithm: O(k) memory).
func pickDistinct(r *rand.Rand, n, k int64) []int64 {
	seen := make(map[int64]bool, k)
	out := make([]int64, 0, k)
	for j := n - k; j < n; j++ {
		t := r.Int64N(j + 1)
		if seen[t] {
			t = j
		}
		seen[t] = true
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// textGen makes log lines and prose from a small vocabulary: text that zlib
// compresses about 3:1, like logs, configuration and documents on a volume.
type textGen struct {
	r       *rand.Rand
	ms      int64 // the log clock, in milliseconds
	pending []byte
}

func newTextGen(seed uint64) *textGen {
	return &textGen{
		r:  rand.New(rand.NewPCG(seed, 0x7465_7874)), // "text"
		ms: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC).UnixMilli(),
	}
}

// wordTable maps 16 random bits to an index of vocabulary, word k having
// a frequency proportional to 1/(k+2) (Zipf's law), computed in integers so
// that every platform draws the same words.
var wordTable = func() []uint16 {
	var total uint64
	for k := range vocabulary {
		total += (1 << 32) / uint64(k+2)
	}
	table := make([]uint16, 1<<16)
	var cum uint64
	j := 0
	for k := range vocabulary {
		cum += (1 << 32) / uint64(k+2)
		for end := int(cum << 16 / total); j < end; j++ {
			table[j] = uint16(k)
		}
	}
	return table
}()

// fill fills p with text; a line cut at the end of p continues in the next
// call.
func (g *textGen) fill(p []byte) {
	for len(p) > 0 {
		if len(g.pending) == 0 {
			g.pending = g.line(g.pending[:0])
		}
		n := copy(p, g.pending)
		p = p[n:]
		g.pending = g.pending[n:]
	}
}

var levels = []string{"INFO ", "INFO ", "INFO ", "DEBUG", "DEBUG", "WARN ", "ERROR"}
var services = []string{"volume-manager", "backup-worker", "scheduler", "api", "nova-compute", "rabbit", "db-sync"}

// line appends one line: a log line (two in three) or a sentence of prose.
func (g *textGen) line(b []byte) []byte {
	r := g.r
	if r.IntN(3) > 0 {
		g.ms += int64(r.IntN(2000))
		b = time.UnixMilli(g.ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z ")
		b = append(b, levels[r.IntN(len(levels))]...)
		b = append(b, ' ')
		b = append(b, services[r.IntN(len(services))]...)
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(1000+r.IntN(9000)), 10)
		b = append(b, "]: "...)
		b = g.appendWords(b, 4+r.IntN(9))
		b = append(b, " id="...)
		b = strconv.AppendUint(b, uint64(r.Uint32()), 16)
		b = append(b, " size="...)
		b = strconv.AppendInt(b, int64(r.IntN(1<<20)), 10)
		b = append(b, " took "...)
		b = strconv.AppendInt(b, int64(r.IntN(5000)), 10)
		b = append(b, "ms\n"...)
		return b
	}
	start := len(b)
	b = g.appendWords(b, 8+r.IntN(14))
	if c := b[start]; c >= 'a' && c <= 'z' {
		b[start] = c - 'a' + 'A'
	}
	if r.IntN(4) == 0 {
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
	}
	return append(b, ".\n"...)
}

func (g *textGen) appendWords(b []byte, n int) []byte {
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, vocabulary[wordTable[uint16(g.r.Uint32())]]...)
	}
	return b
}

// vocabulary is drawn from with a Zipf distribution: the first words are the
// most frequent.
var vocabulary = strings.Fields(`
the of and to a in is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all we their
has would when if so no will what can out more up time other about into only
some could them see our than then now may these two first any new like well
volume backup restore snapshot object block chunk data file disk node server
request response error retry timeout started finished completed failed queued
service manager worker driver storage container bucket metadata checksum hash
size offset length read write delete list create update sync flush commit
user project tenant host instance image network port address zone region pool
attach detach migrate extend retype replicate encrypt compress decompress
status available creating deleting error_restoring in-use backing-up
because after before while during between through without within against
system process thread memory cache buffer queue session connection channel
value key name type mode state level count total average maximum minimum
report result record entry event message notice warning critical debug info
configuration option parameter setting default policy rule limit quota usage
`)

// ParseSize parses a size in bytes: a number with an optional unit, K, M, G,
// T (or KiB, MiB, GiB, TiB) for powers of 1024 and KB, MB, GB, TB for powers
// of 1000, case-insensitive: "67108864", "64MiB", "1GiB", "1.5G", "500MB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 || math.IsInf(v*mult, 0) || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: want bytes, or a number with a unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return int64(math.Round(v * mult)), nil
}

// FormatSize writes n bytes the short way: "1 GiB", "64 MiB", "1.5 KiB".
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.4g %s", v, units[u])
}
