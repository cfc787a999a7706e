package targettest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/chunkback/chunkback/target"
)

// Defaults of Options.
const (
	DefaultLargeSize      = 20 << 20
	DefaultManyObjects    = 1000
	DefaultConcurrentSize = 1 << 20
)

// Options tunes the conformance suite, mainly so that slow stores can be
// tested with less data. The zero value runs the full suite.
type Options struct {
	// LargeSize is the size of the largest object written and read back
	// (default DefaultLargeSize, 20 MiB: larger than the multipart and
	// buffer thresholds of the usual clients).
	LargeSize int64
	// ManyObjects is how many objects the listing test writes
	// (default DefaultManyObjects, 1000: more than one listing page of S3).
	ManyObjects int
	// ConcurrentSize is the size of each object in the concurrency tests
	// (default DefaultConcurrentSize, 1 MiB).
	ConcurrentSize int64
	// NonAtomicIfNotExists declares that the store cannot make
	// PutOptions.IfNotExists atomic against concurrent writers of the same
	// name; the race test for it is then skipped.
	NonAtomicIfNotExists bool
}

func (o Options) withDefaults(t *testing.T) Options {
	if o.LargeSize < 0 || o.ManyObjects < 0 || o.ConcurrentSize < 0 {
		t.Fatalf("targettest: negative size or count in %+v", o)
	}
	if o.LargeSize == 0 {
		o.LargeSize = DefaultLargeSize
	}
	if o.ManyObjects == 0 {
		o.ManyObjects = DefaultManyObjects
	}
	if o.ConcurrentSize == 0 {
		o.ConcurrentSize = DefaultConcurrentSize
	}
	return o
}

// Run runs the conformance suite with default Options. See RunWithOptions.
func Run(t *testing.T, newTarget func(t *testing.T) target.Target) {
	RunWithOptions(t, newTarget, Options{})
}

// RunWithOptions runs the conformance suite against the targets made by
// newTarget, one subtest (t.Run) per behaviour, checking the target.Target
// method contracts and the rules in the package documentation.
//
// newTarget is called once per subtest and must return a fresh, empty target
// (its own directory, bucket or prefix); it should release it with t.Cleanup.
// Subtests run one after another.
func RunWithOptions(t *testing.T, newTarget func(t *testing.T) target.Target, opts Options) {
	s := &suite{newTarget: newTarget, opts: opts.withDefaults(t)}
	tests := []struct {
		name string
		fn   func(*testing.T, target.Target)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"ContentMD5", s.testContentMD5},
		{"PutReadsFromCurrentPosition", s.testCurrentPosition},
		{"PutShortBody", s.testShortBody},
		{"PutNegativeSize", s.testNegativeSize},
		{"Overwrite", s.testOverwrite},
		{"IfNotExists", s.testIfNotExists},
		{"IfNotExistsRace", s.testIfNotExistsRace},
		{"Ranges", s.testRanges},
		{"Stat", s.testStat},
		{"OddNames", s.testOddNames},
		{"InvalidNames", s.testInvalidNames},
		{"InvalidPrefixes", s.testInvalidPrefixes},
		{"ListPrefix", s.testListPrefix},
		{"ListOrder", s.testListOrder},
		{"ListMany", s.testListMany},
		{"ListStopsOnError", s.testListStopsOnError},
		{"ListEmpty", s.testListEmpty},
		{"NotFound", s.testNotFound},
		{"DirectoriesAreNotObjects", s.testDirectoriesAreNotObjects},
		{"DeleteTwice", s.testDeleteTwice},
		{"DeleteThenReuseDirectoryName", s.testDeleteThenReuse},
		{"PutCancelledBefore", s.testPutCancelledBefore},
		{"PutCancelledDuringBody", s.testPutCancelledDuringBody},
		{"PutBodyError", s.testPutBodyError},
		{"CancelledContext", s.testCancelledContext},
		{"ConcurrentWriters", s.testConcurrentWriters},
		{"ConcurrentReadDuringOverwrite", s.testConcurrentReadDuringOverwrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s.fresh(t)) })
	}
}

type suite struct {
	newTarget func(t *testing.T) target.Target
	opts      Options
}

