//go:build faultmatrix

package faultmatrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/internal/targeturl"
	"github.com/chunkback/chunkback/target"
)

// The volume every case backs up: three objects of 1 MiB (random,
// compressible, random), so both stored forms (raw and zlib) are exercised.
const (
	objectSize = 1 << 20
	volumeSize = 3 * objectSize
	workers    = 2
)

// caseTimeout is the deadline of one backup under a fault. A backup must
// return by then plus the time its cleanup may take (cleanupLimit, the
// engine's own bound): later is a failure of the matrix ("bounded time").
const (
	caseTimeout  = 90 * time.Second
	cleanupLimit = 2 * time.Minute
)

// StrictEnv, set to 1, makes an error that wraps no sentinel of target or
// backup fail the matrix; by default its cell says "unclassified".
const StrictEnv = "CHUNKBACK_FAULT_STRICT"

func volumeData(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	data := make([]byte, volumeSize)
	for i := 0; i < objectSize; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
			data[2*objectSize+i+j] = byte(v >> (8*j + 3))
		}
	}
	text := []byte("chunkback fault matrix: compressible text in the middle object. ")
	for i := objectSize; i < 2*objectSize; i++ {
		data[i] = text[i%len(text)]
	}
	return data
}

// harness runs one case for one column: it opens targets, runs a backup,
// and checks the invariant on the result.
type harness struct {
	t        *testing.T
	col      column
	vol      string
	data     []byte
	deadline time.Duration // of each backup
}

func newHarness(t *testing.T, col column) *harness {
	return &harness{t: t, col: col, vol: "fm-" + strings.ReplaceAll(col.String(), "/", "-"),
		data: volumeData(uint64(len(col.String()))), deadline: caseTimeout}
}

// open opens rawURL with the environment env (set for the rest of the
// case), as the CLI does: the scheme's own retry policy, Create on.
func (h *harness) open(rawURL string, env map[string]string) *targeturl.Opened {
	h.t.Helper()
	for k, v := range env {
		h.t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), time.Minute)
	defer cancel()
	tg, err := targeturl.Open(ctx, rawURL, targeturl.Options{Create: true})
	require.NoError(h.t, err, "opening %s", h.col)
	h.t.Cleanup(func() { _ = tg.Close() })
	return tg
}

func (h *harness) engine(t target.Target) *backup.Engine {
	h.t.Helper()
	e, err := backup.New(t, backup.Config{Workers: workers})
	require.NoError(h.t, err)
	return e
}

// run is what one backup under a fault did.
type run struct {
	id   string
	err  error
	took time.Duration
	// expired: the backup's context (the caller's deadline) ran out.
	expired bool
}

// backup runs one backup of the volume through t.
func (h *harness) backup(t target.Target) run {
	h.t.Helper()
	id := newID()
	ctx, cancel := context.WithTimeout(h.t.Context(), h.deadline)
	defer cancel()
	start := time.Now()
	_, err := h.engine(t).Backup(ctx, bytes.NewReader(h.data), backup.BackupOptions{
		VolumeID: h.vol, BackupID: id, ObjectSize: objectSize, Size: volumeSize,
	})
	r := run{id: id, err: err, took: time.Since(start), expired: ctx.Err() != nil}
	if err != nil {
		h.t.Logf("%s: backup failed after %v: %v", h.col, r.took.Round(time.Millisecond), err)
	} else {
		h.t.Logf("%s: backup completed in %v", h.col, r.took.Round(time.Millisecond))
	}
	return r
}

// judge checks the invariant on r through check (a target that reaches
// the server without faults) and returns the table's cell. A completed
// backup must be found and restore byte for byte (it is deleted then); a
// failed one must have failed in bounded time with a classified error that
// names what failed and shows no credential, and must not look complete.
func (h *harness) judge(check target.Target, r run) string {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
	defer cancel()
	e := h.engine(check)
	if r.err == nil {
		info, err := e.Find(ctx, r.id, h.vol)
		require.NoError(t, err, "a backup that completed must be found")
		require.EqualValues(t, volumeSize, info.Size)
		h.requireRestores(ctx, e, r.id)
		_, err = e.Delete(ctx, r.id, backup.DeleteOptions{})
		require.NoError(t, err)
		return "completes"
	}
	require.Less(t, r.took, h.deadline+cleanupLimit+10*time.Second, "the backup must fail in bounded time")
	msg := r.err.Error()
	for _, s := range secrets(h.col) {
		require.NotContains(t, msg, s, "a credential in the error")
	}
	h.waitReachable(ctx, e)
	_, err := e.Find(ctx, r.id, h.vol)
	require.ErrorIs(t, err, backup.ErrNotFound, "a failed backup must not look complete")
	list, err := e.List(ctx, h.vol)
	require.NoError(t, err)
	for _, b := range list {
		require.NotEqual(t, r.id, b.ID, "List shows the failed backup")
	}
	// A lock whose release could not reach the store stays, held by this
	// (live) test process; a real CLI would have exited, and the next
	// writer breaks a dead local holder's lock. Break it here instead.
	if held, err := e.BreakLock(ctx, h.vol); err != nil {
		t.Errorf("%s: breaking the lock left by the failed backup: %v", h.col, err)
	} else if held != nil {
		t.Logf("%s: the failed backup's lock was left (its release could not reach the store); broken", h.col)
	}
	if n := h.removeLeftovers(ctx, check, r.id); n > 0 {
		t.Logf("%s: %d object(s) of the failed backup were left (its cleanup could not reach the store); removed", h.col, n)
	}
	if r.expired {
		// The caller's own deadline: the engine returns ctx's error as
		// it is, and the caller knows what it cancelled.
		return "fails clearly: the caller's deadline (no request timeout of its own)"
	}
	if !namesWhat(msg) {
		t.Errorf("%s: the error does not say what failed: %v", h.col, r.err)
	}
	class := classify(r.err)
	if class == "" {
		t.Logf("%s: the error wraps no sentinel of target or backup (errors.Is cannot classify it): %v", h.col, r.err)
		if os.Getenv(StrictEnv) == "1" {
			t.Errorf("%s: unclassified error (%s=1)", h.col, StrictEnv)
		}
		return "fails clearly, **unclassified**: " + cause(msg)
	}
	return "fails clearly: " + class
}

