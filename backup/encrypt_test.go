package backup

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/internal/cindertest"
	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
)

// marker is text the test volumes hold many times: it must appear in no
// stored object of an encrypted backup.
const marker = "SECRET-MARKER-7f3a-do-not-leak"

func secretVolume(seed uint64, n int) []byte {
	data := genSource(seed, n)
	for off := 8192; off+len(marker) < n; off += 100_000 {
		copy(data[off:], marker)
	}
	return data
}

func staticKey(t *testing.T, seed byte) *crypt.Static {
	t.Helper()
	key := bytes.Repeat([]byte{seed}, crypt.KeySize)
	p, err := crypt.StaticKey("", key)
	require.NoError(t, err)
	return p
}

func keyID(t *testing.T, p crypt.KeyProvider) string {
	id, err := p.CurrentKeyID(context.Background())
	require.NoError(t, err)
	return id
}

// countingTarget counts the Gets of data objects.
type countingTarget struct {
	target.Target
	dataGets atomic.Int64
}

func (c *countingTarget) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if dataObject.MatchString(name) {
		c.dataGets.Add(1)
	}
	return c.Target.Get(ctx, name, offset, length)
}

func (c *countingTarget) Unwrap() target.Target { return c.Target }

// cryptStore is a posix directory that engines with different keys share.
type cryptStore struct {
	dir string
	t   *countingTarget
	now func() time.Time // one clock, so the latest backup is the newest
}

func newCryptStore(t *testing.T) *cryptStore {
	t.Helper()
	dir := t.TempDir()
	p, err := posix.New(dir, posix.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return &cryptStore{dir: dir, t: &countingTarget{Target: p}, now: fixedNow()}
}

func (s *cryptStore) engine(t *testing.T, keys crypt.KeyProvider) *Engine {
	t.Helper()
	e, err := New(s.t, Config{Now: s.now, Workers: 2, Keys: keys})
	require.NoError(t, err)
	return e
}

// stored returns the stored bytes of every object of a backup, by name.
func (s *cryptStore) stored(t *testing.T, info *Info) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, s.t.List(context.Background(), info.loc.listPrefix(), func(o target.Info) error {
		data, err := os.ReadFile(filepath.Join(s.dir, o.Name))
		out[o.Name] = data
		return err
	}))
	return out
}