// fresh makes a target and checks that it is empty, as the suite assumes.
func (s *suite) fresh(t *testing.T) target.Target {
	t.Helper()
	tg := s.newTarget(t)
	require.NotNil(t, tg, "newTarget returned nil")
	names := listNames(t, tg, "")
	require.Empty(t, names, "newTarget must return an empty target")
	return tg
}

// ---- helpers ----

func put(t *testing.T, tg target.Target, name string, data []byte) {
	t.Helper()
	err := tg.Put(t.Context(), name, bytes.NewReader(data), int64(len(data)), target.PutOptions{})
	require.NoError(t, err, "Put %q (%d bytes)", name, len(data))
}

// read reads the range of an object, closing the reader.
func read(ctx context.Context, tg target.Target, name string, offset, length int64) ([]byte, error) {
	rc, err := tg.Get(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return data, err
}

// requireContent checks the whole object through Get and its size via Stat.
func requireContent(t *testing.T, tg target.Target, name string, want []byte) {
	t.Helper()
	got, err := read(t.Context(), tg, name, 0, -1)
	require.NoError(t, err, "Get %q", name)
	requireBytes(t, want, got, "content of %q", name)
	info, err := tg.Stat(t.Context(), name)
	require.NoError(t, err, "Stat %q", name)
	assert.Equal(t, name, info.Name, "Stat(%q).Name", name)
	assert.Equal(t, int64(len(want)), info.Size, "Stat(%q).Size", name)
}

// requireBytes compares byte slices without dumping megabytes on failure.
func requireBytes(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	msg := ""
	if len(msgAndArgs) > 0 {
		msg = fmt.Sprintf(msgAndArgs[0].(string), msgAndArgs[1:]...) + ": "
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	if len(want) <= 64 && len(got) <= 64 {
		t.Fatalf("%sgot %q, want %q", msg, got, want)
	}
	t.Fatalf("%sgot %d bytes, want %d; first difference at byte %d", msg, len(got), len(want), i)
}

// requireAbsent checks that no object of that name is visible in any way.
func requireAbsent(t *testing.T, tg target.Target, name string) {
	t.Helper()
	_, err := tg.Stat(t.Context(), name)
	require.ErrorIs(t, err, target.ErrNotFound, "Stat %q", name)
	_, err = read(t.Context(), tg, name, 0, -1)
	require.ErrorIs(t, err, target.ErrNotFound, "Get %q", name)
	require.NotContains(t, listNames(t, tg, ""), name, "List shows %q", name)
}

func list(t *testing.T, tg target.Target, prefix string) []target.Info {
	t.Helper()
	var infos []target.Info
	err := tg.List(t.Context(), prefix, func(info target.Info) error {
		infos = append(infos, info)
		return nil
	})
	require.NoError(t, err, "List %q", prefix)
	return infos
}

func listNames(t *testing.T, tg target.Target, prefix string) []string {
	t.Helper()
	var names []string
	for _, info := range list(t, tg, prefix) {
		names = append(names, info.Name)
	}
	return names
}

// randomData returns n reproducible pseudo-random bytes.
func randomData(seed uint64, n int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(data)
	return data
}

// cancelBody serves data and cancels a context once it has served at least
// cancelAt bytes; it keeps serving afterwards, so a target that ignores the
// context would complete the Put.
type cancelBody struct {
	*bytes.Reader
	served   int64
	cancelAt int64
	cancel   context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	b.served += int64(n)
	if b.served >= b.cancelAt {
		b.cancel()
	}
	return n, err
}

// failingBody serves the first failAt bytes of data, then fails.
type failingBody struct {
	*bytes.Reader
	failAt int64
}

var errBody = errors.New("targettest: body failed on purpose")

func (b *failingBody) Read(p []byte) (int, error) {
	pos := b.Size() - int64(b.Len())
	if pos >= b.failAt {
		return 0, errBody
	}
	if rest := b.failAt - pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	return b.Reader.Read(p)
}

// ---- tests ----

func (s *suite) testRoundTrip(t *testing.T, tg target.Target) {
	for i, size := range []int64{0, 1, 100, s.opts.LargeSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			name := fmt.Sprintf("object-%d", size)
			data := randomData(uint64(i), size)
			put(t, tg, name, data)
			requireContent(t, tg, name, data)
			infos := list(t, tg, name)
			require.Len(t, infos, 1, "List %q", name)
			assert.Equal(t, name, infos[0].Name)
			assert.Equal(t, size, infos[0].Size, "size listed for %q", name)
		})
	}
}

