package backup

import (
	"fmt"
	"sync"

	"github.com/chunkback/chunkback/sha"
)

// blockChecker verifies restored bytes against a manifest, block by block.
// Bytes arrive as pieces in any order and from any goroutine; a block that
// one piece covers whole is hashed at once, a block split over several pieces
// is assembled first.
type blockChecker struct {
	hashes    []sha.Hash
	blockSize int64
	size      int64
	zeroHash  sha.Hash

	mu      sync.Mutex
	partial map[int64]*partialBlock
}

type partialBlock struct {
	buf    []byte
	filled int64
}

func newBlockChecker(hashes []sha.Hash, blockSize int, size int64) *blockChecker {
	return &blockChecker{
		hashes: hashes, blockSize: int64(blockSize), size: size,
		zeroHash: sha.ZeroHash(blockSize), partial: map[int64]*partialBlock{},
	}
}

// blockEnd returns the end of block b (the last block may be short).
func (c *blockChecker) blockEnd(b int64) int64 { return min((b+1)*c.blockSize, c.size) }

// check verifies the bytes data, which belong at offset off. source names
// where they came from, for the error. data == nil stands for zeros.
func (c *blockChecker) check(off int64, length int64, data []byte, source string) error {
	end := off + length
	for b := off / c.blockSize; b*c.blockSize < end; b++ {
		bStart, bEnd := b*c.blockSize, c.blockEnd(b)
		if off <= bStart && bEnd <= end {
			var h sha.Hash
			if data == nil && bEnd-bStart == c.blockSize {
				h = c.zeroHash
			} else if data == nil {
				h = sha.Sum(make([]byte, bEnd-bStart))
			} else {
				h = sha.Sum(data[bStart-off : bEnd-off])
			}
			if err := c.compare(b, h, source); err != nil {
				return err
			}
			continue
		}
		// Part of the block: keep it until the rest arrives.
		from, to := max(bStart, off), min(bEnd, end)
		c.mu.Lock()
		p := c.partial[b]
		if p == nil {
			p = &partialBlock{buf: make([]byte, bEnd-bStart)}
			c.partial[b] = p
		}
		if data != nil {
			copy(p.buf[from-bStart:], data[from-off:to-off])
		}
		p.filled += to - from
		complete := p.filled == int64(len(p.buf))
		if complete {
			delete(c.partial, b)
		}
		c.mu.Unlock()
		if complete {
			if err := c.compare(b, sha.Sum(p.buf), source); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *blockChecker) compare(b int64, h sha.Hash, source string) error {
	if h != c.hashes[b] {
		return fmt.Errorf("%w: block %d (bytes %d-%d) from %s does not match the SHA-256 manifest", ErrCorrupt, b, b*c.blockSize, c.blockEnd(b)-1, source)
	}
	return nil
}

// incomplete reports a block that never got all its bytes (a bug guard).
func (c *blockChecker) incomplete() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := range c.partial {
		return fmt.Errorf("%w: block %d was only partly restored", ErrCorrupt, b)
	}
	return nil
}