func restoreBytes(t *testing.T, e *Engine, id string) ([]byte, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restored.img")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	if _, err := e.Restore(context.Background(), id, f, RestoreOptions{VerifyMD5: true}); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

func TestEncryptedBackupRestoresAndHidesTheData(t *testing.T) {
	const bs = 4096
	for _, codec := range []string{"none", "zlib"} {
		t.Run(codec, func(t *testing.T) {
			ctx := context.Background()
			s := newCryptStore(t)
			keys := staticKey(t, 1)
			e := s.engine(t, keys)
			src := secretVolume(1, 3<<20+123)
			opts := BackupOptions{VolumeID: "vol", Compression: codec, ObjectSize: 64 * bs, BlockSize: bs}
			full, err := e.Backup(ctx, bytes.NewReader(src), opts)
			require.NoError(t, err)
			mod := bytes.Clone(src)
			mutate(3, mod, 6)
			copy(mod[2<<20:], marker)
			opts.Incremental = true
			inc, err := e.Backup(ctx, bytes.NewReader(mod), opts)
			require.NoError(t, err)
			require.False(t, inc.Full)

			got, err := restoreBytes(t, e, inc.Info.ID)
			require.NoError(t, err)
			requireSameData(t, mod, got, "incremental")
			got, err = restoreBytes(t, e, full.Info.ID)
			require.NoError(t, err)
			requireSameData(t, src, got, "full")
			rep, err := e.Verify(ctx, inc.Info.ID, VerifyOptions{Chain: true})
			require.NoError(t, err)
			require.True(t, rep.OK(), "%v", rep.Faults)
			require.Empty(t, rep.KeyMissing)

			for _, res := range []*Result{full, inc} {
				info := res.Info
				require.Equal(t, EncryptedFormatVersion, info.Metadata.Version)
				enc := info.Encryption()
				require.NotNil(t, enc)
				require.Equal(t, keyID(t, keys), enc.KeyID)
				require.Equal(t, sealAlgorithm, enc.Algorithm)
				stored := s.stored(t, info)
				for name, data := range stored {
					require.False(t, bytes.Contains(data, []byte(marker)), "%s holds the plaintext", name)
					require.False(t, bytes.Contains(data, []byte("restore ")), "%s holds the plaintext", name)
				}
				// The md5 is the stored bytes'; no plaintext digest is kept.
				for _, obj := range info.Metadata.Objects {
					sum := md5.Sum(stored[info.loc.full(obj.Name)])
					require.Equal(t, hex.EncodeToString(sum[:]), obj.MD5, obj.Name)
				}
				// The _sha256file is sealed: no JSON, no block hash.
				manifest := stored[info.loc.shaName()]
				require.False(t, json.Valid(manifest), "the _sha256file is readable JSON")
				first := sha.Sum(src[:bs])
				require.NotContains(t, string(manifest), first.String())
				require.True(t, bytes.HasPrefix(manifest, []byte("CBSE")))
			}
			// The metadata stays readable: list needs no key.
			list, err := s.engine(t, nil).List(ctx, "vol")
			require.NoError(t, err)
			require.Len(t, list, 2)
		})
	}
}

func TestEncryptedRestoreWithoutKeyOrWithTheWrongOne(t *testing.T) {
	ctx := context.Background()
	s := newCryptStore(t)
	keys := staticKey(t, 1)
	src := secretVolume(2, 1<<20)
	res, err := s.engine(t, keys).Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "vol", ObjectSize: 256 << 10})
	require.NoError(t, err)
	id := res.Info.ID
	s.t.dataGets.Store(0)

	_, err = restoreBytes(t, s.engine(t, nil), id)
	require.ErrorIs(t, err, ErrKeyRequired)
	require.NotErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, keyID(t, keys))
	require.ErrorContains(t, err, "--encryption-key-file")
	require.Zero(t, s.t.dataGets.Load(), "data objects were read without a key")

	other := staticKey(t, 2)
	_, err = restoreBytes(t, s.engine(t, other), id)
	require.ErrorIs(t, err, ErrWrongKey)
	require.ErrorContains(t, err, keyID(t, keys))
	require.ErrorContains(t, err, keyID(t, other))
	require.Zero(t, s.t.dataGets.Load(), "data objects were read with a wrong key")

	// A key that claims the backup's ID but is another key: the check value
	// tells.
	impostor, err := crypt.StaticKey(keyID(t, keys), bytes.Repeat([]byte{3}, crypt.KeySize))
	require.NoError(t, err)
	_, err = restoreBytes(t, s.engine(t, impostor), id)
	require.ErrorIs(t, err, ErrWrongKey)
	require.ErrorContains(t, err, "check value")
	require.Zero(t, s.t.dataGets.Load())

	// Nor does a wrong key get far in verify, or under an incremental.
	_, err = s.engine(t, other).Verify(ctx, id, VerifyOptions{})
	require.ErrorIs(t, err, ErrWrongKey)
	_, err = s.engine(t, nil).Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "vol", ObjectSize: 256 << 10, Incremental: true, FallbackToFull: true})
	require.ErrorIs(t, err, ErrKeyRequired, "an incremental needs its encrypted parent's key")
	require.Zero(t, s.t.dataGets.Load())

	// No error names key material.
	for _, e := range []error{err} {
		require.NotContains(t, e.Error(), hex.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	}
}

// twoBackups makes two full encrypted backups of one volume, several objects
// each, and returns them.
func twoBackups(t *testing.T, s *cryptStore, e *Engine) (*Info, *Info, []byte) {
	t.Helper()
	ctx := context.Background()
	src := secretVolume(4, 1<<20)
	opts := BackupOptions{VolumeID: "vol", ObjectSize: 128 << 10, Compression: "none", StoreZeros: true}
	a, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	b, err := e.Backup(ctx, bytes.NewReader(src), opts)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(a.Info.Metadata.Objects), 3)
	return a.Info, b.Info, src
}

