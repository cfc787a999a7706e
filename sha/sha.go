// Package sha holds the per-block SHA-256 manifest of a backup, Cinder's
// _sha256file: one hash per block_size bytes of the whole source, for every
// backup, full or incremental. It reads and writes the object byte for byte as
// Cinder does, and diffs a manifest against its parent's into runs of changed
// blocks.
package sha

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Version is the only manifest version Cinder writes and reads.
const Version = "1.0.0"

// Hash is the SHA-256 of one block.
type Hash [sha256.Size]byte

// String returns the lower-case hex form Cinder stores.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Sum hashes one block.
func Sum(block []byte) Hash { return sha256.Sum256(block) }

// ZeroHash returns the hash of n zero bytes.
func ZeroHash(n int) Hash { return Sum(make([]byte, n)) }

// ParseHash reads the 64-character hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("sha256 %q is %d characters long, want %d", s, len(s), 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("sha256 %q is not hex: %w", s, err)
	}
	return h, nil
}

// Manifest is the content of a backup's _sha256file object.
type Manifest struct {
	// BackupDescription and BackupName are the backup's display description
	// and name; nil is JSON null.
	BackupDescription *string
	BackupID          string
	BackupName        *string
	// BlockSize is the number of bytes each hash covers (Cinder's
	// "chunk_size", which is the hash block size, not the object size).
	BlockSize int
	// CreatedAt is the backup's creation time as Python's str(datetime) writes
	// it, e.g. "2026-11-22 02:32:21.532401+00:00".
	CreatedAt string
	// Hashes holds one hash per block of the whole source; the last may cover
	// a block shorter than BlockSize.
	Hashes   []Hash
	Version  string
	VolumeID string
}

// Blocks returns how many blocks cover size bytes at the given block size.
func Blocks(size int64, blockSize int) int {
	return int((size + int64(blockSize) - 1) / int64(blockSize))
}
