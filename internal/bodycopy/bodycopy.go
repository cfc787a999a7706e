// Package bodycopy copies a Put's body into a file, for the targets that
// write files (posix, gluster): exactly the declared size, looking at the
// context between pieces, without a copy through a buffer when the body is
// a *bytes.Reader (what the engine passes).
package bodycopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/chunkback/chunkback/target"
)

// Chunk is the size of the pieces Copy writes, and how much it copies
// between two looks at the context.
const Chunk = 1 << 20

// Copier copies bodies; its zero value is not usable: use New. One Copier is
// shared by a target's Puts (it pools its buffers).
type Copier struct {
	bufs sync.Pool
}

// New returns a Copier.
func New() *Copier {
	return &Copier{bufs: sync.Pool{New: func() any { b := make([]byte, Chunk); return &b }}}
}

// Copy writes exactly size bytes of body to w. A body that ends early is an
// error wrapping target.ErrInvalidArgument and io.ErrUnexpectedEOF. A
// *bytes.Reader is written straight from its bytes; only that exact type,
// since a type that embeds one and overrides Read (to count, throttle or
// fail) would have its Read bypassed.
func (c *Copier) Copy(ctx context.Context, w io.Writer, body io.Reader, size int64) error {
	if br, ok := body.(*bytes.Reader); ok {
		cw := &chunkWriter{ctx: ctx, w: w, left: size}
		_, err := br.WriteTo(cw)
		switch {
		case cw.err != nil:
			return cw.err // the context, or writing the file
		case err != nil && !errors.Is(err, errBodyDone):
			return fmt.Errorf("reading body at byte %d of %d: %w", size-cw.left, size, err)
		case cw.left > 0:
			return shortBody(size-cw.left, size)
		}
		return nil
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	for done := int64(0); done < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), size-done))
		m, err := io.ReadFull(body, buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return shortBody(done+int64(m), size)
			}
			return fmt.Errorf("reading body at byte %d of %d: %w", done+int64(m), size, err)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		done += int64(n)
	}
	return nil
}

func shortBody(got, size int64) error {
	return fmt.Errorf("body ended after %d of %d bytes: %w: %w", got, size, target.ErrInvalidArgument, io.ErrUnexpectedEOF)
}

// errBodyDone stops a body's WriteTo once size bytes are written.
var errBodyDone = errors.New("bodycopy: body written")

// chunkWriter passes writes on to w in pieces of Chunk bytes, looking at ctx
// between pieces, and stops after left bytes.
type chunkWriter struct {
	ctx  context.Context
	w    io.Writer
	left int64
	err  error // the context's or w's error, which ended the copy
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if c.left == 0 {
			return n, errBodyDone
		}
		if err := c.ctx.Err(); err != nil {
			c.err = err
			return n, err
		}
		k := int(min(int64(len(p)), Chunk, c.left))
		m, err := c.w.Write(p[:k])
		n += m
		c.left -= int64(m)
		if err != nil {
			c.err = err
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}