func TestEncryptedObjectsSwappedAreDetected(t *testing.T) {
	ctx := context.Background()
	copyObject := func(t *testing.T, s *cryptStore, from, to string) {
		data, err := os.ReadFile(filepath.Join(s.dir, from))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(s.dir, to), data, 0o600))
	}
	t.Run("between backups", func(t *testing.T) {
		s := newCryptStore(t)
		e := s.engine(t, staticKey(t, 1))
		a, b, _ := twoBackups(t, s, e)
		// Same volume, same data, same position: only the identity differs.
		victim := a.loc.full(a.Metadata.Objects[1].Name)
		copyObject(t, s, b.loc.full(b.Metadata.Objects[1].Name), victim)
		_, err := restoreBytes(t, e, a.ID)
		require.ErrorIs(t, err, ErrCorrupt)
		require.ErrorContains(t, err, victim)
		require.ErrorContains(t, err, "does not decrypt")
		rep, err := e.Verify(ctx, a.ID, VerifyOptions{})
		require.NoError(t, err)
		require.Len(t, rep.Faults, 1)
		require.Equal(t, victim, rep.Faults[0].Object)
	})
	t.Run("between positions", func(t *testing.T) {
		s := newCryptStore(t)
		e := s.engine(t, staticKey(t, 1))
		a, _, _ := twoBackups(t, s, e)
		first, second := a.loc.full(a.Metadata.Objects[0].Name), a.loc.full(a.Metadata.Objects[1].Name)
		tmp := filepath.Join(s.dir, "swap")
		require.NoError(t, os.Rename(filepath.Join(s.dir, first), tmp))
		require.NoError(t, os.Rename(filepath.Join(s.dir, second), filepath.Join(s.dir, first)))
		require.NoError(t, os.Rename(tmp, filepath.Join(s.dir, second)))
		_, err := restoreBytes(t, e, a.ID)
		require.ErrorIs(t, err, ErrCorrupt)
		require.Regexp(t, regexp.QuoteMeta(first)+"|"+regexp.QuoteMeta(second), err.Error())
	})
	t.Run("bit flip and truncation", func(t *testing.T) {
		s := newCryptStore(t)
		e := s.engine(t, staticKey(t, 1))
		a, _, src := twoBackups(t, s, e)
		path := filepath.Join(s.dir, a.loc.full(a.Metadata.Objects[2].Name))
		orig, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Greater(t, len(orig), crypt.HeaderSize+crypt.SegmentSize+crypt.TagSize)
		for name, bad := range map[string][]byte{
			"flip":            flipByte(orig, len(orig)/2),
			"flip in header":  flipByte(orig, 10),
			"truncated":       orig[:len(orig)-1],
			"segment dropped": append(bytes.Clone(orig[:crypt.HeaderSize]), orig[crypt.HeaderSize+crypt.SegmentSize+crypt.TagSize:]...),
			"extended":        append(bytes.Clone(orig), 0),
		} {
			require.NoError(t, os.WriteFile(path, bad, 0o600))
			_, err := restoreBytes(t, e, a.ID)
			require.ErrorIs(t, err, ErrCorrupt, name)
			require.ErrorContains(t, err, a.loc.full(a.Metadata.Objects[2].Name), name)
		}
		require.NoError(t, os.WriteFile(path, orig, 0o600))
		got, err := restoreBytes(t, e, a.ID)
		require.NoError(t, err)
		requireSameData(t, src, got, "restored")
	})
	t.Run("sealed manifest swapped", func(t *testing.T) {
		s := newCryptStore(t)
		e := s.engine(t, staticKey(t, 1))
		a, b, _ := twoBackups(t, s, e)
		copyObject(t, s, b.loc.shaName(), a.loc.shaName())
		_, err := restoreBytes(t, e, a.ID)
		require.ErrorIs(t, err, ErrCorrupt)
		require.ErrorContains(t, err, a.loc.shaName())
	})
}

func flipByte(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x10
	return out
}

func TestVerifyWithoutKeyChecksStoredBytes(t *testing.T) {
	ctx := context.Background()
	s := newCryptStore(t)
	e := s.engine(t, staticKey(t, 1))
	a, _, _ := twoBackups(t, s, e)
	noKey := s.engine(t, nil)
	rep, err := noKey.Verify(ctx, a.ID, VerifyOptions{Chain: true})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Faults)
	require.Equal(t, []string{a.ID}, rep.KeyMissing)
	require.Equal(t, len(a.Metadata.Objects), rep.Objects)

	victim := a.loc.full(a.Metadata.Objects[1].Name)
	path := filepath.Join(s.dir, victim)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, flipByte(orig, len(orig)-1), 0o600))
	rep, err = noKey.Verify(ctx, a.ID, VerifyOptions{})
	require.NoError(t, err)
	require.Len(t, rep.Faults, 1)
	require.Equal(t, victim, rep.Faults[0].Object)
	require.Contains(t, rep.Faults[0].Problem, "stored (encrypted) bytes")

	require.NoError(t, os.WriteFile(path, append(orig, make([]byte, 100)...), 0o600))
	rep, err = noKey.Verify(ctx, a.ID, VerifyOptions{})
	require.NoError(t, err)
	require.Len(t, rep.Faults, 1)
	require.Contains(t, rep.Faults[0].Problem, "holds more than")
}

