package target_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// checked is a target with a native check that returns err.
type checked struct {
	target.Target
	err   error
	calls int
}

func (c *checked) Check(context.Context) error { c.calls++; return c.err }

// skewed reports modification times shifted by skew.
type skewed struct {
	target.Target
	skew time.Duration
}

func (s skewed) Stat(ctx context.Context, name string) (target.Info, error) {
	info, err := s.Target.Stat(ctx, name)
	info.ModTime = info.ModTime.Add(s.skew)
	return info, err
}

// hangingGet blocks every Get until its context ends; cancel, if set, is
// called first (to interrupt the whole probe from inside).
type hangingGet struct {
	target.Target
	cancel context.CancelFunc
}

func (h hangingGet) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if h.cancel != nil {
		h.cancel()
	}
	<-ctx.Done()
	return nil, fmt.Errorf("hanging get %q: %w", name, ctx.Err())
}

func stepNames(r *target.ProbeReport) []string {
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	return names
}

func requireEmpty(t *testing.T, tg target.Target) {
	t.Helper()
	err := tg.List(context.Background(), "", func(info target.Info) error {
		return fmt.Errorf("left behind: %s", info.Name)
	})
	require.NoError(t, err)
}

func TestProbePasses(t *testing.T) {
	mem := targettest.NewMemory()
	tg := &checked{Target: mem}
	r, err := target.Probe(t.Context(), tg, target.ProbeOptions{})
	require.NoError(t, err)
	require.True(t, r.OK, "%+v", r)
	require.Equal(t, 1, tg.calls, "the native check ran")
	require.Equal(t, []string{"check", "put", "stat", "get", "get-range", "list", "delete", "stat-deleted"}, stepNames(r))
	for _, s := range r.Steps {
		assert.True(t, s.OK, s.Name)
		assert.False(t, s.Skipped, s.Name)
		assert.Empty(t, s.Error, s.Name)
	}
	require.True(t, strings.HasPrefix(r.Object, target.DefaultProbePrefix+"probe-"), r.Object)
	require.NotNil(t, r.ClockSkew)
	require.Zero(t, r.ClockSkew.SkewMS)
	require.False(t, r.ClockSkew.Exceeded)
	require.Empty(t, r.Problems)
	require.NoError(t, r.Err())
	requireEmpty(t, mem)
}

func TestProbeWithoutChecker(t *testing.T) {
	mem := targettest.NewMemory()
	r, err := target.Probe(t.Context(), mem, target.ProbeOptions{Prefix: "health/", Size: 1})
	require.NoError(t, err)
	require.True(t, r.OK, "%+v", r)
	s, ok := r.Step(target.StepCheck)
	require.True(t, ok)
	require.True(t, s.Skipped)
	require.Contains(t, s.Note, "no native check")
	require.True(t, strings.HasPrefix(r.Object, "health/probe-"))
}

func TestProbeFindsCheckerThroughDecorators(t *testing.T) {
	inner := &checked{Target: targettest.NewMemory(), err: fmt.Errorf("bucket b is gone: %w", target.ErrNotFound)}
	retried, err := target.NewRetry(inner, target.RetryPolicy{MaxAttempts: 1})
	require.NoError(t, err)
	limited, err := target.NewLimit(retried, 2)
	require.NoError(t, err)

	supported, err := target.Check(t.Context(), limited)
	require.True(t, supported)
	require.ErrorIs(t, err, target.ErrNotFound)

	r, err := target.Probe(t.Context(), limited, target.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, r.OK)
	check, _ := r.Step(target.StepCheck)
	require.False(t, check.OK)
	require.Equal(t, "not_found", check.Kind)
	require.Contains(t, check.Error, "bucket b is gone")
	put, _ := r.Step(target.StepPut)
	require.True(t, put.Skipped, "nothing is written when the check fails")
	require.ErrorIs(t, r.Err(), target.ErrNotFound)
	require.Len(t, r.Problems, 1)
	require.Contains(t, r.Problems[0], "does not exist")
}

func TestCheckWithoutChecker(t *testing.T) {
	supported, err := target.Check(t.Context(), targettest.NewMemory())
	require.False(t, supported)
	require.NoError(t, err)
}

