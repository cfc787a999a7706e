package backup

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// strippedObjects returns a backup's object list with the names reduced to
// their number, to compare two backups.
func strippedObjects(info *Info) []ObjectMeta {
	out := make([]ObjectMeta, len(info.Metadata.Objects))
	for i, o := range info.Metadata.Objects {
		o.Name = o.Name[strings.LastIndexByte(o.Name, '-'):]
		out[i] = o
	}
	return out
}

// TestSynthesizeEqualsTheChain merges a chain (zeros skipped, a range zeroed
// by a newer layer, objects of three sizes, a sparse full) into a synthetic
// full, and checks that it restores to the chain's bytes, that it is what a
// full backup of the same data would be, object for object, and that an
// incremental on top of it works.
func TestSynthesizeEqualsTheChain(t *testing.T) {
	for _, c := range []struct {
		codec  string
		layout target.Layout
		sparse bool
	}{
		{"none", target.LayoutPosix, false},
		{"zlib", target.LayoutObject, true},
		{"zstd", target.LayoutPosix, true},
		{"bz2", target.LayoutObject, false},
	} {
		t.Run(c.codec, func(t *testing.T) {
			ctx := context.Background()
			e, _ := newMemEngine(t, c.layout)
			chain := makeTestChain(t, e, "vol", c.codec, c.sparse)
			want := chain.image()
			requireSameData(t, want, restoreToFile(t, e, chain.top()), "restore of the chain")

			res, err := e.Synthesize(ctx, chain.top(), SynthesizeOptions{})
			require.NoError(t, err)
			syn := res.Info
			require.True(t, res.Full)
			require.False(t, syn.Incremental())
			require.Equal(t, chain.top(), syn.SyntheticOf())
			require.Equal(t, "synthetic full of backup "+chain.top(), syn.Description)
			require.Equal(t, "vol", syn.VolumeID)
			require.Contains(t, string(syn.Metadata.Extra), `"synthetic_of": "`+chain.top()+`"`)
			requireSameData(t, want, restoreToFile(t, e, syn.ID), "restore of the synthetic full")
			chainMan, err := e.manifest(ctx, mustFind(t, e, chain.top()))
			require.NoError(t, err)
			synMan, err := e.manifest(ctx, syn)
			require.NoError(t, err)
			require.Equal(t, chainMan.Hashes, synMan.Hashes)

			// What a full backup of the same bytes with the top's options
			// stores, object for object.
			direct, err := e.Backup(ctx, bytes.NewReader(want), BackupOptions{
				VolumeID: "other", BlockSize: chainBlock, ObjectSize: chain.sizes[2], Compression: c.codec,
			})
			require.NoError(t, err)
			require.Equal(t, strippedObjects(direct.Info), strippedObjects(syn))
			require.Equal(t, direct.BytesStored, res.BytesStored)
			require.Equal(t, direct.Info.facts.ZerosSkipped, syn.facts.ZerosSkipped)
			require.Empty(t, direct.Info.SyntheticOf())

			// An incremental after it has it as parent.
			next := bytes.Clone(want)
			mutate(60, next, 6)
			inc, err := e.Backup(ctx, bytes.NewReader(next), BackupOptions{VolumeID: "vol", Incremental: true, BlockSize: chainBlock, ObjectSize: chain.sizes[2], Compression: c.codec})
			require.NoError(t, err)
			require.False(t, inc.Full)
			require.Equal(t, syn.ID, inc.Info.ParentID)
			requireSameData(t, next, restoreToFile(t, e, inc.Info.ID), "restore of the incremental on the synthetic full")

			// Now the old chain can go.
			pr, err := e.Prune(ctx, "vol", RetentionPolicy{KeepLast: 2}, PruneOptions{})
			require.NoError(t, err)
			require.Equal(t, []string{chain.ids[2], chain.ids[1], chain.ids[0]}, infoIDs(pr.Deleted))
			requireSameData(t, next, restoreToFile(t, e, inc.Info.ID), "restore after the prune")
		})
	}
}

func mustFind(t *testing.T, e *Engine, id string) *Info {
	t.Helper()
	info, err := e.Find(context.Background(), id, "")
	require.NoError(t, err)
	return info
}

