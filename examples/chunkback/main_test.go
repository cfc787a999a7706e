package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/cindertest"
)

// cli runs one command in-process and returns its exit code and output.
func cli(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if stdin != nil {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		go func() { w.Write(stdin); w.Close() }()
		old := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = old; r.Close() }()
	}
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func jsonOut(t *testing.T, s string) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &doc), s)
	return doc
}

func volume(t *testing.T, n int) (string, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, n)
	for i := 0; i < n/2; i++ {
		data[i] = byte(r.Uint32())
	}
	copy(data[n/2:], bytes.Repeat([]byte("text that compresses "), n/40))
	path := filepath.Join(t.TempDir(), "volume.img")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path, data
}

func TestBackupIncrementalRestoreVerifyDelete(t *testing.T) {
	store := t.TempDir()
	src, data := volume(t, 3<<20)
	code, out, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--object-size", "1048576", "--json", src)
	require.Equal(t, 0, code, errOut)
	full := jsonOut(t, out)
	require.Equal(t, true, full["full"])
	require.EqualValues(t, len(data), full["bytes_read"])

	// Change a block and back up incrementally; flags may follow the source.
	data[100] ^= 0xff
	require.NoError(t, os.WriteFile(src, data, 0o600))
	code, out, errOut = cli(t, nil, "backup", src, "--target", "file://"+store, "--volume-id", "vol", "--incremental", "--object-size", "1048576", "--json")
	require.Equal(t, 0, code, errOut)
	inc := jsonOut(t, out)
	require.Equal(t, false, inc["full"])
	require.Equal(t, full["backup_id"], inc["parent_id"])
	require.EqualValues(t, 1, inc["objects"])

	dest := filepath.Join(t.TempDir(), "restored.img")
	code, out, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", inc["backup_id"].(string), dest)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "every block verified")
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "restored bytes differ")

	code, out, _ = cli(t, nil, "list", "--target", store, "--json")
	require.Equal(t, 0, code)
	require.Len(t, jsonOut(t, out)["backups"], 2)
	code, out, _ = cli(t, nil, "show", "--target", store, "--backup-id", inc["backup_id"].(string))
	require.Equal(t, 0, code)
	require.Contains(t, out, full["backup_id"].(string)+" <- "+inc["backup_id"].(string))
	code, out, _ = cli(t, nil, "verify", "--target", store, "--backup-id", inc["backup_id"].(string), "--json")
	require.Equal(t, 0, code)
	require.Equal(t, true, jsonOut(t, out)["ok"])

	code, _, errOut = cli(t, nil, "delete", "--target", store, "--backup-id", full["backup_id"].(string))
	require.Equal(t, exitHasChildren, code)
	require.Contains(t, errOut, "delete those first, or delete the whole chain")
	code, out, _ = cli(t, nil, "delete", "--target", store, "--backup-id", full["backup_id"].(string), "--chain", "--json")
	require.Equal(t, 0, code)
	require.Len(t, jsonOut(t, out)["deleted"], 2)
}

func TestStdinSource(t *testing.T) {
	store := t.TempDir()
	_, data := volume(t, 1<<20)
	code, out, errOut := cli(t, data, "backup", "--target", store, "--volume-id", "vol", "--json", "-")
	require.Equal(t, 0, code, errOut)
	id := jsonOut(t, out)["backup_id"].(string)
	dest := filepath.Join(t.TempDir(), "out.img")
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, dest)
	require.Equal(t, 0, code, errOut)
	got, _ := os.ReadFile(dest)
	require.True(t, bytes.Equal(data, got))
}

func TestExitCodesAndMessages(t *testing.T) {
	store := t.TempDir()
	src, _ := volume(t, 100000)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, exitUsage, "Usage"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"backup", "--volume-id", "v", src}, exitUsage, "--target is required"},
		{[]string{"backup", "--target", store, src}, exitUsage, "--volume-id is required"},
		{[]string{"backup", "--target", store, "--volume-id", "v"}, exitUsage, "expected 1 argument"},
		{[]string{"backup", "--target", store, "--volume-id", "v", "--object-size", "1000", src}, exitUsage, "not a multiple of block size 32768: use 32768"},
		{[]string{"backup", "--target", store, "--volume-id", "v", "--compression", "lz4", src}, exitUsage, `compression "lz4" is not supported`},
		{[]string{"backup", "--target", store, "--volume-id", "v", "--parent-id", "x", "--incremental", src}, exitUsage, "exclude each other"},
		{[]string{"backup", "--target", store, "--volume-id", "v", "--incremental", src}, exitParent, "do a full backup first"},
		{[]string{"backup", "--target", store, "--volume-id", "v", filepath.Join(store, "missing.img")}, exitFailure, "no such file"},
		{[]string{"backup", "--target", "ftp://host/dir", "--volume-id", "v", src}, exitFailure, `scheme "ftp" is not supported`},
		{[]string{"restore", "--target", store, "--backup-id", "nope", filepath.Join(store, "x")}, exitNotFound, "no backup with ID nope"},
		{[]string{"restore", "--target", store, filepath.Join(store, "x")}, exitUsage, "--backup-id is required"},
		{[]string{"list", "--target", store, "--progress", "fancy"}, exitUsage, `--progress "fancy"`},
		{[]string{"verify", "--target", store, "--backup-id", "nope"}, exitNotFound, "no backup with ID nope"},
	} {
		code, _, errOut := cli(t, nil, c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.msg, "%v", c.args)
	}
}