func TestProbeReadOnlyCredentials(t *testing.T) {
	mem := targettest.NewMemory()
	denied := fmt.Errorf("access denied: %w", target.ErrPermission)
	f := targettest.NewFaulty(mem, targettest.FaultOptions{Faults: []targettest.Fault{
		{Op: targettest.OpPut, Err: denied}, {Op: targettest.OpDelete, Err: denied},
	}})
	r, err := target.Probe(t.Context(), &checked{Target: f}, target.ProbeOptions{LargeSize: 1 << 20})
	require.NoError(t, err)
	require.False(t, r.OK)
	require.True(t, r.ReadOnly)
	put, _ := r.Step(target.StepPut)
	require.Equal(t, "permission", put.Kind)
	list, _ := r.Step(target.StepList)
	require.True(t, list.OK, "listing still runs, and works")
	for _, name := range []string{target.StepStat, target.StepGet, target.StepGetRange, target.StepPutLarge, target.StepGetLarge} {
		s, ok := r.Step(name)
		require.True(t, ok, name)
		require.True(t, s.Skipped, name)
	}
	del, _ := r.Step(target.StepDelete)
	require.Equal(t, "permission", del.Kind, "the delete is tried, and refused")
	require.Contains(t, r.Problems[0], "read-only credentials")
	for _, p := range r.Problems {
		require.NotContains(t, p, "left behind", "a refused Put stored nothing")
	}
}

func TestProbeDeleteRefused(t *testing.T) {
	mem := targettest.NewMemory()
	f := targettest.NewFaulty(mem, targettest.FaultOptions{Faults: []targettest.Fault{
		{Op: targettest.OpDelete, Err: fmt.Errorf("object locked: %w", target.ErrPermission)},
	}})
	r, err := target.Probe(t.Context(), f, target.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, r.OK)
	require.False(t, r.ReadOnly)
	s, _ := r.Step(target.StepStatDeleted)
	require.True(t, s.Skipped)
	joined := strings.Join(r.Problems, "\n")
	require.Contains(t, joined, "left behind")
	require.Contains(t, joined, r.Object)
	require.Contains(t, joined, "may write but not delete")
}

func TestProbeDetectsCorruptReads(t *testing.T) {
	f := targettest.NewFaulty(targettest.NewMemory(), targettest.FaultOptions{Faults: []targettest.Fault{
		{Op: targettest.OpGet, Corrupt: true, Times: 1},
	}})
	r, err := target.Probe(t.Context(), f, target.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, r.OK)
	get, _ := r.Step(target.StepGet)
	require.Equal(t, "mismatch", get.Kind)
	require.ErrorIs(t, get.Err, target.ErrProbeMismatch)
	rng, _ := r.Step(target.StepGetRange)
	require.True(t, rng.OK, "the fault hit the first read only")
}

func TestProbeDetectsDeleteThatDoesNotDelete(t *testing.T) {
	r, err := target.Probe(t.Context(), noDelete{targettest.NewMemory()}, target.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, r.OK)
	s, _ := r.Step(target.StepStatDeleted)
	require.Equal(t, "mismatch", s.Kind)
	require.Contains(t, strings.Join(r.Problems, "\n"), "left behind")
}

// noDelete reports success for every Delete, and deletes nothing.
type noDelete struct{ target.Target }

func (noDelete) Delete(context.Context, string) error { return nil }

