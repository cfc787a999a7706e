package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunRestoresTheFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "data.img")
	data := bytes.Repeat([]byte("embedded chunkback "), 200000)
	require.NoError(t, os.WriteFile(file, data, 0o600))
	require.NoError(t, run(context.Background(), file, filepath.Join(dir, "backups")))
	got, err := os.ReadFile(file + ".restored")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}
