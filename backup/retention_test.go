package backup

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// testClock is a Config.Now that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newPosixTarget returns a posix target in a temporary directory.
func newPosixTarget(t *testing.T) target.Target {
	t.Helper()
	p, err := posix.New(t.TempDir(), posix.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

var day0 = time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)

// retentionVolume is a volume with three chains, one backup a day:
//
//	F1 (day 0) <- I1a (1) <- I1b (2)
//	F2 (day 3) <- I2a (4)
//	F3 (day 5) <- I3a (6) <- I3b (7)
//
// data[id] is the image each backup restores to.
type retentionVolume struct {
	e     *Engine
	t     target.Target
	clock *testClock
	data  map[string][]byte
}

var retentionIDs = []string{"F1-0", "I1a-", "I1b-", "F2-0", "I2a-", "F3-0", "I3a-", "I3b-"}

func newRetentionVolume(t *testing.T, tg target.Target) *retentionVolume {
	t.Helper()
	clock := &testClock{}
	e, err := New(tg, Config{Now: clock.now, Workers: 2})
	require.NoError(t, err)
	v := &retentionVolume{e: e, t: tg, clock: clock, data: map[string][]byte{}}
	src := genSource(40, 96*1024+100)
	for i, id := range retentionIDs {
		clock.set(day0.Add(time.Duration(i) * 24 * time.Hour))
		o := BackupOptions{VolumeID: "vol", BackupID: id, BlockSize: 4096, ObjectSize: 16384}
		if id[0] == 'I' {
			o.Incremental = true
			mutate(uint64(i), src, 3)
		}
		_, err := e.Backup(context.Background(), bytes.NewReader(src), o)
		require.NoError(t, err)
		v.data[id] = bytes.Clone(src)
	}
	clock.set(day0.Add(7*24*time.Hour + time.Hour))
	return v
}

// ids returns the IDs of the volume's backups on the target, oldest first.
func (v *retentionVolume) ids(t *testing.T) []string {
	t.Helper()
	list, err := v.e.List(context.Background(), "vol")
	require.NoError(t, err)
	var ids []string
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	return ids
}

// requireRestorable restores every backup left and compares its image.
func (v *retentionVolume) requireRestorable(t *testing.T) {
	t.Helper()
	for _, id := range v.ids(t) {
		requireSameData(t, v.data[id], restoreToFile(t, v.e, id), "restore of "+id)
	}
}

func decisionIDs(ds []PruneDecision) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.Backup.ID)
	}
	return ids
}

func infoIDs(list []*Info) []string {
	var ids []string
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	return ids
}

func TestRetentionPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		p    RetentionPolicy
		want string
	}{
		{RetentionPolicy{}, "has no rule: set keep-last, keep-fulls or keep-within"},
		{RetentionPolicy{KeepLast: -1}, "keep-last -1 must not be negative"},
		{RetentionPolicy{KeepFulls: -2, KeepLast: 1}, "keep-fulls -2 must not be negative"},
		{RetentionPolicy{KeepWithin: -time.Hour}, "keep-within -1h0m0s must not be negative"},
	} {
		err := c.p.Validate()
		require.ErrorIs(t, err, ErrInvalidOptions)
		require.ErrorContains(t, err, c.want)
	}
	require.NoError(t, RetentionPolicy{KeepWithin: time.Minute}.Validate())

	e, _ := newMemEngine(t, target.LayoutObject)
	_, err := e.Prune(context.Background(), "", RetentionPolicy{KeepLast: 1}, PruneOptions{})
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.ErrorContains(t, err, "volume ID is empty")
	_, err = e.Prune(context.Background(), "vol", RetentionPolicy{}, PruneOptions{})
	require.ErrorIs(t, err, ErrInvalidOptions)
}