// waitReachable waits until the store answers a listing again: a server
// that was stopped or killed may take a while to serve after it is back
// (an OSD the monitor marked down, a brick the client must reconnect to).
func (h *harness) waitReachable(ctx context.Context, e *backup.Engine) {
	h.t.Helper()
	start := time.Now()
	for {
		_, err := e.List(ctx, h.vol)
		if err == nil {
			if d := time.Since(start); d > time.Second {
				h.t.Logf("%s: the store answered again after %v", h.col, d.Round(time.Millisecond))
			}
			return
		}
		require.NoError(h.t, ctx.Err(), "the store does not answer again: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
}

// cause names the network failure behind an unclassified error.
func cause(msg string) string {
	switch m := strings.ToLower(msg); {
	case strings.Contains(m, "connection reset"), strings.Contains(m, "broken pipe"):
		return "connection reset"
	case strings.Contains(m, "timeout"), strings.Contains(m, "timed out"):
		return "timeout"
	case strings.Contains(m, "eof"):
		return "connection closed"
	case strings.Contains(m, "connection refused"):
		return "connection refused"
	}
	return "other"
}

// namesWhat reports whether an engine error says which operation failed.
func namesWhat(msg string) bool {
	for _, s := range []string{"storing ", "reading ", "looking for backup", "listing ", "backup ", "the lock "} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// classify names the sentinel an error wraps ("" if none).
func classify(err error) string {
	switch {
	case errors.Is(err, target.ErrRetryQuotaExhausted):
		return "retry quota exhausted"
	case errors.Is(err, target.ErrThrottled):
		return "throttled"
	case errors.Is(err, target.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, target.ErrPermanent):
		return "permanent"
	case errors.Is(err, target.ErrPermission):
		return "permission"
	case errors.Is(err, backup.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, context.DeadlineExceeded):
		// A client library's own request timeout, built on a context.
		return "timeout (context.DeadlineExceeded of the client library)"
	}
	return ""
}

// requireRestores restores backup id into a new file and compares it with
// the volume byte for byte.
func (h *harness) requireRestores(ctx context.Context, e *backup.Engine, id string) {
	h.t.Helper()
	f, err := os.Create(filepath.Join(h.t.TempDir(), "restored"))
	require.NoError(h.t, err)
	defer f.Close()
	_, err = e.Restore(ctx, id, f, backup.RestoreOptions{})
	require.NoError(h.t, err)
	got, err := os.ReadFile(f.Name())
	require.NoError(h.t, err)
	require.True(h.t, bytes.Equal(h.data, got), "the restored volume differs from the source")
}

// removeLeftovers deletes the objects a failed backup left and returns
// how many there were.
func (h *harness) removeLeftovers(ctx context.Context, t target.Target, id string) int {
	var names []string
	err := t.List(ctx, "", func(o target.Info) error {
		if strings.Contains(o.Name, id) {
			names = append(names, o.Name)
		}
		return nil
	})
	require.NoError(h.t, err)
	for _, n := range names {
		require.NoError(h.t, t.Delete(ctx, n))
	}
	return len(names)
}

func newID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// hooked is a target that calls afterPut after each successful Put of a
// data object and onFail on the first operation that fails for good (after
// the retry decorator inside it): the moment a fault is lifted or a killed
// server is brought back, so the failed backup's cleanup can reach it.
type hooked struct {
	target.Target
	afterPut func(name string)
	onFail   func(error)
	once     sync.Once
}

func (h *hooked) Unwrap() target.Target { return h.Target }

func (h *hooked) fail(err error) error {
	if err != nil && h.onFail != nil && !errors.Is(err, target.ErrNotFound) && !errors.Is(err, target.ErrExists) {
		h.once.Do(func() { h.onFail(err) })
	}
	return err
}

func (h *hooked) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, o target.PutOptions) error {
	err := h.Target.Put(ctx, name, body, size, o)
	if err == nil && h.afterPut != nil && isDataObject(name) {
		h.afterPut(name)
	}
	return h.fail(err)
}

func (h *hooked) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	rc, err := h.Target.Get(ctx, name, off, n)
	return rc, h.fail(err)
}

func (h *hooked) Stat(ctx context.Context, name string) (target.Info, error) {
	i, err := h.Target.Stat(ctx, name)
	return i, h.fail(err)
}

func (h *hooked) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	return h.fail(h.Target.List(ctx, prefix, fn))
}

func (h *hooked) Delete(ctx context.Context, name string) error {
	return h.fail(h.Target.Delete(ctx, name))
}

// isDataObject reports whether name is a backup's data object (…-NNNNN).
func isDataObject(name string) bool {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return false
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
