package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/internal/targeturl"
)

// lockGate is a backup source that blocks at its first Read until released:
// its backup then holds the volume's lock.
type lockGate struct {
	r                 io.Reader
	entered, open     chan struct{}
	enterOnce, openOk sync.Once
}

func newLockGate(seed uint64) *lockGate {
	data := make([]byte, 50000)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return &lockGate{r: bytes.NewReader(data), entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *lockGate) Read(p []byte) (int, error) {
	g.enterOnce.Do(func() { close(g.entered); <-g.open })
	return g.r.Read(p)
}

func (g *lockGate) release() { g.openOk.Do(func() { close(g.open) }) }

func lockTestOptions(vol string) backup.BackupOptions {
	return backup.BackupOptions{VolumeID: vol, BlockSize: 4096, ObjectSize: 16384, Size: -1}
}

type lockRace struct {
	winner int // -1: every writer gave way
	gate   *lockGate
	done   chan error // the winner's result
}

// raceLocks starts a gated backup of vol on every engine at the same moment
// and waits until each writer either holds the lock (reads its source) or
// has failed. Two holders at once fail the test; every loser must fail with
// ErrLocked. The winner, if any, still holds the lock when it returns.
func raceLocks(t *testing.T, engines []*backup.Engine, vol string) lockRace {
	t.Helper()
	type outcome struct {
		i   int
		err error
	}
	gates := make([]*lockGate, len(engines))
	done := make([]chan error, len(engines))
	events := make(chan outcome, 2*len(engines))
	start := make(chan struct{})
	for i, e := range engines {
		gates[i], done[i] = newLockGate(uint64(i)), make(chan error, 1)
		go func() {
			<-start
			_, err := e.Backup(context.Background(), gates[i], lockTestOptions(vol))
			done[i] <- err
			events <- outcome{i, err}
		}()
		go func() {
			<-gates[i].entered
			events <- outcome{i, nil}
		}()
	}
	close(start)
	winner, failed := -1, 0
	for failed < len(engines) && (winner < 0 || failed < len(engines)-1) {
		select {
		case o := <-events:
			if o.err == nil {
				if winner >= 0 {
					for _, g := range gates {
						g.release()
					}
					t.Fatalf("writers %d and %d both hold the lock of %s", winner, o.i, vol)
				}
				winner = o.i
				continue
			}
			require.ErrorIs(t, o.err, backup.ErrLocked, "writer %d", o.i)
			failed++
		case <-time.After(2 * time.Minute):
			t.Fatal("the race did not settle")
		}
	}
	if winner < 0 {
		return lockRace{winner: -1}
	}
	return lockRace{winner: winner, gate: gates[winner], done: done[winner]}
}

// lockOnURL: writers race for one volume's lock on the target, exactly one
// (or, where the store has no atomic create, at most one) wins; the CLI
// reports the holder (exit code 7), shows the lock and breaks it, and the
// broken backup stops without a _metadata.
func lockOnURL(t *testing.T, url string) {
	ctx := context.Background()
	vol := fmt.Sprintf("lock-%d", time.Now().UnixNano())
	open := func(owner string) *backup.Engine {
		tg, err := targeturl.Open(ctx, url, targeturl.Options{Create: true})
		require.NoError(t, err)
		t.Cleanup(func() { tg.Close() })
		e, err := backup.New(tg, backup.Config{Owner: owner, Workers: 2})
		require.NoError(t, err)
		return e
	}
	// Two writers, as two processes would be: each its own client.
	alice, bob := open("alice@lock-test"), open("bob@lock-test")
	t.Cleanup(func() {
		_, _ = alice.BreakLock(context.Background(), vol)
		list, _ := alice.List(context.Background(), vol)
		for _, b := range list {
			_, _ = alice.Delete(context.Background(), b.ID, backup.DeleteOptions{Chain: true, AllowForeign: true})
		}
	})

	wins := 0
	for round := range 3 {
		r := raceLocks(t, []*backup.Engine{alice, bob}, vol)
		if r.winner < 0 {
			t.Logf("round %d: both writers gave way (a simultaneous create on a store without atomic creates)", round)
			continue
		}
		wins++
		r.gate.release()
		require.NoError(t, <-r.done, "round %d: the winner's backup", round)
	}
	require.Positive(t, wins, "no round had a winner")
	list, err := alice.List(ctx, vol)
	require.NoError(t, err)
	require.Len(t, list, wins, "one backup per round won")

	// A held lock: the CLI names its holder, shows it, and breaks it.
	g := newLockGate(9)
	done := make(chan error, 1)
	go func() {
		_, err := alice.Backup(ctx, g, lockTestOptions(vol))
		done <- err
	}()
	defer g.release()
	select {
	case <-g.entered:
	case err := <-done:
		t.Fatalf("the holder's backup failed: %v", err)
	}
	src := filepath.Join(t.TempDir(), "small.img")
	require.NoError(t, os.WriteFile(src, bytes.Repeat([]byte("lock"), 4096), 0o600))
	code, _, errOut := cli(t, nil, "backup", "--target", url, "--volume-id", vol, "--owner", "carol@cli", "--progress", "none", src)
	require.Equal(t, exitLocked, code, errOut)
	for _, want := range []string{"alice@lock-test", "chunkback unlock --volume-id " + vol} {
		assert.Contains(t, errOut, want)
	}
	code, out, errOut := cli(t, nil, "lock-status", "--target", url, "--volume-id", vol, "--json")
	require.Equal(t, 0, code, errOut)
	st := jsonOut(t, out)
	require.Equal(t, true, st["locked"])
	require.Equal(t, "alice@lock-test", st["lock"].(map[string]any)["owner"])
	code, out, errOut = cli(t, nil, "unlock", "--target", url, "--volume-id", vol, "--json")
	require.Equal(t, 0, code, errOut)
	st = jsonOut(t, out)
	require.Equal(t, true, st["was_locked"])
	require.Equal(t, "alice@lock-test", st["lock"].(map[string]any)["owner"])
	g.release()
	err = <-done
	require.ErrorIs(t, err, backup.ErrLockLost)
	list, err = alice.List(ctx, vol)
	require.NoError(t, err)
	require.Len(t, list, wins, "the backup whose lock was broken was committed")

	// The volume is free again; backups record their owner, and another
	// owner's backups are not deleted without --allow-foreign.
	code, out, errOut = cli(t, nil, "backup", "--target", url, "--volume-id", vol, "--owner", "carol@cli", "--progress", "none", "--json", src)
	require.Equal(t, 0, code, errOut)
	carol := jsonOut(t, out)
	require.Equal(t, "carol@cli", carol["owner"])
	code, _, errOut = cli(t, nil, "delete", "--target", url, "--backup-id", list[0].ID, "--owner", "carol@cli")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, list[0].Owner)
	code, _, errOut = cli(t, nil, "delete", "--target", url, "--backup-id", carol["backup_id"].(string), "--owner", "carol@cli")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = cli(t, nil, "unlock", "--target", url, "--volume-id", vol, "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, false, jsonOut(t, out)["was_locked"], "a lock was left behind")
}

func TestLockPosix(t *testing.T) {
	lockOnURL(t, "file://"+t.TempDir())
}

// TestLockServers runs lockOnURL against every --target URL of every real
// server.
func TestLockServers(t *testing.T) {
	forEachServerURL(t, func(t *testing.T, targetURL string) {
		lockOnURL(t, targetURL)
	})
}
