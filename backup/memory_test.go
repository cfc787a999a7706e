package backup

import (
	"bytes"
	"context"
	"testing"

	"github.com/chunkback/chunkback/compress"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutputShare(t *testing.T) {
	const obj = 50 << 20
	codec := func(name string) compress.Codec {
		c, err := compress.New(name, compress.Options{})
		require.NoError(t, err)
		return c
	}
	// Two workers, zlib: (2 x 50 - 2 x 1.5 - 25) / 2 MiB each, more than
	// text-like data compresses to (it is then kept whole).
	assert.Equal(t, (2*obj-2*compress.EncoderMemory(codec("zlib"))-obj/2)/2, outputShare(2, obj, codec("zlib"), false))
	assert.Greater(t, outputShare(2, obj, codec("zlib"), false), 35<<20)
	assert.Equal(t, outputShare(2, obj, codec("zlib"), false)/2, outputShare(2, obj, codec("zlib"), true), "sealed copies halve it")
	// Shares shrink with workers, never below a quarter object.
	assert.Less(t, outputShare(8, obj, codec("zstd"), false), outputShare(2, obj, codec("zstd"), false))
	assert.Equal(t, obj/4, outputShare(4, obj, codec("bz2"), false), "four bz2 encoders take the rest")
	assert.Equal(t, obj/4, outputShare(16, obj, codec("zlib"), false))
}

// TestBackupWithinShare backs up with so many workers that each one's share
// of output is a quarter object: objects are compressed with their input
// given back as it goes, or stored raw when the gain is not yet certain,
// and everything restores.
func TestBackupWithinShare(t *testing.T) {
	const bs = 4096
	src := genSource(31, 3<<20)
	// Half random, half text per object, random first: the output passes
	// the share before the gain is certain in some objects and after in
	// others.
	for _, codec := range []string{"zlib", "zstd"} {
		mem := targettest.NewMemory()
		mem.SetLayout(target.LayoutPosix)
		e, err := New(mem, Config{Now: fixedNow(), Workers: 16})
		require.NoError(t, err)
		res, err := e.Backup(context.Background(), bytes.NewReader(src), BackupOptions{VolumeID: "vol-1", BackupID: "share-" + codec, Compression: codec, ObjectSize: 64 * bs, BlockSize: bs})
		require.NoError(t, err)
		assert.Less(t, res.BytesStored, int64(len(src)), codec)
		requireSameData(t, src, restoreToFile(t, e, res.Info.ID), codec)
		_, err = e.Verify(context.Background(), res.Info.ID, VerifyOptions{})
		require.NoError(t, err, codec)
	}
}
