package backup

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/crypt"
)

// An encrypted backup resumes like a plain one, its journal holds no digest
// of plaintext, and a resume with another key is refused.
func TestEncryptedResume(t *testing.T) {
	ctx := context.Background()
	src := secretVolume(21, 3<<20+777)
	r := newRig(t, 1)
	withKey := func(keys crypt.KeyProvider) *Engine {
		e, err := New(r.puts, Config{Now: fixedNow(), Workers: 1, Keys: keys})
		require.NoError(t, err)
		return e
	}
	r.failDataPutsAfter(10)
	o := resumeOpts()
	o.Resumable = true
	_, err := withKey(staticKey(t, 1)).Backup(ctx, bytes.NewReader(src), o)
	requirePartial(t, err, resumeID, 10)

	var journal []byte
	for name, data := range r.files(t) {
		if strings.Contains(name, "chunkback_journal") {
			journal = data
		}
	}
	require.NotEmpty(t, journal, "the partial backup's journal")
	require.Contains(t, string(journal), `"d":`, "keyed digests of the data")
	for off := 0; off < len(src); off += int(o.ObjectSize) {
		sum := md5.Sum(src[off:min(off+int(o.ObjectSize), len(src))])
		require.NotContains(t, string(journal), hex.EncodeToString(sum[:]), "the MD5 of plaintext at byte %d is in the journal", off)
	}

	r.faulty.Reset()
	o.Resume = true
	_, err = withKey(staticKey(t, 2)).Backup(ctx, bytes.NewReader(src), o)
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.Contains(t, err.Error(), "encryption key "+keyID(t, staticKey(t, 1)))
	_, err = withKey(nil).Backup(ctx, bytes.NewReader(src), o)
	require.ErrorIs(t, err, ErrInvalidOptions, "a plain resume of an encrypted backup")

	e := withKey(staticKey(t, 1))
	res, err := e.Backup(ctx, bytes.NewReader(src), o)
	require.NoError(t, err)
	require.Equal(t, 10, res.ObjectsReused)
	got, err := restoreBytes(t, e, resumeID)
	require.NoError(t, err)
	requireSameData(t, src, got, "resumed encrypted backup")
	rep, err := e.Verify(ctx, resumeID, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Faults)
}