// TestSynthesizeOptions: given options win over the chain's defaults, and
// bad ones are refused naming the field.
func TestSynthesizeOptions(t *testing.T) {
	ctx := context.Background()
	e, _ := newMemEngine(t, target.LayoutObject)
	chain := makeTestChain(t, e, "vol", "zlib", false)
	res, err := e.Synthesize(ctx, chain.ids[1], SynthesizeOptions{
		BackupID: "syn-1", Name: "merged", Description: "cut", Compression: "none", ObjectSize: 65536,
	})
	require.NoError(t, err)
	require.Equal(t, "syn-1", res.Info.ID)
	require.Equal(t, "merged", res.Info.Name)
	require.Equal(t, "cut", res.Info.Description)
	require.Equal(t, chain.ids[1], res.Info.SyntheticOf())
	for _, o := range res.Info.Metadata.Objects {
		require.Equal(t, "none", o.Compression)
		require.LessOrEqual(t, o.Length, int64(65536))
	}
	requireSameData(t, chain.images[1], restoreToFile(t, e, "syn-1"), "restore of syn-1")

	for _, c := range []struct {
		id   string
		o    SynthesizeOptions
		is   error
		want string
	}{
		{chain.top(), SynthesizeOptions{ObjectSize: -5}, ErrInvalidOptions, "object size -5"},
		{chain.top(), SynthesizeOptions{ObjectSize: 5000}, ErrInvalidOptions, "not a multiple of block size 4096"},
		{chain.top(), SynthesizeOptions{BackupID: chain.top()}, ErrInvalidOptions, "is the ID of the backup it is made from"},
		{chain.top(), SynthesizeOptions{BackupID: "syn-1"}, ErrExists, "already on the target"},
		{chain.top(), SynthesizeOptions{Compression: "lz4"}, ErrInvalidOptions, `"lz4"`},
		{"missing", SynthesizeOptions{}, ErrNotFound, "missing"},
	} {
		_, err := e.Synthesize(ctx, c.id, c.o)
		require.ErrorIs(t, err, c.is, c.want)
		require.ErrorContains(t, err, c.want)
	}
}

// TestSynthesizeCinderStyleChain: a chain that stores zeros (as Cinder does)
// gives a synthetic full that stores them too; an all-zero and an empty
// source work.
func TestSynthesizeZerosAndEmpty(t *testing.T) {
	ctx := context.Background()
	e, _ := newMemEngine(t, target.LayoutPosix)
	for _, data := range [][]byte{make([]byte, 300000), {}, genSource(70, 5000)} {
		for _, storeZeros := range []bool{false, true} {
			full, err := e.Backup(ctx, bytes.NewReader(data), BackupOptions{VolumeID: "z", BlockSize: chainBlock, ObjectSize: 16384, StoreZeros: storeZeros})
			require.NoError(t, err)
			res, err := e.Synthesize(ctx, full.Info.ID, SynthesizeOptions{})
			require.NoError(t, err)
			require.Equal(t, full.Objects, res.Objects, "size %d, store zeros %v", len(data), storeZeros)
			require.Equal(t, !storeZeros, res.Info.facts.ZerosSkipped)
			requireSameData(t, data, restoreToFile(t, e, res.Info.ID), "restore")
		}
	}
}

// TestSynthesizeDamagedChainFails: a damaged object in the chain fails the
// synthetic full with ErrCorrupt, and leaves nothing of it.
func TestSynthesizeDamagedChainFails(t *testing.T) {
	for _, codec := range []string{"none", "zlib"} {
		t.Run(codec, func(t *testing.T) {
			ctx := context.Background()
			e, mem := newMemEngine(t, target.LayoutObject)
			chain := makeTestChain(t, e, "vol", codec, false)
			before, err := e.List(ctx, "")
			require.NoError(t, err)
			name := flipStoredByte(t, mem, chain.ids[0]+"-00002")
			_, err = e.Synthesize(ctx, chain.top(), SynthesizeOptions{BackupID: "synthetic"})
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, name)
			after, err := e.List(ctx, "")
			require.NoError(t, err)
			require.Equal(t, infoIDs(before), infoIDs(after))
			require.Empty(t, objectNames(t, mem, "_backup_synthetic"), "the failed synthetic full left objects")
		})
	}
}

// TestSynthesizeManifestMismatchIsRemoved: when the new backup's manifest
// cannot be confirmed equal to the chain's (here it reads back damaged),
// the new backup, complete as it looked, is deleted.
func TestSynthesizeManifestMismatchIsRemoved(t *testing.T) {
	ctx := context.Background()
	mem := targettest.NewMemory()
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e, err := New(faulty, Config{Now: fixedNow(), Workers: 2})
	require.NoError(t, err)
	chain := makeTestChain(t, e, "vol", "zlib", false)
	faulty.Add(targettest.Fault{Op: targettest.OpGet, Corrupt: true, Match: func(n string) bool {
		return strings.HasSuffix(n, "_backup_synthetic_sha256file")
	}})
	_, err = e.Synthesize(ctx, chain.top(), SynthesizeOptions{BackupID: "synthetic"})
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "synthetic")
	require.Equal(t, 1, faulty.Injected(targettest.OpGet))
	require.Empty(t, objectNames(t, mem, "_backup_synthetic"))
	_, err = e.Find(ctx, "synthetic", "vol")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestSynthesizeCancelled(t *testing.T) {
	e, mem := newMemEngine(t, target.LayoutObject)
	chain := makeTestChain(t, e, "vol", "zlib", false)
	ctx, cancel := context.WithCancel(context.Background())
	faulty := targettest.NewFaulty(mem, targettest.FaultOptions{})
	e2, err := New(faulty, Config{Workers: 2})
	require.NoError(t, err)
	faulty.Add(targettest.Fault{Op: targettest.OpPut, Times: 1, Match: func(n string) bool {
		cancel()
		return strings.Contains(n, "_backup_synthetic")
	}, Err: context.Canceled})
	_, err = e2.Synthesize(ctx, chain.top(), SynthesizeOptions{BackupID: "synthetic"})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, objectNames(t, mem, "_backup_synthetic"))
}
