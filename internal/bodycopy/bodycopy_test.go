package bodycopy

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// pieces records the size of each write.
type pieces struct {
	bytes.Buffer
	sizes []int
}

func (p *pieces) Write(b []byte) (int, error) {
	p.sizes = append(p.sizes, len(b))
	return p.Buffer.Write(b)
}

func TestCopyBytesReaderInChunks(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 2*Chunk+5)
	var w pieces
	require.NoError(t, New().Copy(context.Background(), &w, bytes.NewReader(data), int64(len(data))))
	require.Equal(t, data, w.Bytes())
	require.Equal(t, []int{Chunk, Chunk, 5}, w.sizes)
}

func TestCopyStopsAtSize(t *testing.T) {
	var w bytes.Buffer
	require.NoError(t, New().Copy(context.Background(), &w, bytes.NewReader([]byte("abcdef")), 3))
	require.Equal(t, "abc", w.String())
	w.Reset()
	require.NoError(t, New().Copy(context.Background(), &w, strings.NewReader("abcdef"), 3))
	require.Equal(t, "abc", w.String())
}

func TestCopyShortBody(t *testing.T) {
	for _, body := range []io.Reader{bytes.NewReader([]byte("ab")), strings.NewReader("ab")} {
		err := New().Copy(context.Background(), io.Discard, body, 5)
		require.ErrorIs(t, err, target.ErrInvalidArgument)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.ErrorContains(t, err, "after 2 of 5 bytes")
	}
}

func TestCopyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, body := range []io.Reader{bytes.NewReader(make([]byte, 10)), strings.NewReader("0123456789")} {
		require.ErrorIs(t, New().Copy(ctx, io.Discard, body, 10), context.Canceled)
	}
}