// TestPrunePolicyMatrix prunes the same three chains with each policy, on a
// posix target, and checks what is left, the order of deletion, the reasons,
// and that every backup left restores to its image.
func TestPrunePolicyMatrix(t *testing.T) {
	for _, c := range []struct {
		name    string
		p       RetentionPolicy
		kept    []string
		deleted []string // in deletion order
	}{
		{"last 1", RetentionPolicy{KeepLast: 1},
			[]string{"F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I2a-", "I1a-", "F2-0", "F1-0"}},
		{"last 4", RetentionPolicy{KeepLast: 4},
			[]string{"F2-0", "I2a-", "F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I1a-", "F1-0"}},
		{"fulls 1", RetentionPolicy{KeepFulls: 1},
			[]string{"F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I2a-", "I1a-", "F2-0", "F1-0"}},
		{"fulls 2", RetentionPolicy{KeepFulls: 2},
			[]string{"F2-0", "I2a-", "F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I1a-", "F1-0"}},
		{"within 48h", RetentionPolicy{KeepWithin: 48 * time.Hour},
			[]string{"F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I2a-", "I1a-", "F2-0", "F1-0"}},
		{"within 7 days keeps the parents of day 1", RetentionPolicy{KeepWithin: 6*24*time.Hour + 30*time.Minute},
			[]string{"F1-0", "I1a-", "I1b-", "F2-0", "I2a-", "F3-0", "I3a-", "I3b-"}, nil},
		{"within 1h keeps the newest anyway", RetentionPolicy{KeepWithin: time.Hour},
			[]string{"F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I2a-", "I1a-", "F2-0", "F1-0"}},
		{"union", RetentionPolicy{KeepLast: 1, KeepFulls: 2, KeepWithin: time.Minute},
			[]string{"F2-0", "I2a-", "F3-0", "I3a-", "I3b-"}, []string{"I1b-", "I1a-", "F1-0"}},
		{"more than there are", RetentionPolicy{KeepLast: 100},
			retentionIDs, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newRetentionVolume(t, newPosixTarget(t))
			res, err := v.e.Prune(context.Background(), "vol", c.p, PruneOptions{})
			require.NoError(t, err)
			require.False(t, res.DryRun)
			require.Equal(t, c.kept, decisionIDs(res.Kept))
			require.Equal(t, c.deleted, infoIDs(res.Deleted))
			require.Equal(t, c.kept, v.ids(t), "backups left on the target")
			v.requireRestorable(t)
		})
	}
}

func TestPruneReasons(t *testing.T) {
	v := newRetentionVolume(t, targettest.NewMemory())
	res, err := v.e.Prune(context.Background(), "vol", RetentionPolicy{KeepLast: 2, KeepFulls: 1, KeepWithin: 36 * time.Hour}, PruneOptions{DryRun: true})
	require.NoError(t, err)
	reasons := map[string][]string{}
	for _, d := range res.Kept {
		reasons[d.Backup.ID] = d.Reasons
	}
	require.Equal(t, map[string][]string{
		"F3-0": {"full 1 of 1", "parent of I3a-"},
		"I3a-": {"last 2", "within 36h0m0s", "in the chain of full 1 of 1 (F3-0)", "parent of I3b-"},
		"I3b-": {"newest backup", "last 2", "within 36h0m0s", "in the chain of full 1 of 1 (F3-0)"},
	}, reasons)
}