func (s *suite) testContentMD5(t *testing.T, tg target.Target) {
	data := randomData(1, 1000)
	sum := md5.Sum(data)
	err := tg.Put(t.Context(), "md5", bytes.NewReader(data), int64(len(data)), target.PutOptions{ContentMD5: sum[:]})
	require.NoError(t, err, "Put with the correct ContentMD5")
	requireContent(t, tg, "md5", data)
}

func (s *suite) testCurrentPosition(t *testing.T, tg target.Target) {
	body := bytes.NewReader([]byte("XYZhello, world!TRAILING"))
	_, err := body.Seek(3, io.SeekStart)
	require.NoError(t, err)
	require.NoError(t, tg.Put(t.Context(), "pos", body, int64(len("hello, world!")), target.PutOptions{}))
	requireContent(t, tg, "pos", []byte("hello, world!"))
}

func (s *suite) testShortBody(t *testing.T, tg target.Target) {
	err := tg.Put(t.Context(), "short", bytes.NewReader([]byte("12345")), 10, target.PutOptions{})
	require.Error(t, err, "Put of 10 bytes from a 5-byte body must fail")
	requireAbsent(t, tg, "short")

	old := []byte("old content")
	put(t, tg, "short", old)
	err = tg.Put(t.Context(), "short", bytes.NewReader([]byte("12345")), 10, target.PutOptions{})
	require.Error(t, err, "overwrite from a short body must fail")
	requireContent(t, tg, "short", old)
}

func (s *suite) testNegativeSize(t *testing.T, tg target.Target) {
	err := tg.Put(t.Context(), "neg", bytes.NewReader([]byte("abc")), -1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	requireAbsent(t, tg, "neg")
}

func (s *suite) testOverwrite(t *testing.T, tg target.Target) {
	long := randomData(2, 100_000)
	put(t, tg, "over", long)
	requireContent(t, tg, "over", long)
	short := []byte("short")
	put(t, tg, "over", short)
	requireContent(t, tg, "over", short)
	put(t, tg, "over", nil)
	requireContent(t, tg, "over", nil)
	require.Equal(t, []string{"over"}, listNames(t, tg, ""))
}

func (s *suite) testIfNotExists(t *testing.T, tg target.Target) {
	ctx := t.Context()
	excl := target.PutOptions{IfNotExists: true}
	a, b, c := []byte("first"), []byte("second, longer"), []byte("third")
	require.NoError(t, tg.Put(ctx, "x", bytes.NewReader(a), int64(len(a)), excl), "IfNotExists on an absent name")
	requireContent(t, tg, "x", a)
	err := tg.Put(ctx, "x", bytes.NewReader(b), int64(len(b)), excl)
	require.ErrorIs(t, err, target.ErrExists, "IfNotExists on an existing name")
	requireContent(t, tg, "x", a)
	put(t, tg, "x", b)
	requireContent(t, tg, "x", b)
	require.NoError(t, tg.Delete(ctx, "x"))
	require.NoError(t, tg.Put(ctx, "x", bytes.NewReader(c), int64(len(c)), excl), "IfNotExists after Delete")
	requireContent(t, tg, "x", c)
	// A nested name, and an empty object, are just as exclusive.
	require.NoError(t, tg.Put(ctx, "d/e/f", bytes.NewReader(nil), 0, excl))
	err = tg.Put(ctx, "d/e/f", bytes.NewReader(a), int64(len(a)), excl)
	require.ErrorIs(t, err, target.ErrExists)
	requireContent(t, tg, "d/e/f", nil)
}

func (s *suite) testIfNotExistsRace(t *testing.T, tg target.Target) {
	if s.opts.NonAtomicIfNotExists {
		t.Skip("the target declares Options.NonAtomicIfNotExists")
	}
	const writers = 8
	// Several rounds, because whether writers overlap is up to the
	// scheduler and the network.
	for round := range 3 {
		name := fmt.Sprintf("race-%d", round)
		contents := make([][]byte, writers)
		for i := range contents {
			contents[i] = randomData(uint64(100*round+i), s.opts.ConcurrentSize)
		}
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = tg.Put(t.Context(), name, bytes.NewReader(contents[i]), int64(len(contents[i])),
					target.PutOptions{IfNotExists: true})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "round %d: writers %d and %d both succeeded with IfNotExists", round, winner, i)
				winner = i
				continue
			}
			require.ErrorIs(t, err, target.ErrExists, "round %d, writer %d", round, i)
		}
		require.NotEqual(t, -1, winner, "round %d: no writer succeeded", round)
		requireContent(t, tg, name, contents[winner])
	}
}

