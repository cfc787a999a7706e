package targettest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

func TestFaultyWithoutFaultsConforms(t *testing.T) {
	RunWithOptions(t, func(t *testing.T) target.Target {
		return NewFaulty(NewMemory(), FaultOptions{})
	}, Options{LargeSize: 4 << 20})
}

func TestFaultyFailNext(t *testing.T) {
	m := NewMemory()
	f := NewFaulty(m, FaultOptions{})
	boom := errors.New("boom")
	f.FailNext(OpPut, 2, boom)
	ctx := t.Context()
	for i := range 2 {
		err := f.Put(ctx, "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{})
		require.ErrorIs(t, err, boom, "call %d", i)
		_, err = m.Stat(ctx, "x")
		require.ErrorIs(t, err, target.ErrNotFound, "a failed Put reached the inner target")
	}
	require.NoError(t, f.Put(ctx, "x", bytes.NewReader([]byte("x")), 1, target.PutOptions{}))
	assert.Equal(t, 3, f.Calls(OpPut))
	assert.Equal(t, 2, f.Injected(OpPut))
	assert.Equal(t, 0, f.Calls(OpGet))

	// The default error is transient.
	f.FailNext(OpStat, 1, nil)
	_, err := f.Stat(ctx, "x")
	require.ErrorIs(t, err, ErrInjected)
	require.ErrorIs(t, err, target.ErrUnavailable)
	require.False(t, target.IsPermanent(err))
	_, err = f.Stat(ctx, "x")
	require.NoError(t, err)
}

func TestFaultyEveryOp(t *testing.T) {
	m := NewMemory()
	put(t, m, "x", []byte("data"))
	f := NewFaulty(m, FaultOptions{Faults: []Fault{
		{Op: OpPut}, {Op: OpGet}, {Op: OpStat}, {Op: OpList}, {Op: OpDelete},
	}})
	ctx := t.Context()
	require.ErrorIs(t, f.Put(ctx, "y", bytes.NewReader(nil), 0, target.PutOptions{}), ErrInjected)
	_, err := f.Get(ctx, "x", 0, -1)
	require.ErrorIs(t, err, ErrInjected)
	_, err = f.Stat(ctx, "x")
	require.ErrorIs(t, err, ErrInjected)
	called := false
	err = f.List(ctx, "", func(target.Info) error { called = true; return nil })
	require.ErrorIs(t, err, ErrInjected)
	require.False(t, called)
	require.ErrorIs(t, f.Delete(ctx, "x"), ErrInjected)
	require.Equal(t, []string{"x"}, listNames(t, m, ""))
	for _, op := range allOps {
		assert.Equal(t, 1, f.Calls(op), op)
		assert.Equal(t, 1, f.Injected(op), op)
	}
	f.Reset()
	_, err = f.Stat(ctx, "x")
	require.NoError(t, err)
}

func TestFaultyMatch(t *testing.T) {
	m := NewMemory()
	put(t, m, "data/1", []byte("1"))
	put(t, m, "meta", []byte("m"))
	f := NewFaulty(m, FaultOptions{Faults: []Fault{
		{Op: OpGet, Match: func(name string) bool { return strings.HasPrefix(name, "data/") }},
	}})
	_, err := read(t.Context(), f, "data/1", 0, -1)
	require.ErrorIs(t, err, ErrInjected)
	got, err := read(t.Context(), f, "meta", 0, -1)
	require.NoError(t, err)
	require.Equal(t, "m", string(got))
}

func TestFaultyProbabilityIsSeeded(t *testing.T) {
	run := func(seed uint64) []bool {
		f := NewFaulty(NewMemory(), FaultOptions{Seed: seed, Faults: []Fault{{Op: OpStat, Prob: 0.3}}})
		var hits []bool
		for range 1000 {
			_, err := f.Stat(t.Context(), "x")
			hits = append(hits, errors.Is(err, ErrInjected))
			if !errors.Is(err, ErrInjected) {
				require.ErrorIs(t, err, target.ErrNotFound)
			}
		}
		require.Equal(t, 1000, f.Calls(OpStat))
		return hits
	}
	a := run(7)
	n := 0
	for _, hit := range a {
		if hit {
			n++
		}
	}
	require.InDelta(t, 300, n, 60, "hits with probability 0.3")
	require.Equal(t, a, run(7), "same seed, same faults")
	require.NotEqual(t, a, run(8), "another seed, other faults")
}

func TestFaultyTimesWithProbability(t *testing.T) {
	f := NewFaulty(NewMemory(), FaultOptions{Faults: []Fault{{Op: OpDelete, Prob: 0.5, Times: 3}}})
	for range 200 {
		_ = f.Delete(t.Context(), "x")
	}
	require.Equal(t, 3, f.Injected(OpDelete))
}

func TestFaultyLatency(t *testing.T) {
	f := NewFaulty(NewMemory(), FaultOptions{Latency: 50 * time.Millisecond})
	start := time.Now()
	_, err := f.Stat(t.Context(), "x")
	require.ErrorIs(t, err, target.ErrNotFound)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	f.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = f.Delete(ctx, "x")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second)
}

