package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/crypt"
)

// keyFile writes a key file (mode 0600) holding key as hex.
func keyFile(t *testing.T, seed byte) (path string, key []byte) {
	t.Helper()
	key = bytes.Repeat([]byte{seed}, crypt.KeySize)
	path = filepath.Join(t.TempDir(), "backup.key")
	require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600))
	return path, key
}

func fingerprint(t *testing.T, key []byte) string {
	k, err := crypt.NewKey(key)
	require.NoError(t, err)
	return crypt.Fingerprint(k)
}

// encryptedRoundTrip backs a small volume up encrypted into targetURL,
// restores it with the key, and checks that without the key restore fails
// with exit code 7 naming the key, and that no output shows the key.
func encryptedRoundTrip(t *testing.T, targetURL string) {
	t.Helper()
	src, data := volume(t, 3<<20)
	keyPath, key := keyFile(t, 7)
	secret := []string{hex.EncodeToString(key), string(key)}
	volID := "enc-" + strings.ReplaceAll(filepath.Base(t.Name()), "/", "-")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, errOut := cli(t, nil, args...)
		for _, s := range secret {
			require.NotContains(t, out+errOut, s, "the key shows in the output of %v", args)
		}
		return code, out, errOut
	}
	code, out, errOut := run("backup", "--target", targetURL, "--create", "--volume-id", volID, "--object-size", "1048576",
		"--encryption-key-file", keyPath, "--progress", "none", "--json", src)
	require.Equal(t, 0, code, errOut)
	id := jsonOut(t, out)["backup_id"].(string)
	t.Cleanup(func() { cli(t, nil, "delete", "--target", targetURL, "--backup-id", id, "--chain") })

	code, out, errOut = run("show", "--target", targetURL, "--backup-id", id)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "encryption  key "+fingerprint(t, key))

	dest := filepath.Join(t.TempDir(), "restored.img")
	code, _, errOut = run("restore", "--target", targetURL, "--backup-id", id, "--progress", "none", dest)
	require.Equal(t, exitKey, code, errOut)
	require.Contains(t, errOut, fingerprint(t, key))
	require.Contains(t, errOut, "--encryption-key-file")
	_, err := os.Stat(dest)
	require.ErrorIs(t, err, os.ErrNotExist, "a failed restore left a file")

	code, _, errOut = run("restore", "--target", targetURL, "--backup-id", id, "--encryption-key-file", keyPath, "--verify-md5", "--progress", "none", dest)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "restored bytes differ")

	code, out, errOut = run("verify", "--target", targetURL, "--backup-id", id, "--encryption-key-file", keyPath, "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, true, jsonOut(t, out)["ok"])
	require.Empty(t, jsonOut(t, out)["key_missing"])
}

func TestEncryptedRoundTripPosix(t *testing.T) {
	encryptedRoundTrip(t, "file://"+t.TempDir())
}

// TestEncryptedRoundTripServers runs the encrypted round trip against every
// --target URL of every real server.
func TestEncryptedRoundTripServers(t *testing.T) {
	forEachServerURL(t, func(t *testing.T, targetURL string) {
		encryptedRoundTrip(t, targetURL)
	})
}

func TestEncryptionKeyErrors(t *testing.T) {
	store := t.TempDir()
	src, data := volume(t, 1<<20)
	keyPath, key := keyFile(t, 1)
	code, out, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", "v", "--encryption-key-file", keyPath, "--json", "--progress", "none", src)
	require.Equal(t, 0, code, errOut)
	id := jsonOut(t, out)["backup_id"].(string)
	dest := filepath.Join(t.TempDir(), "restored.img")

	// The wrong key, from a variable.
	other := bytes.Repeat([]byte{2}, crypt.KeySize)
	t.Setenv("CHUNKBACK_TEST_KEY", hex.EncodeToString(other))
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, "--encryption-key-env", "CHUNKBACK_TEST_KEY", dest)
	require.Equal(t, exitKey, code, errOut)
	require.Contains(t, errOut, "wrong encryption key")
	require.Contains(t, errOut, fingerprint(t, key))
	require.NotContains(t, errOut, hex.EncodeToString(other))

	// Both: the file's key is current, the variable's opens old backups.
	t.Setenv("CHUNKBACK_TEST_KEY", hex.EncodeToString(key))
	newKeyPath, newKey := keyFile(t, 3)
	code, out, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "v", "--incremental", "--encryption-key-file", newKeyPath,
		"--encryption-key-env", "CHUNKBACK_TEST_KEY", "--json", "--progress", "none", src)
	require.Equal(t, 0, code, errOut)
	inc := jsonOut(t, out)["backup_id"].(string)
	code, out, errOut = cli(t, nil, "show", "--target", store, "--backup-id", inc, "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fingerprint(t, newKey), jsonOut(t, out)["encryption"].(map[string]any)["key_id"])
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", inc, "--encryption-key-file", newKeyPath, "--encryption-key-env", "CHUNKBACK_TEST_KEY", dest)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))

	// Verify without a key checks the stored bytes and says so.
	code, out, errOut = cli(t, nil, "verify", "--target", store, "--backup-id", inc)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "no key was given: only its stored bytes were checked")

	// A key file others can read, a variable that is not set, a bad key.
	require.NoError(t, os.Chmod(keyPath, 0o644))
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, "--encryption-key-file", keyPath, dest)
	require.Equal(t, exitKey, code, errOut)
	require.Contains(t, errOut, "chmod 600")
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, "--encryption-key-env", "CHUNKBACK_TEST_KEY_UNSET", dest)
	require.Equal(t, exitKey, code, errOut)
	require.Contains(t, errOut, "CHUNKBACK_TEST_KEY_UNSET")
	t.Setenv("CHUNKBACK_TEST_KEY", "not-a-key-but-a-secret-passphrase")
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, "--encryption-key-env", "CHUNKBACK_TEST_KEY", dest)
	require.Equal(t, exitKey, code, errOut)
	require.NotContains(t, errOut, "secret-passphrase")
}
