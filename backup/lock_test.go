package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// gate is a backup source that blocks at its first Read until opened: the
// backup then holds the volume's lock, and the test acts meanwhile.
type gate struct {
	r        io.Reader
	entered  chan struct{}
	open     chan struct{}
	once     sync.Once
	openOnce sync.Once
}

func newGate(data []byte) *gate {
	return &gate{r: bytes.NewReader(data), entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *gate) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered); <-g.open })
	return g.r.Read(p)
}

func (g *gate) release() { g.openOnce.Do(func() { close(g.open) }) }

// posixEngine returns an engine over a fresh directory, with the given owner
// and lock settings; a second engine over the same directory is another
// writer.
func posixEngine(t *testing.T, dir, owner string, lock LockConfig) *Engine {
	t.Helper()
	tg, err := posix.New(dir, posix.Options{NoSync: true})
	require.NoError(t, err)
	e, err := New(tg, Config{Owner: owner, Lock: lock, Workers: 2})
	require.NoError(t, err)
	return e
}

func smallOpts(vol string) BackupOptions {
	return BackupOptions{VolumeID: vol, BlockSize: 4096, ObjectSize: 16384, Size: -1}
}

// startGated starts a backup whose source blocks until released, and waits
// until it holds the lock (it reads its source) or has failed.
func startGated(t *testing.T, ctx context.Context, e *Engine, o BackupOptions) (*gate, chan error) {
	t.Helper()
	g := newGate(genSource(1, 50000))
	done := make(chan error, 1)
	go func() {
		_, err := e.Backup(ctx, g, o)
		done <- err
	}()
	select {
	case <-g.entered:
	case err := <-done:
		t.Fatalf("the gated backup ended before reading: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the gated backup never started reading")
	}
	return g, done
}

func metadataNames(t *testing.T, tg target.Target) []string {
	t.Helper()
	var names []string
	require.NoError(t, tg.List(context.Background(), "", func(o target.Info) error {
		if strings.HasSuffix(o.Name, metadataSuffix) {
			names = append(names, o.Name)
		}
		return nil
	}))
	return names
}

func TestLockSecondWriterGetsErrLockedNamingTheHolder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	alice := posixEngine(t, dir, "alice@host-a", LockConfig{})
	bob := posixEngine(t, dir, "bob@host-b", LockConfig{})
	g, done := startGated(t, ctx, alice, smallOpts("vol-1"))

	_, err := bob.Backup(ctx, bytes.NewReader(genSource(2, 1000)), smallOpts("vol-1"))
	require.ErrorIs(t, err, ErrLocked)
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.False(t, le.Stale)
	assert.Equal(t, "alice@host-a", le.Holder.Owner)
	for _, want := range []string{"vol-1", "alice@host-a", hostName(), fmt.Sprintf("pid %d", os.Getpid()), "backup of", "expires", "chunkback unlock --volume-id vol-1"} {
		assert.Contains(t, err.Error(), want)
	}
	// A delete of the volume's backups is refused too; another volume is free.
	_, err = bob.Backup(ctx, bytes.NewReader(genSource(2, 1000)), smallOpts("vol-2"))
	require.NoError(t, err)

	st, err := bob.LockStatus(ctx, "vol-1")
	require.NoError(t, err)
	require.NotNil(t, st)
	assert.Equal(t, "backup", st.Operation)
	assert.False(t, st.Stale(time.Now()))

	g.release()
	require.NoError(t, <-done)
	st, err = bob.LockStatus(ctx, "vol-1")
	require.NoError(t, err)
	assert.Nil(t, st, "the lock is removed when the backup ends")
	// The lock and its claim are gone: only backups are left.
	_, err = bob.Backup(ctx, bytes.NewReader(genSource(2, 1000)), smallOpts("vol-1"))
	require.NoError(t, err)
	assertNoLockObjects(t, dir)
}

func assertNoLockObjects(t *testing.T, dir string) {
	t.Helper()
	tg, err := posix.New(dir, posix.Options{})
	require.NoError(t, err)
	require.NoError(t, tg.List(context.Background(), "", func(o target.Info) error {
		assert.NotContains(t, o.Name, ".lock", "left behind")
		return nil
	}))
}