func TestKeyRotationAndMixedChains(t *testing.T) {
	ctx := context.Background()
	s := newCryptStore(t)
	oldKey, newKey := staticKey(t, 1), staticKey(t, 2)
	opts := BackupOptions{VolumeID: "vol", ObjectSize: 128 << 10, Incremental: true, FallbackToFull: false}

	// A plain full, an incremental with the old key, one with the new key
	// (the keyring still opens the old one's parent), and a plain one.
	v0 := secretVolume(5, 1<<20)
	full, err := s.engine(t, nil).Backup(ctx, bytes.NewReader(v0), BackupOptions{VolumeID: "vol", ObjectSize: 128 << 10})
	require.NoError(t, err)
	require.Nil(t, full.Info.Encryption())
	require.Equal(t, FormatVersion, full.Info.Metadata.Version)
	versions := [][]byte{v0}
	var ids []string
	for i, keys := range []crypt.KeyProvider{oldKey, crypt.NewKeyring(newKey, oldKey)} {
		v := bytes.Clone(versions[len(versions)-1])
		mutate(uint64(10+i), v, 3)
		res, err := s.engine(t, keys).Backup(ctx, bytes.NewReader(v), opts)
		require.NoError(t, err, "incremental %d", i)
		require.False(t, res.Full)
		if i > 0 {
			require.Equal(t, ids[i-1], res.Info.ParentID)
		}
		versions = append(versions, v)
		ids = append(ids, res.Info.ID)
	}
	ring := crypt.NewKeyring(newKey, oldKey)
	e := s.engine(t, ring)
	last, _ := e.Find(ctx, ids[1], "")
	require.Equal(t, keyID(t, newKey), last.Encryption().KeyID)
	first, _ := e.Find(ctx, ids[0], "")
	require.Equal(t, keyID(t, oldKey), first.Encryption().KeyID)

	for i, id := range ids {
		got, err := restoreBytes(t, e, id)
		require.NoError(t, err)
		requireSameData(t, versions[i+1], got, "rotated chain")
	}
	// The new key alone cannot open the old key's layer.
	_, err = restoreBytes(t, s.engine(t, newKey), ids[1])
	require.ErrorIs(t, err, ErrWrongKey)
	require.ErrorContains(t, err, keyID(t, oldKey))
	// The plain full restores without any key.
	got, err := restoreBytes(t, s.engine(t, nil), full.Info.ID)
	require.NoError(t, err)
	requireSameData(t, v0, got, "plain full")
	rep, err := s.engine(t, nil).Verify(ctx, ids[1], VerifyOptions{Chain: true})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Faults)
	require.Equal(t, ids, rep.KeyMissing)
	rep, err = e.Verify(ctx, ids[1], VerifyOptions{Chain: true})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Faults)
	require.Empty(t, rep.KeyMissing)
}

func TestEncryptedMetadataTampering(t *testing.T) {
	ctx := context.Background()
	s := newCryptStore(t)
	e := s.engine(t, staticKey(t, 1))
	a, _, _ := twoBackups(t, s, e)
	path := filepath.Join(s.dir, a.loc.metadataName())
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	edit := func(old, new string) {
		require.Contains(t, string(orig), old)
		require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(orig), old, new, 1)), 0o600))
	}

	// Claiming to be a plain backup: refused as damaged.
	edit(`"version": "`+EncryptedFormatVersion+`"`, `"version": "1.0.0"`)
	_, err = e.Find(ctx, a.ID, "")
	require.ErrorIs(t, err, ErrCorrupt)
	// Moving an object in the metadata: its identity no longer matches.
	require.EqualValues(t, 128<<10, a.Metadata.Objects[1].Offset)
	edit(`"md5": "`+a.Metadata.Objects[1].MD5+`",
        "offset": 131072`, `"md5": "`+a.Metadata.Objects[1].MD5+`",
        "offset": 0`)
	_, err = restoreBytes(t, e, a.ID)
	require.ErrorIs(t, err, ErrCorrupt)
	rep, err := e.Verify(ctx, a.ID, VerifyOptions{})
	require.NoError(t, err)
	var objects []string
	for _, f := range rep.Faults {
		objects = append(objects, f.Object)
	}
	require.Contains(t, objects, a.loc.full(a.Metadata.Objects[1].Name), "%v", rep.Faults)
}

// TestCinderRefusesEncryptedBackups runs real Cinder's restore on an
// encrypted backup: it must refuse it, not write sealed bytes to a volume.
func TestCinderRefusesEncryptedBackups(t *testing.T) {
	rc := newRealCinder(t)
	e, err := New(rc.engine.t, Config{Keys: staticKey(t, 1)})
	require.NoError(t, err)
	data := secretVolume(6, 1<<20)
	f, err := os.Open(writeFile(t, data))
	require.NoError(t, err)
	defer f.Close()
	// Random data: objects stored raw, which Cinder would write as they are.
	res, err := e.Backup(context.Background(), f, BackupOptions{VolumeID: sampleVolume, Compression: "none"})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "cinder-restored.img")
	err = cindertest.Restore(context.Background(), rc.dir, sampleVolume, res.Info.ID, out)
	require.Error(t, err)
	require.Contains(t, err.Error(), "No support to restore backup version")
	if got, rerr := os.ReadFile(out); rerr == nil {
		require.NotEqual(t, sha256.Sum256(data), sha256.Sum256(got))
		require.False(t, bytes.Contains(got, []byte(marker)))
	}
}