func (s *suite) testRanges(t *testing.T, tg target.Target) {
	data := randomData(3, 100)
	put(t, tg, "r", data)
	put(t, tg, "empty", nil)
	cases := []struct {
		name           string
		offset, length int64
		want           []byte
		err            error
	}{
		{"r", 0, -1, data, nil},
		{"r", 10, 20, data[10:30], nil},
		{"r", 0, 1, data[:1], nil},
		{"r", 99, 1, data[99:], nil},
		{"r", 10, -1, data[10:], nil},
		{"r", 90, 50, data[90:], nil},
		{"r", 0, 100, data, nil},
		{"r", 0, 1000, data, nil},
		{"r", 100, 10, nil, nil},
		{"r", 100, -1, nil, nil},
		{"r", 0, 0, nil, nil},
		{"r", 50, 0, nil, nil},
		{"r", 101, 1, nil, target.ErrInvalidRange},
		{"r", 101, -1, nil, target.ErrInvalidRange},
		{"r", 1000, 0, nil, target.ErrInvalidRange},
		{"r", -1, 10, nil, target.ErrInvalidArgument},
		{"empty", 0, -1, nil, nil},
		{"empty", 0, 10, nil, nil},
		{"empty", 0, 0, nil, nil},
		{"empty", 1, -1, nil, target.ErrInvalidRange},
	}
	for _, c := range cases {
		got, err := read(t.Context(), tg, c.name, c.offset, c.length)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, "Get(%q, %d, %d)", c.name, c.offset, c.length)
			continue
		}
		require.NoError(t, err, "Get(%q, %d, %d)", c.name, c.offset, c.length)
		requireBytes(t, c.want, got, "Get(%q, %d, %d)", c.name, c.offset, c.length)
	}

	// A range inside a larger object, across the MiB boundaries where
	// clients and targets tend to split their buffers.
	big := randomData(4, 3<<20+5)
	put(t, tg, "big", big)
	for _, r := range [][2]int64{{1<<20 - 3, 1<<20 + 7}, {2<<20 + 1, -1}, {3<<20 + 4, 1}, {0, 3<<20 + 5}} {
		got, err := read(t.Context(), tg, "big", r[0], r[1])
		require.NoError(t, err, "Get(big, %d, %d)", r[0], r[1])
		end := int64(len(big))
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		requireBytes(t, big[r[0]:end], got, "Get(big, %d, %d)", r[0], r[1])
	}
}

func (s *suite) testStat(t *testing.T, tg target.Target) {
	before := time.Now()
	sizes := map[string]int64{"s0": 0, "s1": 1, "s/nested": 4097, "s2": 65536}
	for name, size := range sizes {
		put(t, tg, name, randomData(uint64(size), size))
	}
	for name, size := range sizes {
		info, err := tg.Stat(t.Context(), name)
		require.NoError(t, err, "Stat %q", name)
		assert.Equal(t, name, info.Name)
		assert.Equal(t, size, info.Size, "Stat(%q).Size", name)
		// Stores may not report a time; when one does it must be plausible
		// (a day of slack for clock skew between client and server).
		if !info.ModTime.IsZero() {
			assert.WithinDuration(t, before, info.ModTime, 24*time.Hour, "Stat(%q).ModTime", name)
		}
	}
	for _, info := range list(t, tg, "") {
		assert.Equal(t, sizes[info.Name], info.Size, "size listed for %q", info.Name)
	}
}

// oddNames are valid names that tend to break escaping. None is a
// "directory" of another.
func oddNames() []string {
	const id = "5a5a5a5a-1234-4321-abcd-0123456789ab"
	return []string{
		"with space",
		" leading and trailing ",
		"unicode-é-ü-日本語-Ω",
		"plus+sign",
		"percent%20encoded%",
		"hash#fragment",
		"question?query",
		"equals=sign",
		"amp&ersand",
		"all+%#?=&;,:@$!'()*[]{}~^`|<>\"",
		".hidden",
		"..two-dots",
		"-dash",
		"a/b/c",
		"dir with space/sub dir/obj ?#",
		"5a/5a/" + id + "/volume_" + id + "_20260101120000_backup_" + id + "-00001",
		"5a/5a/" + id + "/volume_" + id + "_20260101120000_backup_" + id + "_sha256file",
		"volume_" + id + "/20260101120000/az_nova_backup_" + id + "-00001",
		strings.Repeat("long", 50),
		strings.Repeat("n", 100) + "/" + strings.Repeat("m", 200) + "/" + strings.Repeat("o", 250),
	}
}