// TestLockConcurrentBackupsExactlyOneWins starts two backups of one volume
// at once: exactly one reads its source (holds the lock), the other fails
// with ErrLocked.
func TestLockConcurrentBackupsExactlyOneWins(t *testing.T) {
	for round := range 5 {
		dir := t.TempDir()
		engines := []*Engine{posixEngine(t, dir, "a@x", LockConfig{}), posixEngine(t, dir, "b@y", LockConfig{})}
		winner := raceBackups(t, engines, "vol")
		t.Logf("round %d: writer %d won", round, winner)
	}
}

// raceBackups starts a gated backup of vol on each engine at once and
// requires that exactly one holds the lock while the others fail with
// ErrLocked; it returns the winner after its backup completed.
func raceBackups(t *testing.T, engines []*Engine, vol string) int {
	t.Helper()
	type outcome struct {
		i   int
		err error
	}
	gates := make([]*gate, len(engines))
	done := make(chan outcome, len(engines))
	entered := make(chan int, len(engines))
	start := make(chan struct{})
	for i, e := range engines {
		gates[i] = newGate(genSource(uint64(i), 50000))
		go func() {
			<-start
			_, err := e.Backup(context.Background(), gates[i], smallOpts(vol))
			done <- outcome{i, err}
		}()
		go func() {
			<-gates[i].entered
			entered <- i
		}()
	}
	close(start)
	defer func() {
		for _, g := range gates {
			g.release()
		}
	}()
	winner, failed := -1, 0
	for failed < len(engines) && (winner < 0 || failed < len(engines)-1) {
		select {
		case i := <-entered:
			require.Equal(t, -1, winner, "writers %d and %d both hold the lock", winner, i)
			winner = i
		case o := <-done:
			require.ErrorIs(t, o.err, ErrLocked, "writer %d", o.i)
			failed++
		case <-time.After(30 * time.Second):
			t.Fatal("the race did not settle")
		}
	}
	require.NotEqual(t, -1, winner, "no writer got the lock")
	// Nobody else may get in while the winner holds it.
	select {
	case i := <-entered:
		t.Fatalf("writers %d and %d both hold the lock", winner, i)
	default:
	}
	gates[winner].release()
	o := <-done
	require.Equal(t, winner, o.i)
	require.NoError(t, o.err)
	return winner
}

func TestLockStaleIsReportedAndBrokenOnlyExplicitly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{})
	// A holder that died an hour ago.
	dead := LockInfo{VolumeID: "v", Owner: "ghost@gone-host", Host: "gone-host", PID: 4242, Operation: "backup", Token: "feedface",
		Created: time.Now().Add(-2 * time.Hour), Refreshed: time.Now().Add(-time.Hour), Expires: time.Now().Add(-time.Hour + DefaultLockTTL)}
	body, err := json.Marshal(dead)
	require.NoError(t, err)
	require.NoError(t, e.t.Put(ctx, e.naming.lockName("v"), bytes.NewReader(body), int64(len(body)), target.PutOptions{}))

	_, err = e.Backup(ctx, bytes.NewReader(genSource(3, 1000)), smallOpts("v"))
	require.ErrorIs(t, err, ErrLocked)
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.True(t, le.Stale)
	for _, want := range []string{"stale", "ghost@gone-host", "gone-host", "pid 4242", "chunkback unlock --volume-id v"} {
		assert.Contains(t, err.Error(), want)
	}
	// Waiting does not break it either.
	e2 := posixEngine(t, dir, "me@here", LockConfig{Wait: 200 * time.Millisecond})
	_, err = e2.Backup(ctx, bytes.NewReader(genSource(3, 1000)), smallOpts("v"))
	require.ErrorIs(t, err, ErrLocked)

	info, err := e.BreakLock(ctx, "v")
	require.NoError(t, err)
	require.NotNil(t, info)
	assert.Equal(t, "ghost@gone-host", info.Owner)
	_, err = e.Backup(ctx, bytes.NewReader(genSource(3, 1000)), smallOpts("v"))
	require.NoError(t, err)
	info, err = e.BreakLock(ctx, "v")
	require.NoError(t, err)
	assert.Nil(t, info, "nothing to break")
}

func TestLockRefreshKeepsALongOperationsLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ttl := 90 * time.Millisecond
	e := posixEngine(t, dir, "me@here", LockConfig{TTL: ttl})
	other := posixEngine(t, dir, "other@there", LockConfig{TTL: ttl})
	g, done := startGated(t, ctx, e, smallOpts("v"))
	first, err := other.LockStatus(ctx, "v")
	require.NoError(t, err)
	require.NotNil(t, first)
	// Many TTLs later the lock is still live, and refreshed.
	for range 8 {
		time.Sleep(ttl)
		st, err := other.LockStatus(ctx, "v")
		require.NoError(t, err)
		require.NotNil(t, st)
		_, err = other.Backup(ctx, bytes.NewReader(genSource(4, 1000)), smallOpts("v"))
		require.ErrorIs(t, err, ErrLocked)
		var le *LockedError
		require.ErrorAs(t, err, &le)
		require.False(t, le.Stale, "the holder's lock went stale: %v", err)
	}
	st, err := other.LockStatus(ctx, "v")
	require.NoError(t, err)
	assert.Equal(t, first.Token, st.Token)
	assert.True(t, st.Refreshed.After(first.Refreshed), "never refreshed")
	g.release()
	require.NoError(t, <-done)
}

// TestLockBrokenMidBackup: a lock broken while its backup runs stops the
// backup with ErrLockLost, and no _metadata is written, whether the break is
// seen by a refresh or by the check before the commit.
func TestLockBrokenMidBackup(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"at the commit", time.Hour}, {"at a refresh", 60 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			e := posixEngine(t, dir, "me@here", LockConfig{TTL: tc.ttl})
			breaker := posixEngine(t, dir, "admin@console", LockConfig{})
			g, done := startGated(t, ctx, e, smallOpts("v"))
			info, err := breaker.BreakLock(ctx, "v")
			require.NoError(t, err)
			require.Equal(t, "me@here", info.Owner)
			if tc.ttl < time.Second {
				time.Sleep(3 * tc.ttl) // a refresh notices
			}
			g.release()
			err = <-done
			require.ErrorIs(t, err, ErrLockLost)
			assert.Contains(t, err.Error(), "was broken")
			assert.Empty(t, metadataNames(t, e.t), "a backup that lost its lock was committed")
			list, err := e.List(ctx, "v")
			require.NoError(t, err)
			assert.Empty(t, list)
		})
	}
}

// TestLockTakenOverMidBackup: someone breaks the lock and takes it; the
// first backup stops, naming the new holder, and the new holder's lock
// stays.
func TestLockTakenOverMidBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{})
	other := posixEngine(t, dir, "other@there", LockConfig{})
	g, done := startGated(t, ctx, e, smallOpts("v"))
	_, err := other.BreakLock(ctx, "v")
	require.NoError(t, err)
	g2, done2 := startGated(t, ctx, other, smallOpts("v"))
	g.release()
	err = <-done
	require.ErrorIs(t, err, ErrLockLost)
	assert.Contains(t, err.Error(), "other@there")
	st, err := e.LockStatus(ctx, "v")
	require.NoError(t, err)
	require.NotNil(t, st, "the loser removed the new holder's lock")
	assert.Equal(t, "other@there", st.Owner)
	g2.release()
	require.NoError(t, <-done2)
	assert.Len(t, metadataNames(t, e.t), 1)
}

