package gcs

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"cloud.google.com/go/storage"
)

// chunkedReader reads the range [pos, end) of an object as consecutive
// requests of at most Config.ReaderChunkSize bytes, as Cinder's driver
// downloads in chunks. The first request is already open when it is made.
type chunkedReader struct {
	ctx  context.Context
	t    *Target
	name string
	// obj is the object pinned to the generation of the first request (nil
	// when the first request reads the whole range).
	obj    *storage.ObjectHandle
	cur    *storage.Reader // the open request, nil between requests
	pos    int64           // offset of the next byte to read
	curEnd int64           // end of the range of cur
	end    int64           // end of the whole range

	// crc, when set, is the CRC32C of the bytes read so far of a whole
	// object, to be compared with wantCRC at its end.
	crc     hash.Hash32
	wantCRC uint32
	err     error // sticky
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for {
		if c.cur == nil {
			if c.pos >= c.end {
				c.err = c.finish()
				return 0, c.err
			}
			if err := c.open(); err != nil {
				c.err = err
				return 0, err
			}
		}
		n, err := c.cur.Read(p)
		c.pos += int64(n)
		if c.crc != nil {
			c.crc.Write(p[:n])
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF):
			c.cur.Close()
			c.cur = nil
			if c.pos != c.curEnd {
				c.err = fmt.Errorf("gcs: get %q: the server sent the range up to byte %d, short of %d: %w", c.name, c.pos, c.curEnd, io.ErrUnexpectedEOF)
				return n, c.err
			}
			if n > 0 {
				return n, nil
			}
		default:
			c.err = c.readFailed(err)
			return n, c.err
		}
	}
}

// open starts the request for the next chunk.
func (c *chunkedReader) open() error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("gcs: get %q: %w", c.name, err)
	}
	n := min(int64(c.t.cfg.ReaderChunkSize), c.end-c.pos)
	r, err := c.obj.NewRangeReader(c.ctx, c.pos, n)
	if err != nil {
		if errors.Is(err, storage.ErrObjectNotExist) {
			// The generation read so far is gone: the object was replaced or
			// deleted during the read.
			return fmt.Errorf("gcs: get %q: the object was replaced or deleted while it was read (at byte %d): %w", c.name, c.pos, err)
		}
		return c.t.fail("get", c.name, err)
	}
	c.cur, c.curEnd = r, c.pos+n
	return nil
}

// finish checks the CRC32C of a whole object read in chunks, and ends the
// read with io.EOF.
func (c *chunkedReader) finish() error {
	if c.crc != nil {
		if got := c.crc.Sum32(); got != c.wantCRC {
			return fmt.Errorf("gcs: get %q: the bytes read have CRC32C %08x, the object's is %08x: %w", c.name, got, c.wantCRC, ErrChecksumMismatch)
		}
	}
	return io.EOF
}

// readFailed wraps an error of the body of a request.
func (c *chunkedReader) readFailed(err error) error {
	if cerr := c.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("gcs: get %q: %w (%v)", c.name, cerr, err)
	}
	return fmt.Errorf("gcs: get %q: %w", c.name, err)
}

// Close ends the request in progress.
func (c *chunkedReader) Close() error {
	if c.cur != nil {
		err := c.cur.Close()
		c.cur = nil
		return err
	}
	return nil
}
