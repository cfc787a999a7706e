//go:build unix

package posix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

func newTarget(t testing.TB, opts Options) (*Target, string) {
	t.Helper()
	root := t.TempDir()
	tg, err := New(root, opts)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg, root
}

func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) target.Target {
		tg, _ := newTarget(t, Options{})
		return tg
	})
}

func TestConformanceNoSync(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran with fsync")
	}
	targettest.Run(t, func(t *testing.T) target.Target {
		tg, _ := newTarget(t, Options{NoSync: true})
		return tg
	})
}

// TestConformanceLinkFallback runs the suite with IfNotExists done by
// link(2), as on file systems without renameat2 RENAME_NOREPLACE.
func TestConformanceLinkFallback(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran with renameat2")
	}
	noRenameat2(t)
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		tg, _ := newTarget(t, Options{NoSync: true})
		return tg
	}, targettest.Options{LargeSize: 1 << 20, ManyObjects: 100})
}

func noRenameat2(t *testing.T) {
	saved := renameat2
	renameat2 = func(*os.File, string, string) error { return errNoReplaceUnsupported }
	t.Cleanup(func() { renameat2 = saved })
}

func put(t *testing.T, tg target.Target, name, data string) {
	t.Helper()
	require.NoError(t, tg.Put(t.Context(), name, strings.NewReader(data), int64(len(data)), target.PutOptions{}), "Put %q", name)
}

func get(t *testing.T, tg target.Target, name string) string {
	t.Helper()
	rc, err := tg.Get(t.Context(), name, 0, -1)
	require.NoError(t, err, "Get %q", name)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(data)
}

func listNames(t *testing.T, tg target.Target, prefix string) []string {
	t.Helper()
	var names []string
	require.NoError(t, tg.List(t.Context(), prefix, func(info target.Info) error {
		names = append(names, info.Name)
		return nil
	}))
	return names
}

// tree returns every path below root with its type and permission bits.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = fmt.Sprintf("%v", fi.Mode())
		return nil
	}))
	return out
}

func TestModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })

	tg, root := newTarget(t, Options{})
	put(t, tg, "5a/5a/5a5a/volume_x-00001", "data")
	put(t, tg, "top", "data")
	require.Equal(t, map[string]string{
		"5a":                        "drwxrwx---",
		"5a/5a":                     "drwxrwx---",
		"5a/5a/5a5a":                "drwxrwx---",
		"5a/5a/5a5a/volume_x-00001": "-rw-rw----",
		"top":                       "-rw-rw----",
	}, tree(t, root))

	tg2, root2 := newTarget(t, Options{FileMode: 0o640, DirMode: 0o750})
	require.NoError(t, tg2.Put(t.Context(), "d/f", strings.NewReader("x"), 1, target.PutOptions{IfNotExists: true}))
	require.Equal(t, map[string]string{"d": "drwxr-x---", "d/f": "-rw-r-----"}, tree(t, root2))
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, Options{}.Validate())
	require.NoError(t, Options{FileMode: 0o600, DirMode: 0o700}.Validate())
	for _, o := range []Options{
		{FileMode: 0o400},
		{FileMode: 0o200},
		{DirMode: 0o600},
		{FileMode: fs.ModeSetuid | 0o660},
		{DirMode: fs.ModeDir | 0o770},
	} {
		err := o.Validate()
		require.ErrorIs(t, err, target.ErrInvalidArgument, "%+v", o)
		_, err = New(t.TempDir(), o)
		require.ErrorIs(t, err, target.ErrInvalidArgument, "New with %+v", o)
	}
}

func TestMissingRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "no", "such", "dir")
	_, err := New(root, Options{})
	require.ErrorIs(t, err, target.ErrNotFound)
	for _, want := range []string{root, "does not exist", "mkdir -p " + root, "CreateRoot"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = os.Stat(root)
	require.ErrorIs(t, err, fs.ErrNotExist, "New created the root without CreateRoot")

	tg, err := New(root, Options{CreateRoot: true})
	require.NoError(t, err)
	defer tg.Close()
	put(t, tg, "x", "x")
	require.FileExists(t, filepath.Join(root, "x"))

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = New(file, Options{CreateRoot: true})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.Contains(t, err.Error(), "not a directory")
	_, err = New("", Options{})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
}