func TestLockReleasedAfterFailureAndCancel(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{})
	// A failing source.
	_, err := e.Backup(ctx, io.MultiReader(bytes.NewReader(genSource(5, 30000)), iotestErrReader{}), smallOpts("v"))
	require.Error(t, err)
	st, err := e.LockStatus(ctx, "v")
	require.NoError(t, err)
	assert.Nil(t, st, "lock left after a failure")

	// A cancelled backup.
	cctx, cancel := context.WithCancel(ctx)
	g, done := startGated(t, cctx, e, smallOpts("v"))
	cancel()
	g.release()
	require.ErrorIs(t, <-done, context.Canceled)
	st, err = e.LockStatus(ctx, "v")
	require.NoError(t, err)
	assert.Nil(t, st, "lock left after a cancellation")
	assertNoLockObjects(t, dir)

	// A delete that fails (it has children) releases it too.
	res, err := e.Backup(ctx, bytes.NewReader(genSource(5, 30000)), smallOpts("v"))
	require.NoError(t, err)
	inc := smallOpts("v")
	inc.Incremental = true
	_, err = e.Backup(ctx, bytes.NewReader(genSource(5, 30000)), inc)
	require.NoError(t, err)
	_, err = e.Delete(ctx, res.Info.ID, DeleteOptions{})
	require.ErrorIs(t, err, ErrHasChildren)
	assertNoLockObjects(t, dir)
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLockDeleteTakesTheLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{})
	res, err := e.Backup(ctx, bytes.NewReader(genSource(6, 30000)), smallOpts("v"))
	require.NoError(t, err)
	g, done := startGated(t, ctx, e, smallOpts("v"))
	_, err = e.Delete(ctx, res.Info.ID, DeleteOptions{})
	require.ErrorIs(t, err, ErrLocked)
	g.release()
	require.NoError(t, <-done)
	deleted, err := e.Delete(ctx, res.Info.ID, DeleteOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{res.Info.ID}, deleted)
}

func TestLockWaitGetsTheLockWhenReleased(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{})
	waiter := posixEngine(t, dir, "me@here", LockConfig{Wait: 20 * time.Second})
	g, done := startGated(t, ctx, e, smallOpts("v"))
	time.AfterFunc(300*time.Millisecond, g.release)
	start := time.Now()
	_, err := waiter.Backup(ctx, bytes.NewReader(genSource(7, 1000)), smallOpts("v"))
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.Greater(t, time.Since(start), 250*time.Millisecond)
}

func TestLockDisabled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{Disabled: true})
	g, done := startGated(t, ctx, e, smallOpts("v"))
	_, err := e.Backup(ctx, bytes.NewReader(genSource(8, 1000)), smallOpts("v"))
	require.NoError(t, err, "no lock, no exclusion")
	g.release()
	require.NoError(t, <-done)
}

func TestLockNested(t *testing.T) {
	ctx := context.Background()
	e := posixEngine(t, t.TempDir(), "me@here", LockConfig{})
	ran := false
	err := e.withVolumeLock(ctx, "v", "synthesize", func(ctx context.Context) error {
		_, err := e.Backup(ctx, bytes.NewReader(genSource(9, 1000)), smallOpts("v"))
		ran = true
		return err
	})
	require.NoError(t, err)
	require.True(t, ran)
}

func TestLockConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Lock: LockConfig{TTL: -time.Second}}, "lock TTL"},
		{Config{Lock: LockConfig{TTL: time.Millisecond}}, "at least"},
		{Config{Lock: LockConfig{Wait: -time.Second}}, "lock wait"},
		{Config{Owner: "bad\nowner"}, "control characters"},
		{Config{Owner: strings.Repeat("x", 300)}, "at most 256"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, ErrInvalidOptions)
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, Config{Lock: LockConfig{TTL: time.Second, Wait: time.Minute}, Owner: "ci@runner"}.Validate())
	e := posixEngine(t, t.TempDir(), "", LockConfig{})
	assert.Regexp(t, `^.+@.+$`, e.Owner(), "default owner is user@host")
	_, err := e.LockStatus(context.Background(), "a/b")
	require.ErrorIs(t, err, ErrInvalidOptions)
	_, err = e.BreakLock(context.Background(), "")
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestLockNames(t *testing.T) {
	posixN := naming{layout: target.LayoutPosix}
	contN := naming{layout: target.LayoutPosix, container: "c/d"}
	objN := naming{layout: target.LayoutObject, zone: "nova"}
	assert.Equal(t, "chunkback_locks/volume_v1.lock", posixN.lockName("v1"))
	assert.Equal(t, "c/d/chunkback_locks/volume_v1.lock", contN.lockName("v1"))
	assert.Equal(t, "volume_v1/chunkback.lock", objN.lockName("v1"))
	for _, n := range []naming{posixN, contN, objN} {
		for _, name := range []string{n.lockName("x_backup_y_metadata"), n.lockName("v") + claimSuffix + newToken()} {
			assert.NoError(t, target.CheckName(name))
			_, _, ok := n.locate(name)
			assert.False(t, ok, "%s looks like a backup", name)
		}
	}
}

