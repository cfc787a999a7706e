package targettest

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// CheckProbe is the health-check test every target with a native check
// runs against its real server: tg's Check passes (tg must be a
// target.Checker, or decorate one), and target.Probe, with a large object of
// largeSize bytes when it is above zero, passes every step, measures no
// clock skew beyond the default bound, and leaves nothing below its prefix.
// It returns the report for further checks.
func CheckProbe(t *testing.T, tg target.Target, largeSize int64) *target.ProbeReport {
	t.Helper()
	supported, err := target.Check(t.Context(), tg)
	require.True(t, supported, "%T implements no target.Checker", tg)
	require.NoError(t, err, "Check")

	prefix := target.DefaultProbePrefix + randomSuffix() + "/"
	r, err := target.Probe(t.Context(), tg, target.ProbeOptions{Prefix: prefix, LargeSize: largeSize})
	require.NoError(t, err)
	for _, s := range r.Steps {
		require.True(t, s.OK, "step %s: skipped=%v %s %s", s.Name, s.Skipped, s.Note, s.Error)
	}
	want := []string{target.StepCheck, target.StepPut, target.StepStat, target.StepGet, target.StepGetRange, target.StepList}
	if largeSize > 0 {
		want = append(want, target.StepPutLarge, target.StepGetLarge)
	}
	want = append(want, target.StepDelete, target.StepStatDeleted)
	var got []string
	for _, s := range r.Steps {
		got = append(got, s.Name)
	}
	require.Equal(t, want, got)
	require.True(t, r.OK, "problems: %q", r.Problems)
	require.Empty(t, r.Problems)
	if r.ClockSkew != nil {
		require.False(t, r.ClockSkew.Exceeded, "clock skew %d ms", r.ClockSkew.SkewMS)
	}
	err = tg.List(t.Context(), prefix, func(info target.Info) error {
		t.Errorf("the probe left %s behind", info.Name)
		return nil
	})
	require.NoError(t, err)
	return r
}

func randomSuffix() string {
	var b strings.Builder
	for range 12 {
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[rand.IntN(36)])
	}
	return b.String()
}

// ProbeReadOnly is the test of credentials that may read but not write, run
// against a real server: target.Probe fails, reports read-only credentials,
// and its put step fails as a permission error. It returns the report and
// the put step for the server's own checks (what the error names).
func ProbeReadOnly(t *testing.T, tg target.Target) (*target.ProbeReport, target.ProbeStep) {
	t.Helper()
	r, err := target.Probe(t.Context(), tg, target.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, r.OK)
	require.True(t, r.ReadOnly, "%+v", r)
	put, _ := r.Step(target.StepPut)
	require.Equal(t, "permission", put.Kind)
	return r, put
}