func TestRelativeRoot(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tg, err := New("rel", Options{CreateRoot: true})
	require.NoError(t, err)
	defer tg.Close()
	require.Equal(t, "posix:"+filepath.Join(dir, "rel"), tg.String())
}

// noTemp fails if a temporary file is left anywhere below root.
func noTemp(t *testing.T, root string) {
	t.Helper()
	for p := range tree(t, root) {
		require.NotContains(t, p, target.ReservedPrefix, "temporary file left behind")
	}
}

type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func (r *errReader) Seek(int64, int) (int64, error) { return 0, nil }

func TestFailuresLeaveNothing(t *testing.T) {
	tg, root := newTarget(t, Options{})
	ctx := t.Context()
	put(t, tg, "keep/old", "old")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	cases := map[string]func(name string) error{
		"short body": func(name string) error {
			return tg.Put(ctx, name, strings.NewReader("abc"), 10, target.PutOptions{})
		},
		"body error": func(name string) error {
			return tg.Put(ctx, name, &errReader{n: 3 << 20}, 5<<20, target.PutOptions{})
		},
		"cancelled": func(name string) error {
			return tg.Put(cancelled, name, strings.NewReader("abc"), 3, target.PutOptions{})
		},
		"exists": func(name string) error {
			return tg.Put(ctx, "keep/old", strings.NewReader("new"), 3, target.PutOptions{IfNotExists: true})
		},
	}
	for what, fn := range cases {
		err := fn("new/dirs/" + strings.ReplaceAll(what, " ", "-"))
		require.Error(t, err, what)
		noTemp(t, root)
		require.Equal(t, map[string]string{"keep": "drwxrwx---", "keep/old": "-rw-rw----"}, tree(t, root),
			"%s: only the old object may remain, without the directories made for the new one", what)
	}
	require.Equal(t, "old", get(t, tg, "keep/old"))

	err := tg.Put(ctx, "short", strings.NewReader("abc"), 10, target.PutOptions{})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorIs(t, err, target.ErrInvalidArgument)
	require.Contains(t, err.Error(), "body ended after 3 of 10 bytes")
}

func TestEscapingNamesRejected(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	require.NoError(t, os.Mkdir(root, 0o700))
	tg, err := New(root, Options{})
	require.NoError(t, err)
	defer tg.Close()
	for _, name := range []string{"../escape", "/etc/passwd", "a/../../escape", "..", "a\x00b"} {
		err := tg.Put(t.Context(), name, strings.NewReader("x"), 1, target.PutOptions{})
		require.ErrorIs(t, err, target.ErrInvalidArgument, name)
		_, err = tg.Stat(t.Context(), name)
		require.ErrorIs(t, err, target.ErrInvalidArgument, name)
	}
	require.Equal(t, map[string]string{"root": "drwx------"}, tree(t, parent))
}

func TestSymlinksOutOfRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	outside := filepath.Join(parent, "outside")
	require.NoError(t, os.Mkdir(root, 0o700))
	require.NoError(t, os.Mkdir(outside, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "dirlink")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "filelink")))
	require.NoError(t, os.Symlink("../outside", filepath.Join(root, "rellink")))
	tg, err := New(root, Options{})
	require.NoError(t, err)
	defer tg.Close()
	ctx := t.Context()

	for _, name := range []string{"dirlink/secret", "filelink", "rellink/secret"} {
		_, err := tg.Get(ctx, name, 0, -1)
		require.ErrorIs(t, err, target.ErrPermission, "Get %q followed a link out of the root", name)
		require.Contains(t, err.Error(), "symbolic link out of the root")
		_, err = tg.Stat(ctx, name)
		require.Error(t, err, "Stat %q", name)
	}
	for _, name := range []string{"dirlink/new", "rellink/new"} {
		err := tg.Put(ctx, name, strings.NewReader("x"), 1, target.PutOptions{})
		require.ErrorIs(t, err, target.ErrPermission, "Put %q", name)
	}
	require.Empty(t, listNames(t, tg, ""), "List followed links")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, entries, 1, "something was written outside the root")
	// Deleting the link name removes the link, never its target.
	require.NoError(t, tg.Delete(ctx, "filelink"))
	require.FileExists(t, filepath.Join(outside, "secret"))
}

