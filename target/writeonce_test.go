package target_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// clock is a settable time for the write-once window.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) Set(t time.Time)         { c.now.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func newPosix(t *testing.T) target.Target {
	t.Helper()
	p, err := posix.New(t.TempDir(), posix.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func writeOnce(t *testing.T, inner target.Target, cfg target.WriteOnceConfig) target.Target {
	t.Helper()
	w, err := target.NewWriteOnce(inner, cfg)
	require.NoError(t, err)
	return w
}

func putBytes(ctx context.Context, tg target.Target, name, data string) error {
	return tg.Put(ctx, name, strings.NewReader(data), int64(len(data)), target.PutOptions{})
}

func TestWriteOnceConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  target.WriteOnceConfig
		want string
	}{
		{target.WriteOnceConfig{}, "Window is 0s"},
		{target.WriteOnceConfig{Window: time.Millisecond}, "at least 1s"},
		{target.WriteOnceConfig{Window: time.Hour, Mode: "strict"}, `retention mode "strict"`},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument)
		require.ErrorContains(t, err, tc.want)
		_, err = target.NewWriteOnce(targettest.NewMemory(), tc.cfg)
		require.ErrorIs(t, err, target.ErrInvalidArgument)
	}
	_, err := target.NewWriteOnce(nil, target.WriteOnceConfig{Window: time.Hour})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.NoError(t, target.WriteOnceConfig{Window: time.Hour, Mode: target.RetentionCompliance}.Validate())
}

// TestWriteOnceWindow: on a real directory, nothing is replaced, nothing
// young is deleted, and what is older than the window goes.
func TestWriteOnceWindow(t *testing.T) {
	ctx := context.Background()
	var c clock
	c.Set(time.Now())
	inner := newPosix(t)
	w := writeOnce(t, inner, target.WriteOnceConfig{Window: time.Hour, Now: c.Now})

	require.NoError(t, putBytes(ctx, w, "a/obj", "first"))
	err := putBytes(ctx, w, "a/obj", "second")
	require.ErrorIs(t, err, target.ErrImmutable)
	require.ErrorIs(t, err, target.ErrExists)
	require.True(t, target.IsPermanent(err), "an overwrite refused must not be retried")
	requireContent(t, inner, "a/obj", "first")

	// A retried Put of the same bytes (the first reply lost) succeeds.
	require.NoError(t, putBytes(ctx, w, "a/obj", "first"))
	// Same length, other bytes: refused.
	require.ErrorIs(t, putBytes(ctx, w, "a/obj", "fir5t"), target.ErrImmutable)

	err = w.Delete(ctx, "a/obj")
	require.ErrorIs(t, err, target.ErrImmutable)
	require.ErrorContains(t, err, `"a/obj"`)
	require.ErrorContains(t, err, "may be deleted after")
	requireContent(t, inner, "a/obj", "first")

	require.NoError(t, w.Delete(ctx, "a/missing"), "deleting nothing is not an error")

	c.Advance(time.Hour + time.Minute)
	require.NoError(t, w.Delete(ctx, "a/obj"))
	_, err = inner.Stat(ctx, "a/obj")
	require.ErrorIs(t, err, target.ErrNotFound)
	// Once gone, the name may be written again.
	require.NoError(t, putBytes(ctx, w, "a/obj", "again"))
}

func TestWriteOnceMutableNames(t *testing.T) {
	ctx := context.Background()
	inner := newPosix(t)
	w := writeOnce(t, inner, target.WriteOnceConfig{Window: time.Hour, Mutable: func(n string) bool { return strings.HasSuffix(n, ".lock") }})
	require.NoError(t, putBytes(ctx, w, "v/x.lock", "one"))
	require.NoError(t, putBytes(ctx, w, "v/x.lock", "two"))
	requireContent(t, inner, "v/x.lock", "two")
	require.NoError(t, w.Delete(ctx, "v/x.lock"))
	require.NoError(t, putBytes(ctx, w, "v/data", "d"))
	require.ErrorIs(t, w.Delete(ctx, "v/data"), target.ErrImmutable)
}

// recorder notes the options of every Put and can drop ModTimes.
type recorder struct {
	target.Target
	opts      []target.PutOptions
	noModTime bool
}