func TestProbeClockSkew(t *testing.T) {
	for _, c := range []struct {
		skew     time.Duration
		exceeded bool
		words    string
	}{
		{10 * time.Minute, true, "ahead of"},
		{-7 * time.Minute, true, "behind"},
		{2 * time.Minute, false, ""},
	} {
		t.Run(c.skew.String(), func(t *testing.T) {
			mem := targettest.NewMemory()
			r, err := target.Probe(t.Context(), skewed{mem, c.skew}, target.ProbeOptions{})
			require.NoError(t, err)
			require.NotNil(t, r.ClockSkew)
			got := time.Duration(r.ClockSkew.SkewMS) * time.Millisecond
			require.InDelta(t, c.skew.Seconds(), got.Seconds(), 1.5, "measured %v", got)
			require.Equal(t, c.exceeded, r.ClockSkew.Exceeded)
			require.Equal(t, int64(5*60*1000), r.ClockSkew.MaxMS)
			require.Equal(t, !c.exceeded, r.OK)
			if c.exceeded {
				require.Contains(t, strings.Join(r.Problems, "\n"), c.words)
				require.NoError(t, r.Err(), "no step failed")
			}
			requireEmpty(t, mem)
		})
	}
	r, err := target.Probe(t.Context(), skewed{targettest.NewMemory(), 2 * time.Minute}, target.ProbeOptions{MaxClockSkew: time.Minute})
	require.NoError(t, err)
	require.True(t, r.ClockSkew.Exceeded, "MaxClockSkew lowers the bound")
}

// noModTime reports no modification times, as some stores do not.
type noModTime struct{ target.Target }

func (n noModTime) Stat(ctx context.Context, name string) (target.Info, error) {
	info, err := n.Target.Stat(ctx, name)
	info.ModTime = time.Time{}
	return info, err
}

func TestProbeNoModTimeNoSkew(t *testing.T) {
	r, err := target.Probe(t.Context(), noModTime{targettest.NewMemory()}, target.ProbeOptions{})
	require.NoError(t, err)
	require.True(t, r.OK)
	require.Nil(t, r.ClockSkew)
}

func TestProbeStepTimeout(t *testing.T) {
	mem := targettest.NewMemory()
	r, err := target.Probe(t.Context(), hangingGet{Target: mem}, target.ProbeOptions{StepTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	require.False(t, r.OK)
	get, _ := r.Step(target.StepGet)
	require.Equal(t, "timeout", get.Kind)
	require.Less(t, get.LatencyMS, 5000.0)
	del, _ := r.Step(target.StepDelete)
	require.True(t, del.OK, "the probe goes on after a step times out")
	requireEmpty(t, mem)
}

func TestProbeCancelledStillCleansUp(t *testing.T) {
	mem := targettest.NewMemory()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, err := target.Probe(ctx, hangingGet{Target: mem, cancel: cancel}, target.ProbeOptions{})
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, r)
	require.False(t, r.OK)
	get, _ := r.Step(target.StepGet)
	require.Equal(t, "canceled", get.Kind)
	list, _ := r.Step(target.StepList)
	require.True(t, list.Skipped)
	del, _ := r.Step(target.StepDelete)
	require.True(t, del.OK, "the delete runs after the cancel")
	gone, _ := r.Step(target.StepStatDeleted)
	require.True(t, gone.OK)
	requireEmpty(t, mem)
}

func TestProbeLargeObject(t *testing.T) {
	mem := targettest.NewMemory()
	r, err := target.Probe(t.Context(), mem, target.ProbeOptions{Size: 3, LargeSize: 3<<20 + 17})
	require.NoError(t, err)
	require.True(t, r.OK, "%+v", r)
	for _, name := range []string{target.StepPutLarge, target.StepGetLarge} {
		s, ok := r.Step(name)
		require.True(t, ok, name)
		require.True(t, s.OK, name)
		require.Contains(t, s.Note, "MiB/s")
	}
	requireEmpty(t, mem)
}

func TestProbeLargeObjectCorrupt(t *testing.T) {
	f := targettest.NewFaulty(targettest.NewMemory(), targettest.FaultOptions{Faults: []targettest.Fault{
		{Op: targettest.OpGet, Corrupt: true, Match: func(name string) bool { return strings.HasSuffix(name, "-large") }},
	}})
	r, err := target.Probe(t.Context(), f, target.ProbeOptions{LargeSize: 1 << 20})
	require.NoError(t, err)
	require.False(t, r.OK)
	s, _ := r.Step(target.StepGetLarge)
	require.Equal(t, "mismatch", s.Kind)
	require.Contains(t, s.Error, "differ")
}

func TestProbeReportJSON(t *testing.T) {
	f := targettest.NewFaulty(targettest.NewMemory(), targettest.FaultOptions{Faults: []targettest.Fault{
		{Op: targettest.OpStat, Times: 1},
	}})
	r, err := target.Probe(t.Context(), f, target.ProbeOptions{})
	require.NoError(t, err)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, false, doc["ok"])
	steps := doc["steps"].([]any)
	stat := steps[2].(map[string]any)
	require.Equal(t, "stat", stat["name"])
	require.Equal(t, "unavailable", stat["error_kind"])
	require.Contains(t, stat["error"], "injected fault")
	require.Contains(t, stat, "latency_ms")
	require.NotContains(t, string(b), `"Err"`)
}

