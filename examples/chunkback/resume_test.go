package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/internal/targeturl"
	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
)

// TestResumeHintListPartialAndDelete: an interrupted CLI backup keeps its
// partial state and says how to resume or delete it; list --partial shows
// it; the command it prints resumes it; delete removes another one.
func TestResumeHintListPartialAndDelete(t *testing.T) {
	store := t.TempDir()
	src, data := volume(t, 24<<20)
	const id = "c0ffee00-1111-4222-8333-444455556666"
	args := []string{"backup", "--target", store, "--volume-id", "vol", "--backup-id", id, "--object-size", "1048576", "--workers", "1", "--progress", "none", src}
	code, errOut := runInterrupted(t, store, id, args)
	require.Equal(t, exitInterrupted, code, errOut)
	require.Contains(t, errOut, "partial backup "+id+" kept with")
	m := regexp.MustCompile(`(?m)^resume with: chunkback (.*)$`).FindStringSubmatch(errOut)
	require.NotNil(t, m, errOut)
	require.Equal(t, "backup --resume --backup-id "+id+" --target "+store+" --volume-id vol --object-size 1048576 --workers 1 --progress none "+src, m[1])
	require.Contains(t, errOut, "or delete it with: chunkback delete --target "+store+" --backup-id "+id)

	code, out, errOut := cli(t, nil, "list", "--target", store, "--partial", "--json")
	require.Equal(t, 0, code, errOut)
	parts := jsonOut(t, out)["partials"].([]any)
	require.Len(t, parts, 1)
	p := parts[0].(map[string]any)
	require.Equal(t, id, p["backup_id"])
	require.Equal(t, true, p["resumable"])
	reused := p["objects"].(float64)
	require.Positive(t, reused)
	code, out, _ = cli(t, nil, "list", "--target", store, "--partial")
	require.Equal(t, 0, code)
	require.Contains(t, out, id)

	code, _, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--resume", src)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--resume needs --backup-id")
	code, _, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--backup-id", id, "--object-size", "2097152", "--resume", src)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "object size 2097152 differs from the partial backup's 1048576")

	code, out, errOut = cli(t, nil, append(strings.Fields(m[1]), "--json")...)
	require.Equal(t, 0, code, errOut)
	doc := jsonOut(t, out)
	require.Equal(t, true, doc["resumed"])
	require.Equal(t, reused, doc["objects_reused"])
	dest := filepath.Join(t.TempDir(), "restored.img")
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, dest)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "restored bytes differ")
	code, out, _ = cli(t, nil, "list", "--target", store, "--partial", "--json")
	require.Equal(t, 0, code)
	require.Empty(t, jsonOut(t, out)["partials"])

	// Another partial backup, deleted instead of resumed.
	const other = "deadbeef-1111-4222-8333-444455556666"
	args[6] = other
	code, errOut = runInterrupted(t, store, other, args)
	require.Equal(t, exitInterrupted, code, errOut)
	code, out, errOut = cli(t, nil, "delete", "--target", store, "--backup-id", other, "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, []any{other}, jsonOut(t, out)["deleted"])
	_, err = os.Stat(filepath.Join(store, other[:2], other[2:4], other))
	if err == nil {
		entries, _ := os.ReadDir(filepath.Join(store, other[:2], other[2:4], other))
		require.Empty(t, entries, "delete left files of the partial backup")
	}
	code, out, _ = cli(t, nil, "list", "--target", store, "--partial", "--json")
	require.Equal(t, 0, code)
	require.Empty(t, jsonOut(t, out)["partials"])
}

// runInterrupted runs a backup in-process and cancels it (as Ctrl-C does)
// once the third object of backup id is in store.
func runInterrupted(t *testing.T, store, id string, args []string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			matches, _ := filepath.Glob(filepath.Join(store, id[:2], id[2:4], id, "*-00003"))
			if len(matches) > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stderr.String()
}

// Sizes of the SIGKILL test: the source, and how many kill sequences run
// against each target.
const (
	killSourceSize  = 64 << 20
	killSeedsPosix  = 5
	killSeedsServer = 2
)

// TestResumeAfterSIGKILL builds the CLI and, on posix and on every real
// server's URLs, kills `chunkback backup --resumable` with SIGKILL at random
// points, then `--resume`s it (killing the first resumes too) until it
// succeeds. The result must be the backup an uninterrupted run makes (same
// objects, object MD5s, SHA-256 manifest and facts) and restore byte for
// byte.
func TestResumeAfterSIGKILL(t *testing.T) {
	bin := buildCLI(t)
	src, data := volume(t, killSourceSize)
	t.Run("posix", func(t *testing.T) {
		killAndResume(t, bin, "file://"+t.TempDir(), src, data, killSeedsPosix)
	})
	t.Run("servers", func(t *testing.T) {
		forEachServerURL(t, func(t *testing.T, targetURL string) {
			killAndResume(t, bin, targetURL, src, data, killSeedsServer)
		})
	})
}