func (r *recorder) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, o target.PutOptions) error {
	r.opts = append(r.opts, o)
	return r.Target.Put(ctx, name, body, size, o)
}

func (r *recorder) Stat(ctx context.Context, name string) (target.Info, error) {
	info, err := r.Target.Stat(ctx, name)
	if r.noModTime {
		info.ModTime = time.Time{}
	}
	return info, err
}

func TestWriteOncePassesRetention(t *testing.T) {
	ctx := context.Background()
	var c clock
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(now)
	rec := &recorder{Target: targettest.NewMemory()}
	w := writeOnce(t, rec, target.WriteOnceConfig{Window: 48 * time.Hour, Mode: target.RetentionCompliance, Now: c.Now,
		Mutable: func(n string) bool { return n == "lock" }})
	require.NoError(t, putBytes(ctx, w, "data", "x"))
	require.NoError(t, putBytes(ctx, w, "lock", "x"))
	require.Len(t, rec.opts, 2)
	require.True(t, rec.opts[0].IfNotExists)
	require.True(t, now.Add(48*time.Hour).Equal(rec.opts[0].RetainUntil), "%v", rec.opts[0].RetainUntil)
	require.Equal(t, target.RetentionCompliance, rec.opts[0].RetentionMode)
	require.Equal(t, target.PutOptions{}, rec.opts[1], "a mutable name is stored as asked")

	// The default mode is governance.
	rec.opts = nil
	w = writeOnce(t, rec, target.WriteOnceConfig{Window: time.Hour})
	require.NoError(t, putBytes(ctx, w, "data2", "x"))
	require.Equal(t, target.RetentionGovernance, rec.opts[0].RetentionMode)
}

func TestWriteOnceRefusesWithoutModTime(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{Target: targettest.NewMemory(), noModTime: true}
	w := writeOnce(t, rec, target.WriteOnceConfig{Window: time.Second})
	require.NoError(t, putBytes(ctx, w, "data", "x"))
	err := w.Delete(ctx, "data")
	require.ErrorIs(t, err, target.ErrImmutable)
	require.ErrorContains(t, err, "no modification time")
}

func TestWriteOnceKeepsOptionalInterfaces(t *testing.T) {
	p := newPosix(t)
	w := writeOnce(t, p, target.WriteOnceConfig{Window: time.Hour})
	_, isLayout := w.(target.LayoutTarget)
	_, isCloser := w.(target.Closer)
	require.True(t, isLayout)
	require.True(t, isCloser)
	require.Equal(t, target.Target(p), w.(target.Wrapper).Unwrap())
	require.False(t, target.EnforcesRetention(w), "posix cannot enforce retention itself")
	require.True(t, target.EnforcesRetention(writeOnce(t, enforcing{p}, target.WriteOnceConfig{Window: time.Hour})))
}

type enforcing struct{ target.Target }

func (enforcing) EnforcesRetention() bool { return true }

// TestWriteOnceMutableConforms: with every name mutable the decorator is
// transparent, so it passes the conformance suite on a real directory.
func TestWriteOnceMutableConforms(t *testing.T) {
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		return writeOnce(t, newPosix(t), target.WriteOnceConfig{Window: time.Hour, Mutable: func(string) bool { return true }})
	}, targettest.Options{LargeSize: 4 << 20, ManyObjects: 200})
}

// TestWriteOnceConcurrentCreate: of writers racing for one name with
// different bytes, exactly one wins and the others get ErrImmutable.
func TestWriteOnceConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	w := writeOnce(t, newPosix(t), target.WriteOnceConfig{Window: time.Hour})
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- putBytes(ctx, w, "race", strings.Repeat(string(rune('a'+i)), 1000)) }()
	}
	wins := 0
	for range n {
		err := <-errs
		if err == nil {
			wins++
			continue
		}
		require.True(t, errors.Is(err, target.ErrImmutable), "%v", err)
	}
	require.Equal(t, 1, wins)
}

func requireContent(t *testing.T, tg target.Target, name, want string) {
	t.Helper()
	rc, err := tg.Get(context.Background(), name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte(want), got), "content of %s: %q, want %q", name, got, want)
}