// TestLockOwners: backups record their owner; an Incremental does not
// build on another owner's backup, and says so; Delete refuses another
// owner's backup unless AllowForeign.
func TestLockOwners(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	alice := posixEngine(t, dir, "alice@a", LockConfig{})
	bob := posixEngine(t, dir, "bob@b", LockConfig{})
	src := genSource(10, 60000)
	a1, err := alice.Backup(ctx, bytes.NewReader(src), smallOpts("v"))
	require.NoError(t, err)
	assert.Equal(t, "alice@a", a1.Info.Owner)
	assert.Empty(t, a1.Warnings)

	inc := smallOpts("v")
	inc.Incremental = true
	_, err = bob.Backup(ctx, bytes.NewReader(src), inc)
	require.ErrorIs(t, err, ErrParentUnusable, "bob has no backup of his own")
	require.ErrorContains(t, err, "bob@b")
	inc.FallbackToFull = true
	b1, err := bob.Backup(ctx, bytes.NewReader(src), inc)
	require.NoError(t, err)
	assert.True(t, b1.Full)
	require.Len(t, b1.Warnings, 1)
	assert.Contains(t, b1.Warnings[0], a1.Info.ID)
	assert.Contains(t, b1.Warnings[0], "alice@a")

	// Alice's incremental skips bob's newer backup.
	inc.FallbackToFull = false
	a2, err := alice.Backup(ctx, bytes.NewReader(src), inc)
	require.NoError(t, err)
	assert.Equal(t, a1.Info.ID, a2.Info.ParentID)
	require.Len(t, a2.Warnings, 1)
	assert.Contains(t, a2.Warnings[0], b1.Info.ID)
	assert.Contains(t, a2.Warnings[0], "bob@b")

	// Naming a foreign parent is allowed, with a warning.
	explicit := smallOpts("v")
	explicit.ParentID = a2.Info.ID
	b2, err := bob.Backup(ctx, bytes.NewReader(src), explicit)
	require.NoError(t, err)
	require.Len(t, b2.Warnings, 1)
	assert.Contains(t, b2.Warnings[0], "alice@a")

	list, err := bob.List(ctx, "v")
	require.NoError(t, err)
	owners := map[string]string{}
	for _, b := range list {
		owners[b.ID] = b.Owner
	}
	assert.Equal(t, map[string]string{a1.Info.ID: "alice@a", a2.Info.ID: "alice@a", b1.Info.ID: "bob@b", b2.Info.ID: "bob@b"}, owners)

	// Bob may not delete alice's chain (b2 sits on it too).
	_, err = bob.Delete(ctx, a1.Info.ID, DeleteOptions{Chain: true})
	require.ErrorIs(t, err, ErrForeignOwner)
	require.ErrorContains(t, err, "alice@a")
	require.ErrorContains(t, err, "AllowForeign")
	list, err = bob.List(ctx, "v")
	require.NoError(t, err)
	require.Len(t, list, 4, "a refused delete deleted something")
	// Alice may not delete b2 either, which sits on her a2.
	_, err = alice.Delete(ctx, a2.Info.ID, DeleteOptions{Chain: true})
	require.ErrorIs(t, err, ErrForeignOwner)
	require.ErrorContains(t, err, "bob@b")
	deleted, err := alice.Delete(ctx, a2.Info.ID, DeleteOptions{Chain: true, AllowForeign: true})
	require.NoError(t, err)
	assert.Equal(t, []string{b2.Info.ID, a2.Info.ID}, deleted)
	_, err = bob.Delete(ctx, b1.Info.ID, DeleteOptions{})
	require.NoError(t, err, "one's own backup")
}

// TestLockCinderBackupsAreNobodys: a backup without an owner (Cinder's) is
// never foreign.
func TestLockCinderBackupsAreNobodys(t *testing.T) {
	e := &Engine{owner: "me@here"}
	assert.False(t, e.foreign(&Info{Owner: ""}))
	assert.False(t, e.foreign(&Info{Owner: "me@here"}))
	assert.True(t, e.foreign(&Info{Owner: "you@there"}))
	b, w := e.latestOwnBackup([]*Info{{ID: "cinder", VolumeID: "v"}, {ID: "yours", VolumeID: "v", Owner: "you@there"}})
	require.NotNil(t, b)
	assert.Equal(t, "cinder", b.ID)
	require.Len(t, w, 1)
}

