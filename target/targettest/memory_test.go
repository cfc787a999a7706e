package targettest

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

func TestMemoryConformance(t *testing.T) {
	Run(t, func(t *testing.T) target.Target { return NewMemory() })
}

func TestMemoryCopiesBody(t *testing.T) {
	m := NewMemory()
	data := []byte("original")
	require.NoError(t, m.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	copy(data, "CHANGED!")
	got, err := read(t.Context(), m, "x", 0, -1)
	require.NoError(t, err)
	require.Equal(t, "original", string(got))
}

func TestMemoryReaderHonoursContext(t *testing.T) {
	m := NewMemory()
	put(t, m, "x", []byte("some data"))
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := m.Get(ctx, "x", 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	buf := make([]byte, 2)
	_, err = io.ReadFull(rc, buf)
	require.NoError(t, err)
	cancel()
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, context.Canceled)
}

func TestMemoryLayout(t *testing.T) {
	m := NewMemory()
	l, ok := target.As[target.LayoutTarget](m)
	require.True(t, ok)
	require.Equal(t, target.LayoutObject, l.CinderLayout())
	m.SetLayout(target.LayoutPosix)
	require.Equal(t, target.LayoutPosix, m.CinderLayout())
}