func (s *suite) testOddNames(t *testing.T, tg target.Target) {
	names := oddNames()
	for i, name := range names {
		put(t, tg, name, []byte(fmt.Sprintf("%d:%s", i, name)))
	}
	for i, name := range names {
		requireContent(t, tg, name, []byte(fmt.Sprintf("%d:%s", i, name)))
		got := listNames(t, tg, name)
		require.NotEmpty(t, got, "List(%q)", name)
		require.Equal(t, name, got[0], "List(%q) must start with the object of that name", name)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	require.Equal(t, want, listNames(t, tg, ""))
	for _, name := range names {
		require.NoError(t, tg.Delete(t.Context(), name), "Delete %q", name)
		requireAbsent(t, tg, name)
	}
	require.Empty(t, listNames(t, tg, ""))
}

// invalidNames are names every target must reject (see target.CheckName).
func invalidNames() []string {
	return []string{
		"",
		"/",
		"/abs",
		"/abs/x",
		"a/",
		"a//b",
		".",
		"..",
		"./a",
		"../a",
		"../../etc/passwd",
		"a/../b",
		"a/..",
		"a/./b",
		"nul\x00byte",
		"new\nline",
		"bad-utf8-\xff",
		strings.Repeat("x", target.MaxElementLen+1),
		strings.Repeat("x/", target.MaxNameLen/2+1),
		target.ReservedPrefix + "x",
		"a/" + target.ReservedPrefix + "x",
	}
}

func (s *suite) testInvalidNames(t *testing.T, tg target.Target) {
	ctx := t.Context()
	put(t, tg, "b", []byte("innocent bystander"))
	for _, name := range invalidNames() {
		err := tg.Put(ctx, name, bytes.NewReader([]byte("x")), 1, target.PutOptions{})
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Put %q", name)
		err = tg.Put(ctx, name, bytes.NewReader([]byte("x")), 1, target.PutOptions{IfNotExists: true})
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Put %q IfNotExists", name)
		_, err = read(ctx, tg, name, 0, -1)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Get %q", name)
		_, err = tg.Stat(ctx, name)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Stat %q", name)
		err = tg.Delete(ctx, name)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Delete %q", name)
	}
	require.Equal(t, []string{"b"}, listNames(t, tg, ""))
	requireContent(t, tg, "b", []byte("innocent bystander"))
}

func (s *suite) testInvalidPrefixes(t *testing.T, tg target.Target) {
	put(t, tg, "x", []byte("x"))
	put(t, tg, "sub/y", []byte("y"))
	for _, prefix := range []string{"/", "/x", "/sub/", "../", "../x", "./", "./x", "sub/../", "sub/./", "sub//", "../../", "\x00"} {
		var got []string
		err := tg.List(t.Context(), prefix, func(info target.Info) error {
			got = append(got, info.Name)
			return nil
		})
		if err != nil {
			require.ErrorIs(t, err, target.ErrInvalidArgument, "List %q", prefix)
		}
		require.Empty(t, got, "List %q", prefix)
	}
}

func (s *suite) testListPrefix(t *testing.T, tg target.Target) {
	for _, name := range []string{"a/1", "a/2", "a/sub/3", "ab", "abc/1", "b", "ba/x"} {
		put(t, tg, name, []byte(name))
	}
	cases := map[string][]string{
		"":        {"a/1", "a/2", "a/sub/3", "ab", "abc/1", "b", "ba/x"},
		"a":       {"a/1", "a/2", "a/sub/3", "ab", "abc/1"},
		"a/":      {"a/1", "a/2", "a/sub/3"},
		"a/s":     {"a/sub/3"},
		"a/sub/":  {"a/sub/3"},
		"a/sub/3": {"a/sub/3"},
		"ab":      {"ab", "abc/1"},
		"abc":     {"abc/1"},
		"abc/":    {"abc/1"},
		"abc/1":   {"abc/1"},
		"abc/1x":  nil,
		"b":       {"b", "ba/x"},
		"ba/":     {"ba/x"},
		"c":       nil,
		"a/3":     nil,
		"zzz/":    nil,
		"a/sub/x": nil,
	}
	for prefix, want := range cases {
		require.Equal(t, want, listNames(t, tg, prefix), "List %q", prefix)
	}
	for _, info := range list(t, tg, "") {
		require.Equal(t, int64(len(info.Name)), info.Size, "size listed for %q", info.Name)
	}
}

func (s *suite) testListOrder(t *testing.T, tg target.Target) {
	// '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0' (0x30): a walk that visits
	// a directory's entries in order of their own names gets these wrong.
	names := []string{
		"a-c", "a.b", "a/b", "a0", "a/a-x", "a/a/x", "a/a0", "a/b-", "a/b.x/y",
		"A", "Z/z", "_", "b", "~", "é", "z-/a", "z/a", "z0", "zz",
	}
	for i, name := range slices.Backward(names) {
		put(t, tg, name, []byte{byte(i)})
	}
	want := slices.Clone(names)
	slices.Sort(want)
	require.Equal(t, want, listNames(t, tg, ""))
	require.Equal(t, []string{"a-c", "a.b", "a/a-x", "a/a/x", "a/a0", "a/b", "a/b-", "a/b.x/y", "a0"}, listNames(t, tg, "a"))
	require.Equal(t, []string{"a/a-x", "a/a/x", "a/a0"}, listNames(t, tg, "a/a"))
	require.Equal(t, []string{"z-/a", "z/a", "z0", "zz"}, listNames(t, tg, "z"))
}

func (s *suite) testListMany(t *testing.T, tg target.Target) {
	n := s.opts.ManyObjects
	want := make([]string, n)
	for i := range want {
		// Seven directories and the top level, written out of order.
		if i%8 == 7 {
			want[i] = fmt.Sprintf("top-%05d", i)
		} else {
			want[i] = fmt.Sprintf("d%d/obj-%05d", i%8, i)
		}
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for _, i := range order {
		g.Go(func() error {
			data := make([]byte, i%13)
			return tg.Put(ctx, want[i], bytes.NewReader(data), int64(len(data)), target.PutOptions{})
		})
	}
	require.NoError(t, g.Wait())
	slices.Sort(want)
	infos := list(t, tg, "")
	got := make([]string, len(infos))
	for i, info := range infos {
		got[i] = info.Name
		var idx int
		_, err := fmt.Sscanf(info.Name[strings.LastIndexAny(info.Name, "-")+1:], "%d", &idx)
		require.NoError(t, err, info.Name)
		require.Equal(t, int64(idx%13), info.Size, "size listed for %q", info.Name)
	}
	require.Equal(t, want, got)
	var d3 []string
	for _, name := range want {
		if strings.HasPrefix(name, "d3/") {
			d3 = append(d3, name)
		}
	}
	require.Equal(t, d3, listNames(t, tg, "d3/"))
}

func (s *suite) testListStopsOnError(t *testing.T, tg target.Target) {
	for i := range 10 {
		put(t, tg, fmt.Sprintf("o%d", i), []byte{byte(i)})
	}
	stop := errors.New("stop here")
	calls := 0
	err := tg.List(t.Context(), "", func(info target.Info) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, calls, "fn called after it returned an error")
}

func (s *suite) testListEmpty(t *testing.T, tg target.Target) {
	for _, prefix := range []string{"", "a", "a/", "a/b/"} {
		err := tg.List(t.Context(), prefix, func(info target.Info) error {
			return fmt.Errorf("fn called with %+v on an empty target", info)
		})
		require.NoError(t, err, "List %q", prefix)
	}
	put(t, tg, "a/b/c", []byte("c"))
	require.NoError(t, tg.Delete(t.Context(), "a/b/c"))
	for _, prefix := range []string{"", "a", "a/", "a/b/"} {
		require.Empty(t, listNames(t, tg, prefix), "List %q after the only object was deleted", prefix)
	}
}

func (s *suite) testNotFound(t *testing.T, tg target.Target) {
	ctx := t.Context()
	put(t, tg, "exists", []byte("x"))
	for _, name := range []string{"missing", "no/such/dir/x", "exists/below", "existsnot"} {
		_, err := tg.Stat(ctx, name)
		require.ErrorIs(t, err, target.ErrNotFound, "Stat %q", name)
		_, err = read(ctx, tg, name, 0, -1)
		require.ErrorIs(t, err, target.ErrNotFound, "Get %q", name)
		_, err = read(ctx, tg, name, 5, 10)
		require.ErrorIs(t, err, target.ErrNotFound, "Get %q with a range", name)
		require.NoError(t, tg.Delete(ctx, name), "Delete %q", name)
	}
	requireContent(t, tg, "exists", []byte("x"))
}

func (s *suite) testDirectoriesAreNotObjects(t *testing.T, tg target.Target) {
	ctx := t.Context()
	put(t, tg, "d/e/f", []byte("f"))
	for _, name := range []string{"d", "d/e"} {
		_, err := tg.Stat(ctx, name)
		require.ErrorIs(t, err, target.ErrNotFound, "Stat %q", name)
		_, err = read(ctx, tg, name, 0, -1)
		require.ErrorIs(t, err, target.ErrNotFound, "Get %q", name)
		require.NoError(t, tg.Delete(ctx, name), "Delete %q", name)
	}
	require.Equal(t, []string{"d/e/f"}, listNames(t, tg, ""))
	requireContent(t, tg, "d/e/f", []byte("f"))
}

func (s *suite) testDeleteTwice(t *testing.T, tg target.Target) {
	ctx := t.Context()
	put(t, tg, "gone", []byte("soon"))
	put(t, tg, "stays", []byte("here"))
	require.NoError(t, tg.Delete(ctx, "gone"))
	require.NoError(t, tg.Delete(ctx, "gone"), "second Delete")
	requireAbsent(t, tg, "gone")
	require.Equal(t, []string{"stays"}, listNames(t, tg, ""))
	requireContent(t, tg, "stays", []byte("here"))
}

func (s *suite) testDeleteThenReuse(t *testing.T, tg target.Target) {
	// Once "a/b/c" is gone, "a/b" and "a" are free to be objects.
	put(t, tg, "a/b/c", []byte("c"))
	require.NoError(t, tg.Delete(t.Context(), "a/b/c"))
	put(t, tg, "a/b", []byte("b"))
	requireContent(t, tg, "a/b", []byte("b"))
	require.NoError(t, tg.Delete(t.Context(), "a/b"))
	put(t, tg, "a", []byte("a"))
	requireContent(t, tg, "a", []byte("a"))
	require.Equal(t, []string{"a"}, listNames(t, tg, ""))
}

func (s *suite) testPutCancelledBefore(t *testing.T, tg target.Target) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	data := []byte("never stored")
	err := tg.Put(ctx, "c", bytes.NewReader(data), int64(len(data)), target.PutOptions{})
	require.ErrorIs(t, err, context.Canceled)
	requireAbsent(t, tg, "c")
	err = tg.Put(ctx, "c", bytes.NewReader(data), int64(len(data)), target.PutOptions{IfNotExists: true})
	require.ErrorIs(t, err, context.Canceled, "IfNotExists")
	requireAbsent(t, tg, "c")
	require.Empty(t, listNames(t, tg, ""))
}

// cancelSize is the size of the bodies cancelled or failed midway: several
// MiB so that targets which copy in chunks get to check the context.
const cancelSize = 4 << 20

func (s *suite) testPutCancelledDuringBody(t *testing.T, tg target.Target) {
	data := randomData(5, cancelSize)
	putCancelled := func(name string) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		body := &cancelBody{Reader: bytes.NewReader(data), cancelAt: 1 << 20, cancel: cancel}
		err := tg.Put(ctx, name, body, int64(len(data)), target.PutOptions{})
		require.ErrorIs(t, err, context.Canceled, "Put %q cancelled while the body was read", name)
	}
	putCancelled("nested/c")
	requireAbsent(t, tg, "nested/c")
	require.Empty(t, listNames(t, tg, ""))

	old := []byte("old content")
	put(t, tg, "over", old)
	putCancelled("over")
	requireContent(t, tg, "over", old)
	require.Equal(t, []string{"over"}, listNames(t, tg, ""))
}