// nonAtomic makes PutOptions.IfNotExists a look followed by a put, as on
// Swift, with every writer of a lock passing the look before any puts: the
// worst case for the lock's read-back.
type nonAtomic struct {
	target.Target
	mu      sync.Mutex
	waiting int
	writers int
	all     chan struct{}
}

func (n *nonAtomic) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if !opts.IfNotExists {
		return n.Target.Put(ctx, name, body, size, opts)
	}
	_, err := n.Target.Stat(ctx, name)
	if err == nil {
		return target.ErrExists
	}
	if strings.HasSuffix(name, ".lock") {
		n.mu.Lock()
		n.waiting++
		if n.waiting == n.writers {
			close(n.all)
		}
		n.mu.Unlock()
		select {
		case <-n.all:
		case <-time.After(2 * time.Second):
		}
	}
	return n.Target.Put(ctx, name, body, size, target.PutOptions{})
}

// TestLockNonAtomicStoreNeverTwoWinners: when every writer passes the
// IfNotExists look before any of them stores the lock, the claims still let
// at most one of them in.
func TestLockNonAtomicStoreNeverTwoWinners(t *testing.T) {
	const writers = 4
	for round := range 10 {
		mem := targettest.NewMemory()
		na := &nonAtomic{Target: mem, writers: writers, all: make(chan struct{})}
		var inside, maxInside, wins atomic.Int32
		var wg sync.WaitGroup
		for i := range writers {
			e, err := New(na, Config{Owner: fmt.Sprintf("w%d@h", i)})
			require.NoError(t, err)
			wg.Go(func() {
				err := e.withVolumeLock(context.Background(), "v", "backup", func(ctx context.Context) error {
					n := inside.Add(1)
					for {
						m := maxInside.Load()
						if n <= m || maxInside.CompareAndSwap(m, n) {
							break
						}
					}
					time.Sleep(50 * time.Millisecond)
					inside.Add(-1)
					return checkVolumeLock(ctx)
				})
				if err == nil {
					wins.Add(1)
				} else {
					assert.ErrorIs(t, err, ErrLocked)
				}
			})
		}
		wg.Wait()
		require.LessOrEqual(t, maxInside.Load(), int32(1), "round %d: two writers held the lock at once", round)
		t.Logf("round %d: %d winner(s)", round, wins.Load())
		// Whatever happened, nothing is left to block the next writer.
		e, err := New(mem, Config{})
		require.NoError(t, err)
		require.NoError(t, e.withVolumeLock(context.Background(), "v", "backup", func(context.Context) error { return nil }), "round %d", round)
	}
}

// TestSameBackupIDWithoutLocksLeavesTheOtherWritersMetadata: with locks
// off, two writers of one backup ID in one volume at the same second share
// a prefix; the one that finds the other's _sha256file fails with ErrExists
// and its cleanup leaves the other's backup listed.
func TestSameBackupIDWithoutLocksLeavesTheOtherWritersMetadata(t *testing.T) {
	ctx := context.Background()
	mem := targettest.NewMemory()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	newEngine := func() *Engine {
		e, err := New(mem, Config{Lock: LockConfig{Disabled: true}, Now: func() time.Time { return at }})
		require.NoError(t, err)
		return e
	}
	first, second := newEngine(), newEngine()
	o := smallOpts("v")
	o.BackupID = "same-id"
	g, done := startGated(t, ctx, second, o)
	_, err := first.Backup(ctx, bytes.NewReader(bytes.Repeat([]byte("first "), 9000)), o)
	require.NoError(t, err)
	g.release()
	require.ErrorIs(t, <-done, ErrExists)
	list, err := first.List(ctx, "v")
	require.NoError(t, err)
	require.Len(t, list, 1, "the loser's cleanup deleted the winner's _metadata")
}

