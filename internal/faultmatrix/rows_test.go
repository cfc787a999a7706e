//go:build faultmatrix

package faultmatrix

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/internal/httpfault"
	"github.com/chunkback/chunkback/internal/tcpfault"
	"github.com/chunkback/chunkback/target"
)

// row is one fault: a row of the table.
type row struct {
	name  string // the subtest's name
	title string // the table's
	run   func(h *harness) string
}

func rows() []row {
	return []row{
		{"latency", "latency 50 ms ± 10 ms, both ways", rowLatency},
		{"reset-twice", "connection reset mid-transfer (2 connections)", rowReset(2)},
		{"reset-always", "connection reset mid-transfer (every connection)", rowReset(0)},
		{"blackhole", "timeout: blackhole mid-backup", rowBlackhole},
		{"http-429", "429 burst (3 uploads) with Retry-After: 1", rowHTTP(http.StatusTooManyRequests)},
		{"http-503", "503 burst (3 uploads) with Retry-After: 1", rowHTTP(http.StatusServiceUnavailable)},
		{"server-killed", "server killed (SIGKILL) mid-backup, restarted", rowKill},
		{"truncated", "stored object truncated (then restore, verify)", rowDamage("truncated")},
		{"deleted", "stored object deleted (then restore, verify)", rowDamage("deleted")},
		{"bit-flipped", "stored object bit-flipped (then restore, verify)", rowDamage("bit-flipped")},
		{"sigkill-resume", "backup process SIGKILLed at random points, then resumed", rowResume},
	}
}

// proxied runs a backup through a TCP fault proxy in front of the
// column's server, with the faults arm sets; they are lifted when an
// operation first fails for good, so the failed backup's cleanup gets
// through, as after a network outage.
func (h *harness) proxied(arm func(*tcpfault.Proxy) error) string {
	t := h.t
	direct := h.open(withTimeouts(h.col.Kind, h.col.URL), h.col.Env)
	_, _, upstream, err := route(h.col, "127.0.0.1:1")
	require.NoError(t, err)
	p, err := tcpfault.New(tcpfault.Config{Upstream: upstream, Seed: 7})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	rawURL, env, _, err := route(h.col, p.Addr())
	require.NoError(t, err)
	tg := h.open(withTimeouts(h.col.Kind, rawURL), env)
	require.NoError(t, arm(p))
	r := h.backup(&hooked{Target: tg, onFail: func(error) { p.Clear() }})
	p.Clear()
	st := p.Stats()
	t.Logf("%s: proxy: %d connections, %d bytes up, %d down, %d resets, %d dropped", h.col, st.Accepted,
		st.Bytes[tcpfault.ClientToServer], st.Bytes[tcpfault.ServerToClient], st.Resets, st.Dropped)
	cell := h.judge(direct, r)
	if h.col.Kind == "gluster" {
		cell += " (glusterd link only)"
	}
	return cell
}

// osdFault runs a backup into the pool backups-fault while osd.1, its only
// OSD, has the given settings (Ceph's own fault injection): librados
// reaches the OSDs at the cluster map's addresses, past any proxy.
func (h *harness) osdFault(settings map[string][2]string, label string) string {
	t := h.t
	tg := h.open(withTimeouts("rados", faultPoolURL(t, h.col)), h.col.Env)
	var once sync.Once
	undo := func() {
		once.Do(func() {
			for k, v := range settings {
				cephConfigSet(t, "osd.1", k, v[1])
			}
		})
	}
	t.Cleanup(undo)
	for k, v := range settings {
		cephConfigSet(t, "osd.1", k, v[0])
	}
	r := h.backup(tg)
	undo()
	return h.judge(tg, r) + " (" + label + ")"
}

func rowLatency(h *harness) string {
	if h.col.Kind == "rados" {
		return h.osdFault(map[string][2]string{
			"osd_debug_inject_dispatch_delay_probability": {"1", "0"},
			"osd_debug_inject_dispatch_delay_duration":    {"0.05", "0.1"},
		}, "50 ms at osd.1")
	}
	return h.proxied(func(p *tcpfault.Proxy) error {
		return p.SetBoth(tcpfault.Faults{Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond})
	})
}

