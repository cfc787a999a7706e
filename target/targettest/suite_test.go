package targettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
)

// bugEnv selects the bug TestBrokenTarget plants; it is set only when
// TestSuiteCatchesBugs runs the test binary again.
const bugEnv = "TARGETTEST_BUG"

// bugs maps each planted bug to the subtests that must catch it. Together
// they cover every subtest of the suite, so none of them is a tautology.
var bugs = map[string][]string{
	"truncate":          {"RoundTrip", "ConcurrentWriters"},
	"rejectMD5":         {"ContentMD5"},
	"rewind":            {"PutReadsFromCurrentPosition"},
	"padShortBody":      {"PutShortBody"},
	"negativeSize":      {"PutNegativeSize"},
	"keepOld":           {"Overwrite"},
	"ignoreIfNotExists": {"IfNotExists", "IfNotExistsRace"},
	"racyIfNotExists":   {"IfNotExistsRace"},
	"rangeAtEnd":        {"Ranges"},
	"statSize":          {"Stat"},
	"mangleNames":       {"OddNames"},
	"noNameCheck":       {"InvalidNames"},
	"prefixEscape":      {"InvalidPrefixes"},
	"ignorePrefix":      {"ListPrefix"},
	"walkOrder":         {"ListOrder"},
	"pageLimit":         {"ListMany"},
	"ignoreFnError":     {"ListStopsOnError"},
	"staleList":         {"ListEmpty", "DeleteTwice"},
	"notFoundIsNil":     {"NotFound"},
	"dirsAreObjects":    {"DirectoriesAreNotObjects"},
	"deleteMissing":     {"DeleteTwice"},
	"keepDirs":          {"DeleteThenReuseDirectoryName"},
	"ignoreContext":     {"PutCancelledBefore", "PutCancelledDuringBody", "CancelledContext"},
	"contextAtStart":    {"PutCancelledDuringBody"},
	"partialOnError":    {"PutBodyError"},
	"inPlace":           {"ConcurrentWriters", "ConcurrentReadDuringOverwrite"},
}

// TestSuiteCatchesBugs runs the suite against targets with planted bugs, in
// a child process each, and checks that the subtests meant to catch each
// bug fail.
func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per planted bug")
	}
	if os.Getenv(bugEnv) != "" {
		t.Skip("inside a child process")
	}
	for bug, catchers := range bugs {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenTarget$", "-test.v", "-test.count=1", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), bugEnv+"="+bug)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the suite passed a target with bug %q:\n%s", bug, out)
			for _, name := range catchers {
				require.Contains(t, string(out), "--- FAIL: TestBrokenTarget/"+name+" ",
					"subtest %s did not catch bug %q:\n%s", name, bug, out)
			}
		})
	}
}

func TestBugsCoverEverySubtest(t *testing.T) {
	caught := map[string]bool{}
	for _, catchers := range bugs {
		for _, c := range catchers {
			caught[c] = true
		}
	}
	src, err := os.ReadFile("suite.go")
	require.NoError(t, err)
	n := 0
	for line := range strings.Lines(string(src)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, `{"`) || !strings.Contains(line, "s.test") {
			continue
		}
		name := strings.SplitN(line[2:], `"`, 2)[0]
		n++
		require.True(t, caught[name], "no planted bug shows that subtest %s can fail", name)
	}
	require.Greater(t, n, 20, "could not find the subtests in suite.go")
}

func TestBrokenTarget(t *testing.T) {
	bug := os.Getenv(bugEnv)
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBugs")
	}
	if _, ok := bugs[bug]; !ok {
		t.Fatalf("unknown bug %q", bug)
	}
	RunWithOptions(t, func(t *testing.T) target.Target {
		return &broken{Memory: NewMemory(), bug: bug, dirs: map[string]bool{}}
	}, Options{LargeSize: 1 << 20, ManyObjects: 100, ConcurrentSize: 256 << 10})
}

// broken is a Memory with one planted bug.
type broken struct {
	*Memory
	bug string

	mu      sync.Mutex
	dirs    map[string]bool // keepDirs: "directories" ever created
	deleted []string        // staleList: names deleted but still listed
}

func (b *broken) ctx(ctx context.Context) context.Context {
	if b.bug == "ignoreContext" {
		return context.Background()
	}
	return ctx
}

func (b *broken) mangle(name string) string {
	if b.bug == "mangleNames" {
		return strings.ReplaceAll(name, " ", "+")
	}
	return name
}

func (b *broken) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	ctx = b.ctx(ctx)
	name = b.mangle(name)
	switch b.bug {
	case "noNameCheck":
		if target.CheckName(name) != nil {
			return nil
		}
	case "truncate":
		if size > 1000 {
			size--
		}
	case "rejectMD5":
		if opts.ContentMD5 != nil {
			return errors.New("ContentMD5 not supported")
		}
	case "rewind":
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
	case "negativeSize":
		if size < 0 {
			size = 0
		}
	case "keepOld":
		if _, err := b.Memory.Stat(ctx, name); err == nil {
			return nil
		}
	case "ignoreIfNotExists":
		opts.IfNotExists = false
	case "racyIfNotExists":
		if opts.IfNotExists {
			if _, err := b.Memory.Stat(ctx, name); err == nil {
				return fmt.Errorf("racy: %w", target.ErrExists)
			}
			time.Sleep(5 * time.Millisecond)
			opts.IfNotExists = false
		}
	case "keepDirs":
		b.mu.Lock()
		isDir := b.dirs[name]
		for i, c := range name {
			if c == '/' {
				b.dirs[name[:i]] = true
			}
		}
		b.mu.Unlock()
		if isDir {
			return errors.New("is a directory")
		}
	case "padShortBody", "partialOnError", "contextAtStart", "inPlace":
		return b.putBuffered(ctx, name, body, size, opts)
	}
	return b.Memory.Put(ctx, name, body, size, opts)
}