func TestFaultyTornWrite(t *testing.T) {
	m := NewMemory()
	f := NewFaulty(m, FaultOptions{Faults: []Fault{{Op: OpPut, Times: 1, Torn: true}}})
	data := randomData(1, 100)
	body := bytes.NewReader(append([]byte("skip"), data...))
	_, _ = body.Seek(4, 0)
	err := f.Put(t.Context(), "torn", body, int64(len(data)), target.PutOptions{})
	require.ErrorIs(t, err, ErrInjected)
	requireContent(t, m, "torn", data[:50])
	require.NoError(t, f.Put(t.Context(), "torn", bytes.NewReader(data), int64(len(data)), target.PutOptions{}))
	requireContent(t, m, "torn", data)
}

func TestFaultyAfter(t *testing.T) {
	m := NewMemory()
	f := NewFaulty(m, FaultOptions{Faults: []Fault{
		{Op: OpPut, Times: 1, After: true},
		{Op: OpDelete, Times: 1, After: true},
	}})
	err := f.Put(t.Context(), "lost", bytes.NewReader([]byte("reply")), 5, target.PutOptions{})
	require.ErrorIs(t, err, ErrInjected)
	requireContent(t, m, "lost", []byte("reply"))
	require.ErrorIs(t, f.Delete(t.Context(), "lost"), ErrInjected)
	requireAbsent(t, m, "lost")
}

func TestFaultyCorruptRead(t *testing.T) {
	m := NewMemory()
	data := randomData(2, 1001)
	put(t, m, "bad", data)
	put(t, m, "good", data)
	f := NewFaulty(m, FaultOptions{Faults: []Fault{
		{Op: OpGet, Corrupt: true, Match: func(name string) bool { return name == "bad" }},
	}})
	got, err := read(t.Context(), f, "bad", 0, -1)
	require.NoError(t, err)
	require.Len(t, got, len(data))
	diff := 0
	for i := range got {
		if got[i] != data[i] {
			diff++
			require.Equal(t, 500, i)
			require.Equal(t, data[i]^1, got[i])
		}
	}
	require.Equal(t, 1, diff)
	got, err = read(t.Context(), f, "bad", 100, 10)
	require.NoError(t, err)
	require.NotEqual(t, data[100:110], got)
	got, err = read(t.Context(), f, "good", 0, -1)
	require.NoError(t, err)
	require.Equal(t, data, got)
	requireContent(t, m, "bad", data) // the store itself is intact
	require.Equal(t, 2, f.Injected(OpGet))
}

func TestFaultyUnwrap(t *testing.T) {
	m := NewMemory()
	f := NewFaulty(m, FaultOptions{})
	got, ok := target.As[*Memory](f)
	require.True(t, ok)
	require.Same(t, m, got)
	var _ target.Wrapper = f
}

func TestFaultyRejectsMisplacedFaults(t *testing.T) {
	require.Panics(t, func() { NewFaulty(NewMemory(), FaultOptions{Faults: []Fault{{Op: OpGet, Torn: true}}}) })
	require.Panics(t, func() { NewFaulty(NewMemory(), FaultOptions{Faults: []Fault{{Op: OpPut, Corrupt: true}}}) })
	require.Panics(t, func() { NewFaulty(NewMemory(), FaultOptions{Faults: []Fault{{Op: "copy"}}}) })
}