// rowReset resets connections once they have carried 256 KiB of uploads,
// after the first 512 KiB: times of them, or every one (0).
func rowReset(times int) func(h *harness) string {
	return func(h *harness) string {
		if h.col.Kind == "rados" {
			oneIn := "20"
			if times == 0 {
				oneIn = "3"
			}
			// librados resends after each injected failure and may keep
			// at it for minutes (seen: 24 s to 3 min for the same case).
			h.deadline = time.Minute
			return h.osdFault(map[string][2]string{"ms_inject_socket_failures": {oneIn, "0"}},
				"osd.1 drops 1 in "+oneIn+" messages")
		}
		return h.proxied(func(p *tcpfault.Proxy) error {
			return p.Set(tcpfault.ClientToServer, tcpfault.Faults{StartAfter: 512 << 10, ResetAfter: 256 << 10, Times: times})
		})
	}
}

// noOwnTimeout are the kinds whose URLs set no request timeout: a silent
// server holds their requests until the context ends.
var noOwnTimeout = map[string]bool{"gs": true, "azblob": true}

func rowBlackhole(h *harness) string {
	switch h.col.Kind {
	case "rados":
		// Not SIGSTOP: a stopped OSD leaves laggy PGs and slow-ping
		// warnings that keep the shared cluster unhealthy for many minutes.
		return h.midBackup(withTimeouts("rados", faultPoolURL(h.t, h.col)),
			func(t *testing.T) {
				cephConfigSet(t, "osd.1", "osd_debug_inject_dispatch_delay_duration", "6")
				cephConfigSet(t, "osd.1", "osd_debug_inject_dispatch_delay_probability", "1")
			},
			func(t *testing.T) {
				cephConfigSet(t, "osd.1", "osd_debug_inject_dispatch_delay_probability", "0")
				cephConfigSet(t, "osd.1", "osd_debug_inject_dispatch_delay_duration", "0.1")
			}, "osd.1 holds every op 6 s, past op_timeout")
	case "gluster":
		pidFile := brickPIDFile(h.t)
		return h.midBackup(withTimeouts("gluster", h.col.URL),
			func(t *testing.T) { signalPIDFile(t, pidFile, syscall.SIGSTOP) },
			func(t *testing.T) { signalPIDFile(t, pidFile, syscall.SIGCONT) },
			"brick stopped (SIGSTOP)")
	}
	if noOwnTimeout[h.col.Kind] {
		h.deadline = 30 * time.Second
	}
	return h.proxied(func(p *tcpfault.Proxy) error {
		return p.Set(tcpfault.ClientToServer, tcpfault.Faults{StartAfter: objectSize + objectSize/2, Blackhole: true})
	})
}

// midBackup runs a backup that has fault applied after its first data
// object and undone when an operation first fails for good: faults on a
// data path no proxy can sit on.
func (h *harness) midBackup(rawURL string, fault, undo func(*testing.T), label string) string {
	t := h.t
	tg := h.open(rawURL, h.col.Env)
	var applied, undone atomic.Bool
	lift := func() {
		if applied.Load() && undone.CompareAndSwap(false, true) {
			isolate(t, undo)
		}
	}
	t.Cleanup(lift)
	r := h.backup(&hooked{Target: tg,
		afterPut: func(string) {
			if applied.CompareAndSwap(false, true) {
				isolate(t, fault)
			}
		},
		onFail: func(error) { lift() },
	})
	lift()
	require.True(t, applied.Load(), "the fault was never applied")
	return h.judge(tg, r) + " (" + label + ")"
}

// isolate runs fn in a goroutine of its own and waits for it: fn may end
// its goroutine with t.FailNow, which must not end the engine's worker
// that called a hook.
func isolate(t *testing.T, fn func(*testing.T)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(t)
	}()
	<-done
}

