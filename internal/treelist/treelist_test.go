package treelist

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// tree is an in-memory directory tree: dir -> entries.
type tree map[string][]Entry

func (tr tree) readDir(_ context.Context, dir string, _ any, _ string) ([]Entry, error) {
	es, ok := tr[dir]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return es, nil
}

func names(t *testing.T, tr tree, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	dir, filter, ok, err := Split(ctx, "test", prefix)
	require.NoError(t, err)
	var got []string
	if !ok {
		return got
	}
	require.NoError(t, Walk(ctx, "test", dir, nil, filter, tr.readDir, func(i target.Info) error {
		got = append(got, i.Name)
		return nil
	}))
	return got
}

func TestWalkIsLexicalAndFiltered(t *testing.T) {
	tr := tree{
		"":    {{Name: "b"}, {Name: "a", Dir: true}, {Name: "a-b"}, {Name: ".chunkback-tmp-x"}, {Name: "c", Dir: true}},
		"a":   {{Name: "z"}, {Name: "y", Dir: true}, {Name: "x"}},
		"a/y": {{Name: "1"}},
		// "c" is listed but gone: nothing below it.
	}
	// "a-b" < "a/..." because '-' < '/'.
	require.Equal(t, []string{"a-b", "a/x", "a/y/1", "a/z", "b"}, names(t, tr, ""))
	require.Equal(t, []string{"a-b", "a/x", "a/y/1", "a/z"}, names(t, tr, "a"))
	require.Equal(t, []string{"a/x", "a/y/1", "a/z"}, names(t, tr, "a/"))
	require.Equal(t, []string{"a/y/1"}, names(t, tr, "a/y"))
	require.Empty(t, names(t, tr, "nosuch/"))
	require.Empty(t, names(t, tr, "../"), "no valid name starts with ../")
}

func TestWalkStatsLazilyAndSkipsDeleted(t *testing.T) {
	when := time.Unix(1000, 0)
	stats := 0
	tr := tree{"": {
		{Name: "gone", Stat: func() (int64, time.Time, error) { stats++; return 0, time.Time{}, fs.ErrNotExist }},
		{Name: "kept", Stat: func() (int64, time.Time, error) { stats++; return 7, when, nil }},
	}}
	var got []target.Info
	require.NoError(t, Walk(context.Background(), "test", "", nil, "", tr.readDir, func(i target.Info) error {
		got = append(got, i)
		return nil
	}))
	require.Equal(t, []target.Info{{Name: "kept", Size: 7, ModTime: when}}, got)
	require.Equal(t, 2, stats)
}

func TestWalkStopsOnCallbackErrorAndCancel(t *testing.T) {
	tr := tree{"": {{Name: "a"}, {Name: "b"}}}
	stop := errors.New("stop")
	calls := 0
	err := Walk(context.Background(), "test", "", nil, "", tr.readDir, func(target.Info) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _, err = Split(ctx, "test", "")
	require.ErrorIs(t, err, context.Canceled)
	err = Walk(ctx, "test", "", nil, "", tr.readDir, func(target.Info) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func TestSplitRejectsNUL(t *testing.T) {
	_, _, _, err := Split(context.Background(), "test", "a\x00b")
	require.ErrorIs(t, err, target.ErrInvalidArgument)
}

func TestReadDirErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	err := Walk(context.Background(), "test", "", nil, "", func(context.Context, string, any, string) ([]Entry, error) { return nil, boom }, nil)
	require.ErrorIs(t, err, boom)
}