// buildCLI builds this command, with the build tags of the test binary (so
// that rados:// and gluster:// work when the test was built for them).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chunkback")
	args := []string{"build", "-o", bin}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-tags" && s.Value != "" {
				args = append(args, "-tags", s.Value)
			}
		}
	}
	cmd := exec.Command("go", append(args, ".")...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// attempt is how one run of the CLI ended.
type attempt struct {
	killed         bool
	code           int
	stdout, stderr string
}

// runCLI runs the built CLI; with killAfter > 0 it is sent SIGKILL then,
// if it is still running.
func runCLI(t *testing.T, bin string, killAfter time.Duration, args ...string) attempt {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if killAfter > 0 {
		timer = time.After(killAfter)
	}
	select {
	case <-done:
	case <-timer:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return attempt{killed: true, code: -1, stderr: stderr.String()}
	}
	return attempt{code: ws.ExitStatus(), stdout: stdout.String(), stderr: stderr.String()}
}

func killAndResume(t *testing.T, bin, targetURL, src string, data []byte, seeds int) {
	volID := fmt.Sprintf("resume-kill-%d", time.Now().UnixNano())
	base := []string{"backup", "--target", targetURL, "--volume-id", volID, "--object-size", "1048576", "--progress", "none"}
	refID := newTestID(0)
	started := time.Now()
	a := runCLI(t, bin, 0, append(base, "--backup-id", refID, src)...)
	require.Equal(t, 0, a.code, a.stderr)
	took := time.Since(started)
	// Kill points: 0.1 s to 1.5 s, but mostly before an uninterrupted run
	// would end.
	window := min(1500*time.Millisecond, took*3/4) - 100*time.Millisecond
	require.Positive(t, window, "the reference backup took only %v", took)

	ctx := context.Background()
	opened, err := targeturl.Open(ctx, targetURL, targeturl.Options{})
	require.NoError(t, err)
	defer opened.Close()
	e, err := backup.New(opened, backup.Config{})
	require.NoError(t, err)
	want := backupFacts(t, e, opened, refID)

	for seed := 1; seed <= seeds; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), uint64(len(targetURL))))
		id := newTestID(seed)
		var log []string
		for try := 0; ; try++ {
			args := append(slices.Clone(base), "--backup-id", id, "--resumable", "--json")
			if try > 0 {
				args = append(args, "--resume")
			}
			var kill time.Duration
			if try < 3 { // the first run and two resumes are killed
				kill = 100*time.Millisecond + time.Duration(r.Int64N(int64(window)))
			}
			a := runCLI(t, bin, kill, append(args, src)...)
			log = append(log, fmt.Sprintf("try %d: kill after %v: killed %v, exit %d", try, kill, a.killed, a.code))
			if a.killed {
				continue
			}
			if a.code != 0 && try > 0 && strings.Contains(a.stderr, "is complete: there is nothing to resume") {
				log = append(log, "the last killed run had completed the backup")
				break
			}
			require.Equal(t, 0, a.code, "%s\n%s", strings.Join(log, "\n"), a.stderr)
			res := jsonOut(t, a.stdout)
			log = append(log, fmt.Sprintf("done: resumed %v, reused %v of %v objects", res["resumed"], res["objects_reused"], res["objects"]))
			break
		}
		t.Logf("seed %d: %s", seed, strings.Join(log, "; "))
		got := backupFacts(t, e, opened, id)
		require.Equal(t, want, got, "the resumed backup differs from an uninterrupted one")

		dest := filepath.Join(t.TempDir(), "restored.img")
		a := runCLI(t, bin, 0, "restore", "--target", targetURL, "--backup-id", id, "--progress", "none", dest)
		require.Equal(t, 0, a.code, a.stderr)
		restored, err := os.ReadFile(dest)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, restored), "restored bytes differ")
		os.Remove(dest)
		a = runCLI(t, bin, 0, "verify", "--target", targetURL, "--backup-id", id)
		require.Equal(t, 0, a.code, a.stderr)
		parts, err := e.Partials(ctx, volID)
		require.NoError(t, err)
		require.Empty(t, parts, "a completed backup is not partial")
		_, err = e.Delete(ctx, id, backup.DeleteOptions{})
		require.NoError(t, err)
	}
	_, err = e.Delete(ctx, refID, backup.DeleteOptions{})
	require.NoError(t, err)
}

func newTestID(n int) string {
	return fmt.Sprintf("%08x-%04x-4000-8000-%012d", time.Now().UnixNano()&0xffffffff, n, n)
}

// backupShape is what must be equal between a resumed backup and an
// uninterrupted one of the same source made at another time under another
// ID: the objects (by number), the manifest's hashes, and the facts.
type backupShape struct {
	Objects []string
	Extra   string
	Hashes  []sha.Hash
	Block   int
}

func backupFacts(t *testing.T, e *backup.Engine, tg target.Target, id string) backupShape {
	t.Helper()
	ctx := context.Background()
	info, err := e.Find(ctx, id, "")
	require.NoError(t, err)
	m := info.Metadata
	var s backupShape
	prefix := ""
	for _, o := range m.Objects {
		i := strings.LastIndexByte(o.Name, '-')
		prefix = o.Name[:i]
		s.Objects = append(s.Objects, fmt.Sprintf("%s %d+%d %s %s", o.Name[i:], o.Offset, o.Length, o.Compression, o.MD5))
	}
	s.Extra = string(m.Extra)
	require.NotEmpty(t, prefix)
	shaName := prefix + "_sha256file"
	if e.Layout() == target.LayoutPosix {
		shaName = id[:2] + "/" + id[2:4] + "/" + id + "/" + shaName
	}
	rc, err := tg.Get(ctx, shaName, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	man, err := sha.Parse(rc)
	require.NoError(t, err)
	s.Hashes, s.Block = man.Hashes, man.BlockSize
	return s
}