func TestPruneDryRunDeletesNothing(t *testing.T) {
	v := newRetentionVolume(t, newPosixTarget(t))
	before := objectNames(t, v.t, "")
	dry, err := v.e.Prune(context.Background(), "vol", RetentionPolicy{KeepFulls: 1}, PruneOptions{DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	require.Equal(t, []string{"I1b-", "I2a-", "I1a-", "F2-0", "F1-0"}, infoIDs(dry.Deleted))
	require.Equal(t, before, objectNames(t, v.t, ""), "a dry run changed the target")

	real, err := v.e.Prune(context.Background(), "vol", RetentionPolicy{KeepFulls: 1}, PruneOptions{})
	require.NoError(t, err)
	require.Equal(t, infoIDs(dry.Deleted), infoIDs(real.Deleted), "the dry run announced another deletion")
	require.Equal(t, decisionIDs(dry.Kept), decisionIDs(real.Kept))
}

// TestPruneFilterKeepsOthersAndTheirParents: backups the filter leaves out
// (another writer's) are never deleted, nor is any backup they depend on.
func TestPruneFilterKeepsOthersAndTheirParents(t *testing.T) {
	v := newRetentionVolume(t, newPosixTarget(t))
	notI1b := func(b *Info) bool { return b.ID != "I1b-" }
	res, err := v.e.Prune(context.Background(), "vol", RetentionPolicy{KeepLast: 1}, PruneOptions{Filter: notI1b})
	require.NoError(t, err)
	require.Equal(t, []string{"I2a-", "F2-0"}, infoIDs(res.Deleted))
	require.Equal(t, []string{"F1-0", "I1a-", "I1b-", "F3-0", "I3a-", "I3b-"}, v.ids(t))
	require.Equal(t, []string{"not selected by the filter"}, res.Kept[2].Reasons)
	require.Equal(t, []string{"parent of I1b-"}, res.Kept[1].Reasons)
	v.requireRestorable(t)
}

// TestPruneBranches: two incrementals on one parent; keeping one branch
// keeps the shared parent, and the other branch goes.
func TestPruneBranches(t *testing.T) {
	clock := &testClock{t: day0}
	e, err := New(targettest.NewMemory(), Config{Now: clock.now, Workers: 2})
	require.NoError(t, err)
	ctx := context.Background()
	src := genSource(41, 50000)
	backup := func(id, parent string, at int) {
		clock.set(day0.Add(time.Duration(at) * time.Hour))
		_, err := e.Backup(ctx, bytes.NewReader(src), BackupOptions{VolumeID: "vol", BackupID: id, ParentID: parent, BlockSize: 4096, ObjectSize: 16384})
		require.NoError(t, err)
	}
	backup("full", "", 0)
	backup("left", "full", 1)
	backup("left2", "left", 2)
	backup("right", "full", 3)
	clock.set(day0.Add(4 * time.Hour))
	res, err := e.Prune(ctx, "vol", RetentionPolicy{KeepLast: 1}, PruneOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"full", "right"}, decisionIDs(res.Kept))
	require.Equal(t, []string{"left2", "left"}, infoIDs(res.Deleted))
}

// TestPruneFailureMidwayLeavesRestorableBackups makes a delete fail in the
// middle of a prune (on a _metadata, then on a data object) and checks that
// every backup left is complete and restores, and that a second prune
// finishes the job.
func TestPruneFailureMidwayLeavesRestorableBackups(t *testing.T) {
	for _, c := range []struct {
		name  string
		match func(string) bool
		gone  int // backups gone after the failure (the failing one included)
	}{
		{"on a metadata object", func(n string) bool { return strings.Contains(n, "_backup_I1a-_metadata") }, 2},
		{"on a data object", func(n string) bool { return strings.Contains(n, "_backup_I1a--0") }, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			faulty := targettest.NewFaulty(newPosixTarget(t), targettest.FaultOptions{
				Faults: []targettest.Fault{{Op: targettest.OpDelete, Match: c.match, Times: 1}},
			})
			v := newRetentionVolume(t, faulty)
			res, err := v.e.Prune(context.Background(), "vol", RetentionPolicy{KeepLast: 1}, PruneOptions{})
			require.ErrorIs(t, err, targettest.ErrInjected)
			require.ErrorContains(t, err, "deleted 2 of 5 backups")
			require.Equal(t, []string{"I1b-", "I2a-"}, infoIDs(res.Deleted))
			left := v.ids(t)
			require.Len(t, left, len(retentionIDs)-c.gone, "left: %v", left)
			v.requireRestorable(t)

			res, err = v.e.Prune(context.Background(), "vol", RetentionPolicy{KeepLast: 1}, PruneOptions{})
			require.NoError(t, err)
			require.Equal(t, []string{"F3-0", "I3a-", "I3b-"}, v.ids(t))
			v.requireRestorable(t)
			require.NotEmpty(t, res.Deleted)
		})
	}
}

func TestPruneHonoursCancellation(t *testing.T) {
	v := newRetentionVolume(t, targettest.NewMemory())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.e.Prune(ctx, "vol", RetentionPolicy{KeepLast: 1}, PruneOptions{})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, retentionIDs, v.ids(t))
}

// TestPruneEmptyVolume: nothing to keep or delete is not an error.
func TestPruneEmptyVolume(t *testing.T) {
	e, _ := newMemEngine(t, target.LayoutObject)
	res, err := e.Prune(context.Background(), "nothing", RetentionPolicy{KeepLast: 3}, PruneOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Kept)
	require.Empty(t, res.Deleted)
}