func (s *suite) testPutBodyError(t *testing.T, tg target.Target) {
	data := randomData(6, cancelSize)
	for _, failAt := range []int64{0, 1, 1 << 20, cancelSize - 1} {
		body := &failingBody{Reader: bytes.NewReader(data), failAt: failAt}
		err := tg.Put(t.Context(), "f", body, int64(len(data)), target.PutOptions{})
		require.Error(t, err, "Put whose body fails after %d bytes", failAt)
		requireAbsent(t, tg, "f")
	}
	require.Empty(t, listNames(t, tg, ""))

	old := []byte("old content")
	put(t, tg, "f", old)
	body := &failingBody{Reader: bytes.NewReader(data), failAt: 1 << 20}
	require.Error(t, tg.Put(t.Context(), "f", body, int64(len(data)), target.PutOptions{}))
	requireContent(t, tg, "f", old)
	require.Equal(t, []string{"f"}, listNames(t, tg, ""))
}

func (s *suite) testCancelledContext(t *testing.T, tg target.Target) {
	put(t, tg, "x", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := read(ctx, tg, "x", 0, -1)
	require.ErrorIs(t, err, context.Canceled, "Get")
	_, err = tg.Stat(ctx, "x")
	require.ErrorIs(t, err, context.Canceled, "Stat")
	err = tg.List(ctx, "", func(target.Info) error { return nil })
	require.ErrorIs(t, err, context.Canceled, "List")
	err = tg.Delete(ctx, "x")
	require.ErrorIs(t, err, context.Canceled, "Delete")
	requireContent(t, tg, "x", []byte("x"))
}

func (s *suite) testConcurrentWriters(t *testing.T, tg target.Target) {
	const writers = 8
	size := s.opts.ConcurrentSize
	// Several rounds, because whether writers overlap is up to the
	// scheduler and the network.
	for round := range 3 {
		own := make([][]byte, writers)
		same := make([][]byte, writers)
		for i := range writers {
			seed := uint64(1000*round + i)
			own[i] = randomData(seed+200, size)
			// Different sizes too, so a truncation or a tail left over from
			// a longer content shows.
			n := size - int64(i*7)
			if n < 0 {
				n = size
			}
			same[i] = randomData(seed+300, n)
		}
		errs := make([]error, 2*writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = tg.Put(t.Context(), fmt.Sprintf("own/%d", i), bytes.NewReader(own[i]), int64(len(own[i])), target.PutOptions{})
			})
			wg.Go(func() {
				<-start
				errs[writers+i] = tg.Put(t.Context(), "same", bytes.NewReader(same[i]), int64(len(same[i])), target.PutOptions{})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d, writer %d", round, i)
		}
		for i := range writers {
			requireContent(t, tg, fmt.Sprintf("own/%d", i), own[i])
		}
		got, err := read(t.Context(), tg, "same", 0, -1)
		require.NoError(t, err)
		require.True(t, slices.ContainsFunc(same, func(c []byte) bool { return bytes.Equal(c, got) }),
			"round %d: concurrent writers of one name left %d bytes that match none of the contents", round, len(got))
		require.Len(t, listNames(t, tg, ""), writers+1)
	}
}

func (s *suite) testConcurrentReadDuringOverwrite(t *testing.T, tg target.Target) {
	size := max(s.opts.ConcurrentSize, 2)
	versions := [][]byte{randomData(400, size), randomData(401, size/2+1)}
	put(t, tg, "flip", versions[0])
	ctx := t.Context()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		defer close(done)
		for i := range 20 {
			v := versions[(i+1)%2]
			if writeErr = tg.Put(ctx, "flip", bytes.NewReader(v), int64(len(v)), target.PutOptions{}); writeErr != nil {
				return
			}
		}
	})
	const readers = 4
	readErrs := make([]error, readers)
	reads := make([]int, readers)
	for r := range readers {
		wg.Go(func() {
			for {
				got, err := read(ctx, tg, "flip", 0, -1)
				switch {
				case err != nil:
					readErrs[r] = fmt.Errorf("read %d: %w", reads[r], err)
					return
				case !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]):
					readErrs[r] = fmt.Errorf("read %d returned %d bytes that are neither version", reads[r], len(got))
					return
				}
				reads[r]++
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, writeErr)
	for r, err := range readErrs {
		require.NoError(t, err, "reader %d", r)
		require.Positive(t, reads[r], "reader %d", r)
	}
}
