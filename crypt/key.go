package crypt

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// KeySize is the length of every key in bytes (AES-256).
const KeySize = 32

// Key is a 32-byte key: a master key from a KeyProvider, or a backup's
// subkey from BackupKey.
type Key [KeySize]byte

// NewKey checks that b is a 32-byte key and copies it.
func NewKey(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("%w: the key is %d bytes long; AES-256 needs %d", ErrInvalidKey, len(b), KeySize)
	}
	var k Key
	copy(k[:], b)
	return &k, nil
}

// Fingerprint returns the default ID of a master key: "sha256:" and the hex
// of the first 8 bytes of HMAC-SHA256(key, "chunkback key id"). It names the
// key without revealing anything about it.
func Fingerprint(k *Key) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("chunkback key id"))
	return "sha256:" + hex.EncodeToString(m.Sum(nil)[:8])
}

// BackupKey derives the subkey that seals one backup's objects from the
// master key: HKDF-SHA256 with the backup's ID as info.
func BackupKey(master *Key, backupID string) *Key {
	b, err := hkdf.Key(sha256.New, master[:], nil, "chunkback backup key v1\x00"+backupID, KeySize)
	if err != nil {
		panic(err) // only for lengths past 255 hash blocks; ours is one
	}
	var k Key
	copy(k[:], b)
	return &k
}

// CheckValue returns a check value of a subkey, hex of the first 16 bytes of
// HMAC-SHA256(subkey, "chunkback key check"). Recorded with a backup, it
// tells a wrong key from the right one before any object is read, and
// reveals nothing about the key.
func CheckValue(k *Key) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("chunkback key check"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Identity encodes the fields that identify an object (the associated data
// Seal and NewOpenReader bind it to), each prefixed by its length, so that
// no two different lists of fields encode alike.
func Identity(fields ...string) []byte {
	n := 0
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fields {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}