func TestListSkipsNonObjects(t *testing.T) {
	tg, root := newTarget(t, Options{})
	for _, name := range []string{"a-c", "a.b", "a/b", "a0", "a/a-x", "a/a/x"} {
		put(t, tg, name, name)
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", target.ReservedPrefix+"0123"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "bad\nname"), nil, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(root, "emptydir"), 0o700))
	require.NoError(t, os.Symlink("a0", filepath.Join(root, "link")))
	require.NoError(t, exec.Command("mkfifo", filepath.Join(root, "fifo")).Run())
	require.Equal(t, []string{"a-c", "a.b", "a/a-x", "a/a/x", "a/b", "a0"}, listNames(t, tg, ""))
	require.Equal(t, []string{"a/a-x", "a/a/x"}, listNames(t, tg, "a/a"))
	_, err := tg.Stat(t.Context(), "emptydir")
	require.ErrorIs(t, err, target.ErrNotFound)
	_, err = tg.Get(t.Context(), "fifo", 0, -1)
	require.ErrorIs(t, err, target.ErrNotFound)
	_, err = tg.Stat(t.Context(), "a/"+target.ReservedPrefix+"0123")
	require.ErrorIs(t, err, target.ErrInvalidArgument)
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	tg, root := newTarget(t, Options{})
	ctx := t.Context()
	put(t, tg, "a/b/c", "c")
	put(t, tg, "a/d", "d")
	require.NoError(t, os.Mkdir(filepath.Join(root, "foreign"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(root, "foreign", "file"), nil, 0o600))
	put(t, tg, "foreign/obj", "o")

	require.NoError(t, tg.Delete(ctx, "a/b/c"))
	require.NoDirExists(t, filepath.Join(root, "a", "b"))
	require.DirExists(t, filepath.Join(root, "a"), "a still holds a/d")
	require.NoError(t, tg.Delete(ctx, "a/d"))
	require.NoDirExists(t, filepath.Join(root, "a"))
	require.NoError(t, tg.Delete(ctx, "foreign/obj"))
	require.FileExists(t, filepath.Join(root, "foreign", "file"), "a directory with other files stays")
	require.DirExists(t, root)

	// An empty directory is not an object: Delete leaves it alone.
	require.NoError(t, os.Mkdir(filepath.Join(root, "empty"), 0o700))
	require.NoError(t, tg.Delete(ctx, "empty"))
	require.DirExists(t, filepath.Join(root, "empty"))
}

func TestConcurrentPutDeleteSameDirectory(t *testing.T) {
	tg, root := newTarget(t, Options{NoSync: true})
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("x/y/z/%d-%d", g, i)
				if err := tg.Put(ctx, name, strings.NewReader("data"), 4, target.PutOptions{IfNotExists: i%2 == 0}); err != nil {
					errs[g] = err
					return
				}
				if err := tg.Delete(ctx, name); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, tree(t, root))
}

func TestNameAndDirectoryConflicts(t *testing.T) {
	tg, root := newTarget(t, Options{})
	ctx := t.Context()
	put(t, tg, "a/b", "b")
	for _, excl := range []bool{false, true} {
		err := tg.Put(ctx, "a", strings.NewReader("a"), 1, target.PutOptions{IfNotExists: excl})
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Put over a directory, IfNotExists %v", excl)
		require.Contains(t, err.Error(), "a directory of that name exists")
		err = tg.Put(ctx, "a/b/c", strings.NewReader("c"), 1, target.PutOptions{IfNotExists: excl})
		require.ErrorIs(t, err, target.ErrInvalidArgument, "Put below a file, IfNotExists %v", excl)
		require.Contains(t, err.Error(), "is a file")
	}
	noTemp(t, root)
	require.Equal(t, []string{"a/b"}, listNames(t, tg, ""))
	_, err := tg.Stat(ctx, "a/b/c")
	require.ErrorIs(t, err, target.ErrNotFound)
}

func TestReaderHonoursContext(t *testing.T) {
	tg, _ := newTarget(t, Options{})
	put(t, tg, "x", strings.Repeat("x", 1000))
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := tg.Get(ctx, "x", 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.ReadFull(rc, make([]byte, 10))
	require.NoError(t, err)
	cancel()
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, context.Canceled)
}

func TestGetSeesOneVersion(t *testing.T) {
	// An open reader keeps the file it opened, whatever replaces it.
	tg, _ := newTarget(t, Options{NoSync: true})
	put(t, tg, "x", "version one")
	rc, err := tg.Get(t.Context(), "x", 8, -1)
	require.NoError(t, err)
	defer rc.Close()
	put(t, tg, "x", "2")
	require.NoError(t, tg.Delete(t.Context(), "x"))
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, "one", string(data))
}

