package chunk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/chunkback/chunkback/sha"
)

// Chunker hands out the chunks of a source in order. Create it with New, take
// chunks with Next until io.EOF, and always Close it.
type Chunker struct {
	cfg      Config
	src      io.Reader
	ctx      context.Context
	cancel   context.CancelFunc
	free     chan []byte
	zero     []byte
	zeroHash sha.Hash
	wg       sync.WaitGroup
	read     atomic.Int64
	covered  atomic.Int64
	wanted   []blockRun // Config.Extents as sorted, merged block runs

	zerosOnce sync.Once
	zeros     []byte // read-only zeros: the Data of chunks that are all hole

	mu      sync.Mutex
	cond    *sync.Cond
	ready   map[int]*Chunk
	next    int // index Next returns next
	last    int // index of the end (first index past the last chunk), or -1
	err     error
	stopped bool
}

// New starts cutting src. The returned Chunker's goroutines stop when the
// source ends, on the first error, when ctx is cancelled, or on Close.
func New(ctx context.Context, src io.Reader, cfg Config) (*Chunker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	c := &Chunker{
		cfg:    cfg,
		src:    src,
		ctx:    ctx,
		cancel: cancel,
		free:   make(chan []byte, cfg.Buffers),
		zero:   make([]byte, cfg.BlockSize),
		ready:  map[int]*Chunk{},
		last:   -1,
	}
	c.cond = sync.NewCond(&c.mu)
	c.zeroHash = sha.Sum(c.zero)
	for range cfg.Buffers {
		c.free <- nil // allocated on first use, so small sources stay small
	}
	ra, isReaderAt := src.(io.ReaderAt)
	if cfg.Extents != nil {
		if !isReaderAt || cfg.Size < 0 {
			cancel()
			return nil, errors.New("extents: reading only some extents needs a source that implements io.ReaderAt, with a known size")
		}
		c.wanted = blockRuns(cfg.Extents, cfg.BlockSize, cfg.Size)
	}
	if isReaderAt && cfg.Size >= 0 {
		c.startParallel(ra)
	} else {
		if cfg.Size >= 0 {
			// A stated size is the source's length: read no further.
			c.src = io.LimitReader(src, cfg.Size)
		}
		c.startSequential()
	}
	// Wake Next when the context ends, whoever is waiting.
	go func() {
		<-ctx.Done()
		c.fail(ctx.Err())
	}()
	return c, nil
}

// BytesRead returns how many source bytes have been read so far.
func (c *Chunker) BytesRead() int64 { return c.read.Load() }

// BytesCovered returns how many source bytes the chunks made so far cover,
// whether read or skipped (Config.Extents); without Extents it is BytesRead.
func (c *Chunker) BytesCovered() int64 { return c.covered.Load() }

// ZeroHash returns the hash of an all-zero block of BlockSize bytes.
func (c *Chunker) ZeroHash() sha.Hash { return c.zeroHash }

// Next returns the next chunk in source order, or io.EOF after the last one.
// The caller must Release every chunk it gets.
func (c *Chunker) Next() (*Chunk, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if ch, ok := c.ready[c.next]; ok {
			if ch.err != nil {
				if c.err == nil {
					c.err = ch.err
				}
				return nil, c.err
			}
			delete(c.ready, c.next)
			c.next++
			return ch, nil
		}
		if c.err != nil {
			return nil, c.err
		}
		if c.last >= 0 && c.next >= c.last {
			return nil, io.EOF
		}
		c.cond.Wait()
	}
}

// Close stops the chunker's goroutines and waits for them. Chunks already
// handed out stay valid until released.
func (c *Chunker) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.stopped = true
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ch := range c.ready {
		ch.Release()
		delete(c.ready, i)
	}
	return nil
}

// fail records the first error and wakes Next. Errors after Close are the
// chunker's own cancellation and are not recorded.
func (c *Chunker) fail(err error) {
	c.mu.Lock()
	if c.err == nil && !c.stopped {
		c.err = err
	}
	c.mu.Unlock()
	c.cond.Broadcast()
	c.cancel()
}

// end records the index one past the last chunk.
func (c *Chunker) end(index int) {
	c.mu.Lock()
	if c.last < 0 || index < c.last {
		c.last = index
	}
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *Chunker) deliver(ch *Chunk) {
	c.mu.Lock()
	c.ready[ch.Index] = ch
	c.mu.Unlock()
	c.cond.Broadcast()
}