func TestProbeReportPrepend(t *testing.T) {
	var r target.ProbeReport
	r.Prepend(target.NewProbeStep(target.StepOpen, time.Now(), fmt.Errorf("s3: the store does not know the access key ID: %w", target.ErrPermission)))
	require.False(t, r.OK)
	require.Len(t, r.Steps, 1)
	require.Equal(t, "permission", r.Steps[0].Kind)
	require.Contains(t, r.Problems[0], "open: the store refused the credentials")
	require.ErrorIs(t, r.Err(), target.ErrPermission)

	ok, err := target.Probe(t.Context(), targettest.NewMemory(), target.ProbeOptions{})
	require.NoError(t, err)
	ok.Prepend(target.NewProbeStep(target.StepOpen, time.Now(), nil))
	require.True(t, ok.OK)
	require.Equal(t, target.StepOpen, ok.Steps[0].Name)
}

func TestProbeOptionsValidate(t *testing.T) {
	require.NoError(t, target.ProbeOptions{}.Validate())
	for _, c := range []struct {
		opts  target.ProbeOptions
		field string
	}{
		{target.ProbeOptions{Prefix: "/abs/"}, "Prefix"},
		{target.ProbeOptions{Prefix: "a//"}, "Prefix"},
		{target.ProbeOptions{Prefix: target.ReservedPrefix}, "Prefix"},
		{target.ProbeOptions{Size: -1}, "Size"},
		{target.ProbeOptions{Size: target.MaxProbeSize + 1}, "Size"},
		{target.ProbeOptions{LargeSize: -1}, "LargeSize"},
		{target.ProbeOptions{LargeSize: target.MaxProbeSize + 1}, "LargeSize"},
		{target.ProbeOptions{MaxClockSkew: -time.Second}, "MaxClockSkew"},
		{target.ProbeOptions{StepTimeout: -time.Second}, "StepTimeout"},
	} {
		err := c.opts.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument, c.field)
		require.Contains(t, err.Error(), c.field)
		_, err = target.Probe(t.Context(), targettest.NewMemory(), c.opts)
		require.ErrorIs(t, err, target.ErrInvalidArgument, c.field)
	}
	_, err := target.Probe(t.Context(), nil, target.ProbeOptions{})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
}

func TestErrorKind(t *testing.T) {
	for want, err := range map[string]error{
		"":                 nil,
		"canceled":         fmt.Errorf("x: %w", context.Canceled),
		"timeout":          context.DeadlineExceeded,
		"permission":       &target.StatusError{Op: "get", Code: 403},
		"not_found":        &target.StatusError{Op: "get", Code: 404},
		"exists":           target.ErrExists,
		"invalid_range":    target.ErrInvalidRange,
		"invalid_argument": target.ErrInvalidArgument,
		"throttled":        &target.StatusError{Op: "put", Code: 429},
		"unavailable":      &target.StatusError{Op: "put", Code: 503},
		"mismatch":         target.ErrProbeMismatch,
		"permanent":        target.ErrPermanent,
		"network":          &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED},
		"error":            errors.New("something"),
	} {
		assert.Equal(t, want, target.ErrorKind(err), "%v", err)
	}
}

func TestProbeCancelledBeforeStartIsNotOK(t *testing.T) {
	mem := targettest.NewMemory()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r, err := target.Probe(ctx, mem, target.ProbeOptions{})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, r.OK, "an interrupted probe proves nothing")
	put, _ := r.Step(target.StepPut)
	require.True(t, put.Skipped)
	require.Contains(t, strings.Join(r.Problems, "\n"), "interrupted")
	requireEmpty(t, mem)
}