func TestCinderLayout(t *testing.T) {
	tg, _ := newTarget(t, Options{})
	var inner target.Target = targettest.NewFaulty(tg, targettest.FaultOptions{})
	l, ok := target.As[target.LayoutTarget](inner)
	require.True(t, ok)
	require.Equal(t, target.LayoutPosix, l.CinderLayout())
}

// makeUnwritable makes the directory root refuse new files, even to root,
// or skips the test where it cannot (covered names what else tests it).
func makeUnwritable(t *testing.T, root, covered string) {
	t.Helper()
	require.NoError(t, os.Chmod(root, 0o500))
	t.Cleanup(func() { os.Chmod(root, 0o700) })
	if f, err := os.Create(filepath.Join(root, "probe")); err == nil {
		// Root (CAP_DAC_OVERRIDE) ignores modes; the immutable attribute
		// refuses writes even to root, where the file system has it.
		f.Close()
		require.NoError(t, os.Remove(filepath.Join(root, "probe")))
		if out, err := exec.Command("chattr", "+i", root).CombinedOutput(); err != nil {
			t.Skipf("running privileged, and chattr +i is not available (%v: %s)%s", err, out, covered)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", root).Run() })
	}
}

func TestPermissionDenied(t *testing.T) {
	tg, root := newTarget(t, Options{})
	put(t, tg, "existing", "x")
	makeUnwritable(t, root, ": permission mapping is covered by TestClassify")
	err := tg.Put(t.Context(), "new", strings.NewReader("x"), 1, target.PutOptions{})
	require.ErrorIs(t, err, target.ErrPermission)
	require.True(t, target.IsPermanent(err))
	require.Contains(t, err.Error(), root)
	require.Contains(t, err.Error(), "needs read, write and search")
	err = tg.Delete(t.Context(), "existing")
	require.ErrorIs(t, err, target.ErrPermission)
	require.Equal(t, "x", get(t, tg, "existing"), "reading still works")
	require.Equal(t, []string{"existing"}, listNames(t, tg, ""))
}

func TestClassify(t *testing.T) {
	pe := func(errno syscall.Errno) error { return &fs.PathError{Op: "open", Path: "/r/x", Err: errno} }
	cases := []struct {
		errno    syscall.Errno
		sentinel error
		text     string
	}{
		{syscall.ENOENT, target.ErrNotFound, ""},
		{syscall.EACCES, target.ErrPermission, "permission denied on /r/x"},
		{syscall.EPERM, target.ErrPermission, "needs read, write and search"},
		{syscall.EROFS, target.ErrPermission, "read-only"},
		{syscall.ENOSPC, target.ErrPermanent, "no space left"},
		{syscall.EDQUOT, target.ErrPermanent, "quota"},
		{syscall.ENAMETOOLONG, target.ErrInvalidArgument, "too long"},
		{syscall.EISDIR, target.ErrInvalidArgument, "directory of that name"},
		{syscall.ENOTDIR, target.ErrInvalidArgument, "is a file"},
		{syscall.EEXIST, target.ErrExists, ""},
	}
	for _, c := range cases {
		err := classify(`put "x"`, "/r", "/r/x", pe(c.errno))
		assert.ErrorIs(t, err, c.sentinel, c.errno.Error())
		assert.ErrorIs(t, err, c.errno, "the errno stays reachable")
		assert.Contains(t, err.Error(), c.text, c.errno.Error())
		assert.True(t, target.IsPermanent(err), c.errno.Error())
	}
	err := classify(`get "x"`, "/r", "/r/x", pe(syscall.EIO))
	assert.False(t, target.IsPermanent(err), "EIO may be transient (NFS)")
	assert.Contains(t, err.Error(), "/r/x")
}

func TestIfNotExistsLinkFallback(t *testing.T) {
	noRenameat2(t)
	tg, root := newTarget(t, Options{})
	ctx := t.Context()
	require.NoError(t, tg.Put(ctx, "d/x", strings.NewReader("one"), 3, target.PutOptions{IfNotExists: true}))
	err := tg.Put(ctx, "d/x", strings.NewReader("two"), 3, target.PutOptions{IfNotExists: true})
	require.ErrorIs(t, err, target.ErrExists)
	require.Equal(t, "one", get(t, tg, "d/x"))
	noTemp(t, root)
	fi, err := os.Stat(filepath.Join(root, "d", "x"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), fi.Sys().(*syscall.Stat_t).Nlink, "the temporary link was not removed")
}

func TestListLargeDirectoryStreams(t *testing.T) {
	// fn runs while the listing is under way: it can stop it early and
	// sees objects in order even when the walk spans directories.
	tg, _ := newTarget(t, Options{NoSync: true})
	for i := range 50 {
		put(t, tg, fmt.Sprintf("d%d/o%02d", i%5, i), "")
	}
	var got []string
	stop := errors.New("stop")
	err := tg.List(t.Context(), "d", func(info target.Info) error {
		got = append(got, info.Name)
		if len(got) == 12 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, []string{"d0/o00", "d0/o05", "d0/o10", "d0/o15", "d0/o20", "d0/o25", "d0/o30", "d0/o35", "d0/o40", "d0/o45", "d1/o01", "d1/o06"}, got)
}

var benchSizes = []int{4 << 20, 50 << 20}

func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		data := bytes.Repeat([]byte("chunkback"), size/9+1)[:size]
		for _, noSync := range []bool{false, true} {
			b.Run(fmt.Sprintf("%dMiB/nosync=%v", size>>20, noSync), func(b *testing.B) {
				tg, _ := newTarget(b, Options{NoSync: noSync})
				ctx := context.Background()
				b.SetBytes(int64(size))
				for b.Loop() {
					if err := tg.Put(ctx, "5a/5a/id/object", bytes.NewReader(data), int64(size), target.PutOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			tg, _ := newTarget(b, Options{NoSync: true})
			ctx := context.Background()
			data := bytes.Repeat([]byte("chunkback"), size/9+1)[:size]
			if err := tg.Put(ctx, "object", bytes.NewReader(data), int64(size), target.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			buf := bytes.NewBuffer(make([]byte, 0, size))
			b.SetBytes(int64(size))
			for b.Loop() {
				rc, err := tg.Get(ctx, "object", 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if _, err := buf.ReadFrom(rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}

func TestRenameat2NoReplace(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b"), []byte("b"), 0o600))
	d, err := os.Open(dir)
	require.NoError(t, err)
	defer d.Close()
	err = renameat2NoReplace(d, "a", "b")
	if errors.Is(err, errNoReplaceUnsupported) {
		t.Skip("this file system or OS has no RENAME_NOREPLACE; TestIfNotExistsLinkFallback covers link(2)")
	}
	require.ErrorIs(t, err, fs.ErrExist)
	require.NoError(t, renameat2NoReplace(d, "a", "c"))
	data, err := os.ReadFile(filepath.Join(dir, "c"))
	require.NoError(t, err)
	require.Equal(t, "a", string(data))
}
