package crypt

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func testKey(seed byte) *Key {
	var k Key
	for i := range k {
		k[i] = seed + byte(i)
	}
	return &k
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sizes around the segment boundaries, empty and exact multiples included.
var sizes = []int{0, 1, 100, SegmentSize - 1, SegmentSize, SegmentSize + 1, 2 * SegmentSize, 3*SegmentSize + 5}

func open(t *testing.T, sealed []byte, key *Key, ad []byte) ([]byte, error) {
	t.Helper()
	return io.ReadAll(NewOpenReader(bytes.NewReader(sealed), key, ad))
}

func TestSealOpenRoundTrip(t *testing.T) {
	key, ad := testKey(1), Identity("vol", "backup", "obj-00001")
	for _, n := range sizes {
		plain := randomBytes(uint64(n), n)
		sealed := Seal(nil, plain, key, ad)
		require.EqualValues(t, int64(n)+Overhead(int64(n)), len(sealed), "size %d", n)
		got, err := open(t, sealed, key, ad)
		require.NoError(t, err, "size %d", n)
		require.True(t, bytes.Equal(plain, got), "size %d", n)

		// Read in odd pieces, through a reader that returns little at a time.
		got, err = io.ReadAll(iotest.HalfReader(NewOpenReader(iotest.OneByteReader(bytes.NewReader(sealed)), key, ad)))
		require.NoError(t, err, "size %d, small reads", n)
		require.True(t, bytes.Equal(plain, got), "size %d, small reads", n)
	}
}

func TestSealAppendsToDst(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	plain := randomBytes(5, 1000)
	dst := append(make([]byte, 0, 4096), "prefix"...)
	out := Seal(dst, plain, key, ad)
	require.Equal(t, "prefix", string(out[:6]))
	require.Equal(t, &dst[:1][0], &out[:1][0], "dst's room is reused")
	got, err := open(t, out[6:], key, ad)
	require.NoError(t, err)
	require.Equal(t, plain, got)
}

func TestSealIsFreshEachTime(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	plain := bytes.Repeat([]byte("same"), 1000)
	a, b := Seal(nil, plain, key, ad), Seal(nil, plain, key, ad)
	require.NotEqual(t, a[:HeaderSize], b[:HeaderSize], "salts repeat")
	require.NotEqual(t, a[HeaderSize:], b[HeaderSize:])
	require.False(t, bytes.Contains(a, []byte("samesame")), "plaintext shows through")
}

func requireAuth(t *testing.T, err error, msg string, args ...any) {
	t.Helper()
	require.Error(t, err, append([]any{msg}, args...)...)
	require.ErrorIs(t, err, ErrAuth, append([]any{msg}, args...)...)
}

func TestOpenWrongKeyOrIdentity(t *testing.T) {
	key, ad := testKey(1), Identity("vol", "b1", "obj-00001", "0", "65536", "zlib")
	for _, n := range sizes {
		sealed := Seal(nil, randomBytes(1, n), key, ad)
		_, err := open(t, sealed, testKey(2), ad)
		requireAuth(t, err, "wrong key, size %d", n)
		for _, other := range [][]byte{
			Identity("vol", "b2", "obj-00001", "0", "65536", "zlib"), // another backup
			Identity("vol", "b1", "obj-00002", "0", "65536", "zlib"), // another position
			Identity("vol", "b1", "obj-00001", "65536", "65536", "zlib"),
			Identity("vol", "b1", "obj-00001", "0", "65536", "none"),
			Identity("vol", "b1", "obj-0000", "1", "0", "65536", "zlib"), // same bytes, other fields
			nil,
		} {
			_, err := open(t, sealed, key, other)
			requireAuth(t, err, "other identity %q, size %d", other, n)
		}
	}
}

func TestIdentityIsUnambiguous(t *testing.T) {
	require.NotEqual(t, Identity("ab", "c"), Identity("a", "bc"))
	require.NotEqual(t, Identity("a", ""), Identity("a"))
}

func TestOpenDetectsEveryBitFlip(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	plain := randomBytes(2, 2*SegmentSize+10)
	sealed := Seal(nil, plain, key, ad)
	positions := []int{}
	for i := 0; i < len(sealed); i += 997 {
		positions = append(positions, i)
	}
	for i := range HeaderSize {
		positions = append(positions, i)
	}
	for i := len(sealed) - 40; i < len(sealed); i++ {
		positions = append(positions, i)
	}
	for _, i := range positions {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x04
		_, err := open(t, bad, key, ad)
		requireAuth(t, err, "flip at byte %d", i)
	}
}

func TestOpenDetectsTruncationAndExtension(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	for _, n := range []int{0, 10, SegmentSize, 2*SegmentSize + 3} {
		plain := randomBytes(3, n)
		sealed := Seal(nil, plain, key, ad)
		cuts := []int{0, 1, HeaderSize - 1, HeaderSize, HeaderSize + 1, len(sealed) - 1, len(sealed) - TagSize}
		for s := 1; s*encSize+HeaderSize < len(sealed); s++ {
			cuts = append(cuts, HeaderSize+s*encSize, HeaderSize+s*encSize+1) // at and past a segment boundary
		}
		for _, cut := range cuts {
			if cut < 0 || cut >= len(sealed) {
				continue
			}
			got, err := open(t, sealed[:cut], key, ad)
			requireAuth(t, err, "size %d cut at %d", n, cut)
			require.True(t, bytes.HasPrefix(plain, got), "returned bytes that are not the plaintext")
			require.Less(t, len(got), n+1)
		}
		for _, extra := range [][]byte{{0}, bytes.Repeat([]byte{7}, TagSize), sealed[HeaderSize:]} {
			_, err := open(t, append(bytes.Clone(sealed), extra...), key, ad)
			requireAuth(t, err, "size %d extended by %d bytes", n, len(extra))
		}
	}
}

func TestOpenDetectsReorderedSegments(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	sealed := Seal(nil, randomBytes(4, 3*SegmentSize), key, ad)
	seg := func(i int) []byte { return sealed[HeaderSize+i*encSize : HeaderSize+(i+1)*encSize] }
	swapped := slicesConcat(sealed[:HeaderSize], seg(1), seg(0), seg(2))
	_, err := open(t, swapped, key, ad)
	requireAuth(t, err, "segments 0 and 1 swapped")
	dropped := slicesConcat(sealed[:HeaderSize], seg(0), seg(2))
	_, err = open(t, dropped, key, ad)
	requireAuth(t, err, "segment 1 dropped")

	// A segment of another object sealed with the same key and identity.
	other := Seal(nil, randomBytes(5, 3*SegmentSize), key, ad)
	mixed := slicesConcat(sealed[:HeaderSize+encSize], other[HeaderSize+encSize:])
	_, err = open(t, mixed, key, ad)
	requireAuth(t, err, "segments of two objects mixed")
}

func slicesConcat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestOpenRejectsOtherFormats(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	sealed := Seal(nil, []byte("data"), key, ad)
	bad := bytes.Clone(sealed)
	bad[len(magic)] = 2
	_, err := open(t, bad, key, ad)
	requireAuth(t, err, "version 2")
	require.ErrorContains(t, err, "version 2 is not supported")
	_, err = open(t, []byte("x\x9c plain zlib data, not sealed at all, long enough to be a header"), key, ad)
	requireAuth(t, err, "not sealed")
	_, err = open(t, nil, key, ad)
	requireAuth(t, err, "empty")
}

func TestOpenPassesReadErrorsThrough(t *testing.T) {
	key, ad := testKey(1), Identity("x")
	sealed := Seal(nil, randomBytes(6, 2*SegmentSize), key, ad)
	boom := errors.New("connection reset")
	for _, at := range []int{0, 10, HeaderSize + 100, HeaderSize + encSize + 5} {
		r := io.MultiReader(bytes.NewReader(sealed[:at]), iotest.ErrReader(boom))
		_, err := io.ReadAll(NewOpenReader(r, key, ad))
		require.ErrorIs(t, err, boom, "error at %d", at)
		require.NotErrorIs(t, err, ErrAuth, "a read error is not corruption")
	}
}

func TestSealReaderMatchesSealAndSeeks(t *testing.T) {
	key, ad := testKey(1), Identity("manifest")
	for _, n := range sizes {
		plain := randomBytes(7, n)
		src := bytes.NewReader(append([]byte("skip"), plain...))
		_, _ = src.Seek(4, io.SeekStart) // seals from the current position
		r, err := NewSealReader(src, int64(n), key, ad)
		require.NoError(t, err)
		require.EqualValues(t, int64(n)+Overhead(int64(n)), r.Size())
		first, err := io.ReadAll(iotest.HalfReader(r))
		require.NoError(t, err)
		require.EqualValues(t, r.Size(), len(first))
		got, err := open(t, first, key, ad)
		require.NoError(t, err, "size %d", n)
		require.True(t, bytes.Equal(plain, got))

		// A retry seeks back and must send the very same bytes.
		_, err = r.Seek(0, io.SeekStart)
		require.NoError(t, err)
		again, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Equal(t, first, again)
		if len(first) > HeaderSize+10 {
			mid := int64(len(first)) - 10
			_, err = r.Seek(mid, io.SeekStart)
			require.NoError(t, err)
			tail, err := io.ReadAll(r)
			require.NoError(t, err)
			require.Equal(t, first[mid:], tail)
		}
	}
}

func TestSealReaderShortSource(t *testing.T) {
	r, err := NewSealReader(bytes.NewReader(make([]byte, 10)), 20, testKey(1), nil)
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	require.ErrorContains(t, err, "ended at byte 10")
}

func TestOverhead(t *testing.T) {
	require.EqualValues(t, HeaderSize+TagSize, Overhead(0))
	require.EqualValues(t, HeaderSize+TagSize, Overhead(SegmentSize))
	require.EqualValues(t, HeaderSize+2*TagSize, Overhead(SegmentSize+1))
	require.EqualValues(t, HeaderSize+800*TagSize, Overhead(50<<20/SegmentSize*SegmentSize))
}

func TestBackupKeysAndCheckValues(t *testing.T) {
	master := testKey(1)
	a, b := BackupKey(master, "backup-a"), BackupKey(master, "backup-b")
	require.NotEqual(t, a, b)
	require.Equal(t, a, BackupKey(master, "backup-a"))
	require.NotEqual(t, a, BackupKey(testKey(2), "backup-a"))
	require.NotEqual(t, CheckValue(a), CheckValue(b))
	require.Len(t, CheckValue(a), 32)
	require.Regexp(t, `^sha256:[0-9a-f]{16}$`, Fingerprint(master))
	require.NotEqual(t, Fingerprint(master), Fingerprint(testKey(2)))

	// An object sealed for one backup does not open with another's subkey.
	sealed := Seal(nil, []byte("data"), a, Identity("x"))
	_, err := open(t, sealed, b, Identity("x"))
	requireAuth(t, err, "another backup's subkey")
}