func TestFailedRestoreKeepsTheOldFile(t *testing.T) {
	store := t.TempDir()
	src, _ := volume(t, 1<<20)
	code, out, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--json", "--object-size", "262144", src)
	require.Equal(t, 0, code, errOut)
	id := jsonOut(t, out)["backup_id"].(string)
	// Damage one object.
	var victim string
	require.NoError(t, filepath.Walk(store, func(p string, fi os.FileInfo, err error) error {
		if strings.HasSuffix(p, "-00002") {
			victim = p
		}
		return err
	}))
	require.NotEmpty(t, victim)
	obj, err := os.ReadFile(victim)
	require.NoError(t, err)
	obj[len(obj)/2] ^= 1
	require.NoError(t, os.WriteFile(victim, obj, 0o600))

	dest := filepath.Join(t.TempDir(), "precious.img")
	require.NoError(t, os.WriteFile(dest, []byte("the user's data"), 0o600))
	code, _, errOut = cli(t, nil, "restore", "--target", store, "--backup-id", id, dest)
	require.Equal(t, exitDamaged, code, errOut)
	require.Contains(t, errOut, "-00002")
	kept, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.Equal(t, "the user's data", string(kept))
	entries, err := os.ReadDir(filepath.Dir(dest))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	code, out, _ = cli(t, nil, "verify", "--target", store, "--backup-id", id, "--json")
	require.Equal(t, exitDamaged, code)
	report := jsonOut(t, out) // one document, even on failure
	require.Equal(t, false, report["ok"])
	require.Len(t, report["faults"], 1)
}

func TestProgressJSON(t *testing.T) {
	store := t.TempDir()
	src, data := volume(t, 2<<20)
	code, _, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--progress", "json", src)
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := jsonOut(t, lines[len(lines)-1])
	require.Equal(t, true, last["done"])
	require.EqualValues(t, len(data), last["bytes_done"])
	require.EqualValues(t, 100, last["percent"])
}

// TestPosixLayoutOnDisk: a directory target gets Cinder's POSIX layout,
// ID[0:2]/ID[2:4]/ID/volume_<vol>_<ts>_backup_<id>-NNNNN, files 0660 in 0770
// directories.
func TestPosixLayoutOnDisk(t *testing.T) {
	store := t.TempDir()
	src, _ := volume(t, 100000)
	id := "5a5a5a5a-0000-4000-8000-00000000000a"
	code, _, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", "vol", "--backup-id", id, src)
	require.Equal(t, 0, code, errOut)
	dir := filepath.Join(store, id[0:2], id[2:4], id)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err, "the backup must be in %s", dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), e.Name())
	}
	require.Len(t, names, 3)
	for _, n := range names {
		require.Regexp(t, `^volume_vol_\d{14}_backup_`+id+`(-00001|_metadata|_sha256file)$`, n)
	}
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o770), fi.Mode().Perm())
}

// TestCinderRestoresWhatTheCLIWrote runs real Cinder 21.3.1 on a backup chain
// made through the CLI.
func TestCinderRestoresWhatTheCLIWrote(t *testing.T) {
	cindertest.Require(t)
	store := t.TempDir()
	src, data := volume(t, 3<<20)
	vol := "11111111-1111-4111-8111-111111111111"
	code, _, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", vol, "--object-size", "1048576", src)
	require.Equal(t, 0, code, errOut)
	data[2<<20] ^= 0xff
	require.NoError(t, os.WriteFile(src, data, 0o600))
	code, out, errOut := cli(t, nil, "backup", "--target", store, "--volume-id", vol, "--incremental", "--compression", "zstd", "--object-size", "1048576", "--json", src)
	require.Equal(t, 0, code, errOut)
	dest := filepath.Join(t.TempDir(), "cinder.img")
	require.NoError(t, cindertest.Restore(context.Background(), store, vol, jsonOut(t, out)["backup_id"].(string), dest))
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "Cinder's restore of the CLI's chain differs")
}