// putBuffered reads the body first, with the bugs that need it.
func (b *broken) putBuffered(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := ctx.Err(); err != nil || size < 0 {
		return b.Memory.Put(ctx, name, body, size, opts)
	}
	data := make([]byte, size)
	n, err := io.ReadFull(body, data)
	switch {
	case b.bug == "padShortBody" && errors.Is(err, io.ErrUnexpectedEOF):
		err = nil // store the body padded with zeros
	case b.bug == "partialOnError" && err != nil:
		_ = b.Memory.Put(context.Background(), name, bytes.NewReader(data[:n]), int64(n), opts)
		return err
	case b.bug != "contextAtStart" && err == nil:
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	switch b.bug {
	case "contextAtStart":
		return b.Memory.Put(context.WithoutCancel(ctx), name, bytes.NewReader(data), size, opts)
	case "inPlace":
	default:
		return b.Memory.Put(ctx, name, bytes.NewReader(data), size, opts)
	}
	// Overwrite in place, one eighth at a time with pauses, reading back
	// what is there: what a store without atomic replacement does.
	const parts = 8
	for k := range parts {
		from, to := len(data)*k/parts, len(data)*(k+1)/parts
		cur, _ := read(ctx, b.Memory, name, 0, -1)
		next := make([]byte, len(data))
		copy(next, cur)
		copy(next[from:to], data[from:to])
		if err := b.Memory.Put(ctx, name, bytes.NewReader(next), int64(len(next)), target.PutOptions{}); err != nil {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	}
	return nil
}

func (b *broken) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	ctx = b.ctx(ctx)
	name = b.mangle(name)
	switch b.bug {
	case "rangeAtEnd":
		if info, err := b.Memory.Stat(ctx, name); err == nil && offset == info.Size && info.Size > 0 {
			return nil, target.ErrInvalidRange
		}
	case "notFoundIsNil":
		if _, err := b.Memory.Stat(ctx, name); errors.Is(err, target.ErrNotFound) {
			return io.NopCloser(strings.NewReader("")), nil
		}
	case "dirsAreObjects":
		if b.isDir(ctx, name) {
			return io.NopCloser(strings.NewReader("")), nil
		}
	}
	return b.Memory.Get(ctx, name, offset, length)
}

func (b *broken) Stat(ctx context.Context, name string) (target.Info, error) {
	ctx = b.ctx(ctx)
	name = b.mangle(name)
	info, err := b.Memory.Stat(ctx, name)
	switch b.bug {
	case "statSize":
		info.Size++
	case "notFoundIsNil":
		if errors.Is(err, target.ErrNotFound) {
			return target.Info{Name: name}, nil
		}
	case "dirsAreObjects":
		if b.isDir(ctx, name) {
			return target.Info{Name: name}, nil
		}
	}
	return info, err
}

func (b *broken) isDir(ctx context.Context, name string) bool {
	found := false
	_ = b.Memory.List(ctx, name+"/", func(target.Info) error { found = true; return nil })
	return found
}

func (b *broken) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	ctx = b.ctx(ctx)
	switch b.bug {
	case "prefixEscape":
		if strings.HasPrefix(prefix, "/") || strings.HasPrefix(prefix, "../") {
			prefix = ""
		}
	case "ignorePrefix":
		prefix = ""
	}
	var infos []target.Info
	if err := b.Memory.List(ctx, prefix, func(info target.Info) error {
		infos = append(infos, info)
		return nil
	}); err != nil {
		return err
	}
	switch b.bug {
	case "walkOrder":
		// Sorting each directory by its entries' own names, as a naive
		// filepath.WalkDir does.
		slices.SortFunc(infos, func(x, y target.Info) int {
			return strings.Compare(strings.ReplaceAll(x.Name, "/", "\x00"), strings.ReplaceAll(y.Name, "/", "\x00"))
		})
	case "pageLimit":
		infos = infos[:min(len(infos), 64)]
	case "staleList":
		b.mu.Lock()
		for _, name := range b.deleted {
			if strings.HasPrefix(name, prefix) {
				infos = append(infos, target.Info{Name: name})
			}
		}
		b.mu.Unlock()
	}
	for _, info := range infos {
		if err := fn(info); err != nil && b.bug != "ignoreFnError" {
			return err
		}
	}
	return nil
}

func (b *broken) Delete(ctx context.Context, name string) error {
	ctx = b.ctx(ctx)
	name = b.mangle(name)
	switch b.bug {
	case "deleteMissing":
		if _, err := b.Memory.Stat(ctx, name); err != nil {
			return err
		}
	case "staleList":
		b.mu.Lock()
		b.deleted = append(b.deleted, name)
		b.mu.Unlock()
	case "keepDirs":
		b.mu.Lock()
		isDir := b.dirs[name]
		b.mu.Unlock()
		if isDir {
			return nil
		}
	}
	return b.Memory.Delete(ctx, name)
}
