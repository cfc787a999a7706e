// Package chunk cuts a byte source into objects of a fixed size and hashes
// each object's blocks, in parallel and with bounded memory.
//
// A Chunker reads the source sequentially from an io.Reader, or in parallel
// with io.ReaderAt when the source offers it and its size is known. Hashing
// runs on several goroutines; chunks are handed out in source order. Blocks
// that are all zeros are recognised with a plain comparison and not hashed
// (their hash is known), which makes sparse and thin sources cheap.
//
// Memory is bounded by Config.Buffers chunk buffers of ObjectSize bytes,
// whatever the size of the source: a buffer returns to the chunker when the
// consumer calls Chunk.Release.
package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"

	"github.com/chunkback/chunkback/sha"
)

// Config sets how a source is cut. ObjectSize and BlockSize are required.
type Config struct {
	// ObjectSize is the number of bytes per chunk (Cinder's object size). It
	// must be a positive multiple of BlockSize.
	ObjectSize int
	// BlockSize is the number of bytes each hash covers (Cinder's sha block
	// size, 32768 by default in Cinder).
	BlockSize int
	// Size is the source's length in bytes, or -1 (the default 0 is taken as
	// unknown too) when it is not known. With a known size and a source that
	// implements io.ReaderAt, chunks are read in parallel; a source that ends
	// before Size bytes is an error.
	Size int64
	// Workers is the number of goroutines that read and hash. Default:
	// runtime.GOMAXPROCS(0).
	Workers int
	// Buffers is the number of chunk buffers, which bounds memory at
	// Buffers x ObjectSize. Default: Workers + 2. It must be at least 1.
	Buffers int
	// SkipZeroHash, when set, leaves the hash of all-zero blocks unset (the
	// zero Hash) instead of filling in the known hash of a zero block. The
	// engine does not need it; it exists for benchmarks.
	SkipZeroHash bool
	// Extents, when not nil, are the only byte ranges of the source to read:
	// blocks they do not touch are neither read nor hashed, and are marked
	// in Chunk.Skipped (a changed-block list, such as librbd's diff between
	// two snapshots, makes an incremental read only what changed). It needs
	// a source that implements io.ReaderAt and a known Size.
	Extents []Extent
	// ZeroOutside makes the blocks that Extents do not touch holes instead
	// of skipped blocks: they are not read, but they read as zeros (Data
	// holds zeros there), are marked Zero and get the zero block's hash. It
	// is for sparse files, whose data extents SEEK_DATA/SEEK_HOLE report.
	ZeroOutside bool
}

// Extent is a range of bytes of the source.
type Extent struct {
	Offset, Length int64
}

// Validate checks the configuration and says how to fix it.
func (c Config) Validate() error {
	switch {
	case c.BlockSize <= 0:
		return fmt.Errorf("block size %d: must be a positive number of bytes (Cinder's default is 32768)", c.BlockSize)
	case c.ObjectSize <= 0:
		return fmt.Errorf("object size %d: must be a positive number of bytes (Cinder's default is 52428800)", c.ObjectSize)
	case c.ObjectSize%c.BlockSize != 0:
		return fmt.Errorf("object size %d is not a multiple of block size %d: use a multiple such as %d", c.ObjectSize, c.BlockSize, (c.ObjectSize/c.BlockSize+1)*c.BlockSize)
	case c.Workers < 0:
		return fmt.Errorf("workers %d: must not be negative (0 picks the number of CPUs)", c.Workers)
	case c.Buffers < 0:
		return fmt.Errorf("buffers %d: must not be negative (0 picks workers + 2)", c.Buffers)
	}
	for _, e := range c.Extents {
		if e.Offset < 0 || e.Length < 0 {
			return fmt.Errorf("extent {offset %d, length %d}: offsets and lengths must not be negative", e.Offset, e.Length)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Buffers == 0 {
		c.Buffers = c.Workers + 2
	}
	if c.Size <= 0 {
		c.Size = -1
	}
	return c
}

// ErrShortSource is wrapped by the error a Chunker returns when a source of
// known size ends early.
var ErrShortSource = errors.New("source is shorter than its stated size")

// Chunk is one object_size piece of the source with its block hashes.
type Chunk struct {
	// Index is the chunk's position: Offset = Index x ObjectSize.
	Index int
	// Offset is the chunk's byte offset in the source.
	Offset int64
	// Data holds the chunk's bytes; only the last chunk may be shorter than
	// ObjectSize. It is valid until Release. The bytes of Skipped blocks are
	// undefined, and Data is nil when every block is skipped.
	Data []byte
	// Hashes holds one hash per block of Data.
	Hashes []sha.Hash
	// Zero tells, per block, whether the block is all zeros.
	Zero []bool
	// Skipped tells, per block, whether the block was left unread because
	// no Config.Extents range touches it; its hash is then unset. It is nil
	// without Extents.
	Skipped []bool
	// FirstBlock is the global index of the chunk's first block.
	FirstBlock int

	blockSize int
	length    int64 // source bytes covered, read or skipped
	owner     *Chunker
	buf       []byte
	err       error // a read failure, reported by Next in source order
}

// Blocks returns the number of blocks in the chunk.
func (c *Chunk) Blocks() int { return len(c.Hashes) }

// Len returns the number of source bytes the chunk covers, read or skipped.
func (c *Chunk) Len() int64 { return c.length }

// Block returns the bytes of block i (0-based within the chunk).
func (c *Chunk) Block(i int) []byte {
	end := min((i+1)*c.blockSize, len(c.Data))
	return c.Data[i*c.blockSize : end]
}

// Release gives the chunk's buffer back to the chunker. Data must not be used
// afterwards. Release is safe to call more than once.
func (c *Chunk) Release() {
	if c.owner != nil && c.buf != nil {
		c.owner.free <- c.buf
		c.buf = nil
		c.Data = nil
	}
}

// hashBlocks fills in Hashes and Zero for the chunk's data. Blocks marked
// in holes (nil: none) are known to be zeros and are not compared.
func (c *Chunk) hashBlocks(zeroBlock []byte, zeroHash sha.Hash, skipZeroHash bool, holes []bool) {
	n := (len(c.Data) + c.blockSize - 1) / c.blockSize
	c.Hashes = make([]sha.Hash, n)
	c.Zero = make([]bool, n)
	for i := range n {
		if c.Skipped != nil && c.Skipped[i] {
			continue
		}
		b := c.Block(i)
		// A vectorised compare is an order of magnitude cheaper than SHA-256.
		if (holes != nil && holes[i]) || bytes.Equal(b, zeroBlock[:len(b)]) {
			c.Zero[i] = true
			if skipZeroHash {
				continue
			}
			if len(b) == len(zeroBlock) {
				c.Hashes[i] = zeroHash
			} else {
				c.Hashes[i] = sha.Sum(b)
			}
			continue
		}
		c.Hashes[i] = sha.Sum(b)
	}
}