// buffer waits for a free chunk buffer.
func (c *Chunker) buffer() ([]byte, error) {
	select {
	case buf := <-c.free:
		if buf == nil {
			buf = make([]byte, c.cfg.ObjectSize)
		}
		return buf, nil
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

func (c *Chunker) newChunk(index int, buf []byte, n int) *Chunk {
	per := c.cfg.ObjectSize / c.cfg.BlockSize
	return &Chunk{
		Index:      index,
		Offset:     int64(index) * int64(c.cfg.ObjectSize),
		Data:       buf[:n],
		FirstBlock: index * per,
		blockSize:  c.cfg.BlockSize,
		length:     int64(n),
		owner:      c,
		buf:        buf,
	}
}

// startParallel: every worker takes the next index, reads that chunk with
// ReadAt and hashes it. A buffer is taken BEFORE the index, so the lowest
// index not yet delivered always has a buffer and Next cannot deadlock.
func (c *Chunker) startParallel(ra io.ReaderAt) {
	size := c.cfg.Size
	chunks := int((size + int64(c.cfg.ObjectSize) - 1) / int64(c.cfg.ObjectSize))
	c.end(chunks)
	var nextIndex atomic.Int64
	for range c.cfg.Workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				buf, err := c.buffer()
				if err != nil {
					return
				}
				i := int(nextIndex.Add(1) - 1)
				if i >= chunks {
					c.free <- buf
					return
				}
				off := int64(i) * int64(c.cfg.ObjectSize)
				want := int(min(int64(c.cfg.ObjectSize), size-off))
				if c.wanted != nil {
					ch, err := c.readExtents(ra, i, buf, want)
					if err != nil {
						c.deliver(&Chunk{Index: i, err: err})
						return
					}
					c.covered.Add(int64(want))
					c.deliver(ch)
					continue
				}
				n, err := ra.ReadAt(buf[:want], off)
				c.read.Add(int64(n))
				if n < want {
					c.free <- buf
					if err == nil || errors.Is(err, io.EOF) {
						err = fmt.Errorf("%w: it ended at byte %d, but its size is %d", ErrShortSource, off+int64(n), size)
					} else {
						err = fmt.Errorf("reading source at byte %d: %w", off, err)
					}
					// Delivered in order, so Next reports the first failing
					// chunk, not whichever worker failed first.
					c.deliver(&Chunk{Index: i, err: err})
					return
				}
				ch := c.newChunk(i, buf, n)
				ch.hashBlocks(c.zero, c.zeroHash, c.cfg.SkipZeroHash, nil)
				c.covered.Add(int64(n))
				c.deliver(ch)
			}
		}()
	}
}

// blockRun is a range [start, end) of global block indexes.
type blockRun struct{ start, end int }

// blockRuns turns byte extents into the sorted, merged runs of the blocks
// they touch, clipped to the source's size.
func blockRuns(extents []Extent, blockSize int, size int64) []blockRun {
	bs := int64(blockSize)
	total := int((size + bs - 1) / bs)
	runs := make([]blockRun, 0, len(extents))
	for _, e := range extents {
		if e.Length == 0 || e.Offset >= size {
			continue
		}
		end := min(e.Offset+e.Length, size)
		runs = append(runs, blockRun{int(e.Offset / bs), min(total, int((end+bs-1)/bs))})
	}
	slices.SortFunc(runs, func(a, b blockRun) int { return a.start - b.start })
	merged := runs[:0]
	for _, r := range runs {
		if n := len(merged); n > 0 && r.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	return slices.Clip(merged)
}

// readExtents makes chunk i (of n bytes) reading only the blocks of
// c.wanted; the others are marked Skipped. A chunk with nothing to read
// gives its buffer back at once.
func (c *Chunker) readExtents(ra io.ReaderAt, i int, buf []byte, n int) (*Chunk, error) {
	bs := c.cfg.BlockSize
	per := c.cfg.ObjectSize / bs
	first := i * per
	blocks := (n + bs - 1) / bs
	skipped := make([]bool, blocks)
	for k := range skipped {
		skipped[k] = true
	}
	read := false
	at, _ := slices.BinarySearchFunc(c.wanted, first, func(r blockRun, b int) int {
		if r.end <= b {
			return -1
		}
		return 1
	})
	off := int64(i) * int64(c.cfg.ObjectSize)
	for _, r := range c.wanted[at:] {
		if r.start >= first+blocks {
			break
		}
		lo, hi := max(r.start, first)-first, min(r.end, first+blocks)-first
		start, end := lo*bs, min(hi*bs, n)
		got, err := ra.ReadAt(buf[start:end], off+int64(start))
		c.read.Add(int64(got))
		if got < end-start {
			c.free <- buf
			if err == nil || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: it ended at byte %d, but its size is %d", ErrShortSource, off+int64(start+got), c.cfg.Size)
			}
			return nil, fmt.Errorf("reading source at byte %d: %w", off+int64(start), err)
		}
		for k := lo; k < hi; k++ {
			skipped[k] = false
		}
		read = true
	}
	ch := c.newChunk(i, buf, n)
	if c.cfg.ZeroOutside {
		return c.fillHoles(ch, skipped, read), nil
	}
	ch.Skipped = skipped
	if !read {
		c.free <- buf
		ch.buf, ch.Data = nil, nil
		ch.Hashes, ch.Zero = make([]sha.Hash, blocks), make([]bool, blocks)
		return ch, nil
	}
	ch.hashBlocks(c.zero, c.zeroHash, c.cfg.SkipZeroHash, nil)
	return ch, nil
}