// TestLockHolderSurvivesALosersOverwrite: on a store without atomic
// creates, a writer that lost the race may replace the lock object and
// then remove it; the holder's claim still holds the lock, newcomers still
// meet it, and the holder's refresh writes the lock object again.
func TestLockHolderSurvivesALosersOverwrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{TTL: 90 * time.Millisecond})
	other := posixEngine(t, dir, "other@there", LockConfig{})
	err := e.withVolumeLock(ctx, "v", "backup", func(ctx context.Context) error {
		require.NoError(t, e.t.Delete(ctx, e.naming.lockName("v")))
		st, err := other.LockStatus(ctx, "v")
		require.NoError(t, err)
		require.NotNil(t, st, "the claim still holds the lock")
		assert.Equal(t, "me@here", st.Owner)
		_, err = other.Backup(ctx, bytes.NewReader(genSource(12, 1000)), smallOpts("v"))
		require.ErrorIs(t, err, ErrLocked)
		assert.Contains(t, err.Error(), "me@here")
		time.Sleep(100 * time.Millisecond) // a refresh or more
		st, err = other.LockStatus(ctx, "v")
		require.NoError(t, err)
		require.NotNil(t, st)
		return checkVolumeLock(ctx)
	})
	require.NoError(t, err)
	assertNoLockObjects(t, dir)
}

// A lock left by a process of this host that is gone (killed, crashed) is
// broken by the next writer, so that a resume after a SIGKILL is not held
// up; a live local holder, or one on another host, is not.
func TestLockOfADeadLocalProcessIsBroken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := posixEngine(t, dir, "me@here", LockConfig{})
	dead := exec.Command("true")
	require.NoError(t, dead.Run()) // its PID is now free
	plant := func(host string, pid int) {
		l := LockInfo{VolumeID: "v", Owner: "me@here", Host: host, PID: pid, Operation: "backup", Token: "feedface",
			Created: time.Now(), Refreshed: time.Now(), Expires: time.Now().Add(DefaultLockTTL)}
		body, err := json.Marshal(l)
		require.NoError(t, err)
		require.NoError(t, e.t.Put(ctx, e.naming.lockName("v"), bytes.NewReader(body), int64(len(body)), target.PutOptions{}))
	}

	plant(hostName(), dead.Process.Pid)
	_, err := e.Backup(ctx, bytes.NewReader(genSource(3, 1000)), smallOpts("v"))
	require.NoError(t, err, "the dead holder's lock is broken")
	assertNoLockObjects(t, dir)

	alive := exec.Command("sleep", "30")
	require.NoError(t, alive.Start())
	t.Cleanup(func() { _ = alive.Process.Kill(); _ = alive.Wait() })
	plant(hostName(), alive.Process.Pid)
	_, err = e.Backup(ctx, bytes.NewReader(genSource(3, 1000)), smallOpts("v"))
	require.ErrorIs(t, err, ErrLocked, "a live holder on this host")

	plant("another-host", dead.Process.Pid)
	_, err = e.Backup(ctx, bytes.NewReader(genSource(3, 1000)), smallOpts("v"))
	require.ErrorIs(t, err, ErrLocked, "a holder on another host")
}

// Prune leaves another owner's backups alone unless a filter selects them.
func TestPruneLeavesOtherOwnersBackups(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	alice := posixEngine(t, dir, "alice@a", LockConfig{})
	bob := posixEngine(t, dir, "bob@b", LockConfig{})
	for i := range 3 {
		_, err := alice.Backup(ctx, bytes.NewReader(genSource(uint64(i), 5000)), smallOpts("v"))
		require.NoError(t, err)
		_, err = bob.Backup(ctx, bytes.NewReader(genSource(uint64(i+10), 5000)), smallOpts("v"))
		require.NoError(t, err)
	}
	res, err := bob.Prune(ctx, "v", RetentionPolicy{KeepLast: 1}, PruneOptions{})
	require.NoError(t, err)
	require.Len(t, res.Deleted, 2)
	for _, b := range res.Deleted {
		assert.Equal(t, "bob@b", b.Owner)
	}
	all, err := alice.List(ctx, "v")
	require.NoError(t, err)
	owners := map[string]int{}
	for _, b := range all {
		owners[b.Owner]++
	}
	assert.Equal(t, map[string]int{"alice@a": 3, "bob@b": 1}, owners)
}
