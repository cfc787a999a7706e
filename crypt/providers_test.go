package crypt

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStaticKey(t *testing.T) {
	ctx := context.Background()
	_, err := StaticKey("", make([]byte, 16))
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorContains(t, err, "16 bytes")

	k := testKey(3)
	s, err := StaticKey("", k[:])
	require.NoError(t, err)
	id, err := s.CurrentKeyID(ctx)
	require.NoError(t, err)
	require.Equal(t, Fingerprint(k), id)
	got, err := s.Key(ctx, id)
	require.NoError(t, err)
	require.Equal(t, k[:], got)
	got[0] ^= 1 // a copy: the provider's key stays as it was
	again, _ := s.Key(ctx, id)
	require.Equal(t, k[:], again)
	_, err = s.Key(ctx, "sha256:0000000000000000")
	require.ErrorIs(t, err, ErrKeyNotFound)

	named, err := StaticKey("barbican/1234", k[:])
	require.NoError(t, err)
	id, _ = named.CurrentKeyID(ctx)
	require.Equal(t, "barbican/1234", id)
}

func writeKeyFile(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, data, mode))
	require.NoError(t, os.Chmod(path, mode))
	return path
}

func TestKeyFileEncodings(t *testing.T) {
	ctx := context.Background()
	k := testKey(9)
	want := Fingerprint(k)
	for name, data := range map[string][]byte{
		"raw":           k[:],
		"hex":           []byte(hex.EncodeToString(k[:]) + "\n"),
		"HEX":           []byte(" " + hexUpper(k[:]) + " \n"),
		"base64":        []byte(base64.StdEncoding.EncodeToString(k[:]) + "\n"),
		"base64 raw":    []byte(base64.RawStdEncoding.EncodeToString(k[:])),
		"base64 url":    []byte(base64.URLEncoding.EncodeToString(k[:])),
		"base64 crlf":   []byte(base64.StdEncoding.EncodeToString(k[:]) + "\r\n"),
		"raw with nuls": append([]byte{0, 0}, k[2:]...),
	} {
		p, err := KeyFile(writeKeyFile(t, data, 0o600))
		require.NoError(t, err, name)
		id, _ := p.CurrentKeyID(ctx)
		if name == "raw with nuls" {
			require.NotEqual(t, want, id)
			continue
		}
		require.Equal(t, want, id, name)
	}
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestKeyFileRefusals(t *testing.T) {
	k := testKey(9)
	secret := hex.EncodeToString(k[:])

	_, err := KeyFile(writeKeyFile(t, []byte(secret), 0o644))
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorContains(t, err, "chmod 600")
	_, err = KeyFile(writeKeyFile(t, []byte(secret), 0o640))
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = KeyFile(writeKeyFile(t, []byte(secret), 0o400))
	require.NoError(t, err)

	for name, data := range map[string]string{
		"short hex":    secret[:62],
		"passphrase":   "correct horse battery staple",
		"base64 of 16": base64.StdEncoding.EncodeToString(k[:16]),
		"empty":        "",
		"huge":         string(make([]byte, 5000)),
	} {
		_, err := KeyFile(writeKeyFile(t, []byte(data), 0o600))
		require.ErrorIs(t, err, ErrInvalidKey, name)
		require.ErrorContains(t, err, "head -c 32 /dev/urandom", name)
		if data != "" {
			require.NotContains(t, err.Error(), data, "%s: the error quotes the key material", name)
		}
	}
	_, err = KeyFile(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestEnvKey(t *testing.T) {
	ctx := context.Background()
	k := testKey(4)
	t.Setenv("CHUNKBACK_TEST_KEY", base64.StdEncoding.EncodeToString(k[:]))
	p, err := EnvKey("CHUNKBACK_TEST_KEY")
	require.NoError(t, err)
	id, _ := p.CurrentKeyID(ctx)
	require.Equal(t, Fingerprint(k), id)

	_, err = EnvKey("CHUNKBACK_TEST_KEY_UNSET")
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorContains(t, err, `"CHUNKBACK_TEST_KEY_UNSET" is not set`)

	// 32 raw characters are no key in a variable: too easily a passphrase.
	t.Setenv("CHUNKBACK_TEST_KEY", "0123456789abcdef0123456789abcdef")
	_, err = EnvKey("CHUNKBACK_TEST_KEY")
	require.ErrorIs(t, err, ErrInvalidKey)
	require.NotContains(t, err.Error(), "0123456789abcdef")
}

func TestKeyring(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := testKey(1), testKey(2)
	oldP, _ := StaticKey("", oldKey[:])
	newP, _ := StaticKey("", newKey[:])
	ring := NewKeyring(newP, nil, oldP)
	id, err := ring.CurrentKeyID(ctx)
	require.NoError(t, err)
	require.Equal(t, Fingerprint(newKey), id)
	got, err := ring.Key(ctx, Fingerprint(oldKey))
	require.NoError(t, err)
	require.Equal(t, oldKey[:], got)
	_, err = ring.Key(ctx, "sha256:ffffffffffffffff")
	require.ErrorIs(t, err, ErrKeyNotFound)
	require.ErrorContains(t, err, "none of the 2 key(s)")
	_, err = NewKeyring().CurrentKeyID(ctx)
	require.ErrorIs(t, err, ErrKeyNotFound)
}