// fillHoles completes a chunk whose unread blocks are holes: they read as
// zeros. A chunk that is all hole shares one read-only buffer of zeros, so
// a mostly empty sparse file costs neither reads nor memory writes.
func (c *Chunker) fillHoles(ch *Chunk, hole []bool, read bool) *Chunk {
	if !read {
		c.free <- ch.buf
		c.zerosOnce.Do(func() { c.zeros = make([]byte, c.cfg.ObjectSize) })
		ch.buf, ch.Data = nil, c.zeros[:len(ch.Data)]
		ch.Hashes, ch.Zero = make([]sha.Hash, len(hole)), make([]bool, len(hole))
		for k := range hole {
			ch.Zero[k] = true
			if c.cfg.SkipZeroHash {
				continue
			}
			if b := ch.Block(k); len(b) == c.cfg.BlockSize {
				ch.Hashes[k] = c.zeroHash
			} else {
				ch.Hashes[k] = sha.Sum(b)
			}
		}
		return ch
	}
	for k, h := range hole {
		if h {
			clear(ch.Block(k))
		}
	}
	ch.hashBlocks(c.zero, c.zeroHash, c.cfg.SkipZeroHash, hole)
	return ch
}

// startSequential: one goroutine reads in order and hands chunks to hashing
// workers.
func (c *Chunker) startSequential() {
	jobs := make(chan *Chunk, c.cfg.Workers)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(jobs)
		for i := 0; ; i++ {
			buf, err := c.buffer()
			if err != nil {
				return
			}
			n, err := io.ReadFull(c.src, buf)
			c.read.Add(int64(n))
			switch {
			case err == nil, errors.Is(err, io.ErrUnexpectedEOF):
			case errors.Is(err, io.EOF):
				n = 0
			default:
				c.free <- buf
				c.fail(fmt.Errorf("reading source at byte %d: %w", int64(i)*int64(c.cfg.ObjectSize)+int64(n), err))
				return
			}
			if n == 0 {
				c.free <- buf
				c.finishSequential(i)
				return
			}
			c.covered.Add(int64(n))
			select {
			case jobs <- c.newChunk(i, buf, n):
			case <-c.ctx.Done():
				c.free <- buf
				return
			}
			if n < len(buf) {
				c.finishSequential(i + 1)
				return
			}
		}
	}()
	for range c.cfg.Workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for ch := range jobs {
				ch.hashBlocks(c.zero, c.zeroHash, c.cfg.SkipZeroHash, nil)
				c.deliver(ch)
			}
		}()
	}
}

// finishSequential ends a stream; a stated size that was not reached is an
// error.
func (c *Chunker) finishSequential(chunks int) {
	if c.cfg.Size >= 0 && c.read.Load() < c.cfg.Size {
		c.fail(fmt.Errorf("%w: it ended at byte %d, but its size is %d", ErrShortSource, c.read.Load(), c.cfg.Size))
		return
	}
	c.end(chunks)
}