// rowHTTP answers the first 3 uploads with status and Retry-After: 1,
// through internal/httpfault in front of an HTTP store.
func rowHTTP(status int) func(h *harness) string {
	return func(h *harness) string {
		t := h.t
		rule := httpfault.Rule{Method: http.MethodPut, Status: status, RetryAfter: "1", Times: 3}
		switch h.col.Kind {
		case "s3":
			rule.ContentType, rule.Body = "application/xml", `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
		case "swift":
			rule.Body = "Slow down"
		case "gs":
			rule.Method = http.MethodPost // uploads
			rule.ContentType, rule.Body = "application/json", `{"error":{"code":429,"message":"rate limit","errors":[{"reason":"rateLimitExceeded"}]}}`
		case "azblob":
			rule.ContentType, rule.Body = "application/xml", `<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The server is busy.</Message></Error>`
		default:
			return "n/a: not an HTTP store"
		}
		direct := h.open(h.col.URL, h.col.Env)
		_, _, upstream, err := route(h.col, "127.0.0.1:1")
		require.NoError(t, err)
		p, err := httpfault.New("http://"+upstream, rule)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		rawURL, env, _, err := route(h.col, strings.TrimPrefix(p.URL, "http://"))
		require.NoError(t, err)
		r := h.backup(h.open(rawURL, env))
		require.Equal(t, 3, p.Faults(), "the burst reached the client")
		return h.judge(direct, r)
	}
}

// rowKill kills the server after the first data object is stored, and
// restarts it when an operation first fails for good.
func rowKill(h *harness) string {
	t := h.t
	v := victimFor(t, h.col)
	t.Logf("%s: killing %s", h.col, v.What)
	// The restart happens inside the backup (when its first operation
	// fails for good), and ceph.sh start waits for a healthy cluster.
	h.deadline = 4 * time.Minute
	rawURL := withTimeouts(h.col.Kind, v.URL)
	tg := h.open(rawURL, v.Env)
	var killed, restarted atomic.Bool
	restart := func() {
		if killed.Load() && restarted.CompareAndSwap(false, true) {
			isolate(t, v.Restart)
		}
	}
	t.Cleanup(restart)
	r := h.backup(&hooked{Target: tg,
		afterPut: func(string) {
			if killed.CompareAndSwap(false, true) {
				isolate(t, v.Kill)
			}
		},
		onFail: func(error) { restart() },
	})
	restart()
	require.True(t, killed.Load(), "the server was never killed")
	return h.judge(h.open(rawURL, v.Env), r)
}

// rowDamage damages one stored object of a complete backup through the
// target API: restore must fail with ErrCorrupt naming the object, and
// verify must report it.
func rowDamage(how string) func(h *harness) string {
	return func(h *harness) string {
		t := h.t
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		tg := h.open(h.col.URL, h.col.Env)
		r := h.backup(tg)
		require.NoError(t, r.err)
		e := h.engine(tg)
		info, err := e.Find(ctx, r.id, h.vol)
		require.NoError(t, err)
		objects := info.Metadata.Objects
		require.Len(t, objects, 3)
		// The middle object is the zlib-compressed one.
		obj := objects[map[string]int{"truncated": 0, "bit-flipped": 1, "deleted": 2}[how]]
		name := storedName(t, ctx, tg, obj.Name)
		rc, err := tg.Get(ctx, name, 0, -1)
		require.NoError(t, err)
		orig, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err)
		put := func(b []byte) {
			require.NoError(t, tg.Put(ctx, name, bytes.NewReader(b), int64(len(b)), target.PutOptions{}))
		}
		switch how {
		case "truncated":
			put(orig[:len(orig)/2])
		case "bit-flipped":
			b := bytes.Clone(orig)
			b[len(b)/2] ^= 0x10
			put(b)
		case "deleted":
			require.NoError(t, tg.Delete(ctx, name))
		}

		f, err := os.Create(filepath.Join(t.TempDir(), "restored"))
		require.NoError(t, err)
		defer f.Close()
		_, err = e.Restore(ctx, r.id, f, backup.RestoreOptions{})
		require.ErrorIs(t, err, backup.ErrCorrupt, "restore of a damaged backup")
		require.Contains(t, err.Error(), obj.Name, "the error names the damaged object")
		t.Logf("%s: restore: %v", h.col, err)

		rep, err := e.Verify(ctx, r.id, backup.VerifyOptions{})
		require.NoError(t, err)
		require.False(t, rep.OK(), "verify must find the damage")
		named := false
		for _, f := range rep.Faults {
			named = named || strings.Contains(f.String(), obj.Name)
		}
		require.True(t, named, "verify names the object: %v", rep.Faults)
		_, err = e.Delete(ctx, r.id, backup.DeleteOptions{})
		require.NoError(t, err)
		return "restore fails: corrupt, names the object; verify reports it"
	}
}

// storedName finds the target name of a backup's object (under the
// backup's directory in the posix layout).
func storedName(t require.TestingT, ctx context.Context, tg target.Target, obj string) string {
	var found []string
	require.NoError(t, tg.List(ctx, "", func(i target.Info) error {
		if i.Name == obj || strings.HasSuffix(i.Name, "/"+obj) {
			found = append(found, i.Name)
		}
		return nil
	}))
	require.Len(t, found, 1, "object %s on the target", obj)
	return found[0]
}

func rowResume(*harness) string {
	return "resumes and completes: TestResumeAfterSIGKILL"
}
