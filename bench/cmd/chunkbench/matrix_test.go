package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chunkback/chunkback/bench"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	bench.ChildMain() // the matrix re-executes this test binary
	os.Exit(m.Run())
}

func TestRedactArgs(t *testing.T) {
	require.Equal(t,
		[]string{"--size", "64MiB", "--target", "<file>,<s3:bkt>", "--target=<swift:c>", "--json", "x.json"},
		redactArgs([]string{"--size", "64MiB", "--target", "/tmp/x,s3://bkt/p?endpoint=http://k:s@h", "--target=swift://c/p", "--json", "x.json"}))
}

// TestRunMatrix runs the matrix subcommand on put and get, with every
// output, and the README update.
func TestRunMatrix(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("# r\n\n"+bench.ReadmeBegin+"\n"+bench.ReadmeEnd+"\n"), 0o644))
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"matrix", "--target", filepath.Join(dir, "store"), "--size", "1MiB", "--object-size", "256KiB",
		"--workers", "1,2", "--ops", "put,get", "--repeat", "1", "--zeros", "0.25", "--dir", dir,
		"--json", filepath.Join(dir, "r.json"), "--csv", "-", "--svg", filepath.Join(dir, "img", "m.svg"), "--update-readme", readme}, &stdout, &stderr)
	require.ErrorContains(t, err, "m.svg", "the SVG's directory does not exist")
	require.NoFileExists(t, filepath.Join(dir, "r.json"), "checked before running")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "img"), 0o755))
	stdout.Reset()
	err = run(context.Background(), []string{"matrix", "--target", filepath.Join(dir, "store"), "--size", "1MiB", "--object-size", "256KiB",
		"--workers", "1,2", "--ops", "put,get", "--repeat", "1", "--zeros", "0.25", "--dir", dir,
		"--json", filepath.Join(dir, "r.json"), "--csv", "-", "--svg", filepath.Join(dir, "img", "m.svg"), "--update-readme", readme}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	rows, err := csv.NewReader(&stdout).ReadAll()
	require.NoError(t, err, "--csv - alone on standard output")
	require.Len(t, rows, 5)
	f, err := os.Open(filepath.Join(dir, "r.json"))
	require.NoError(t, err)
	defer f.Close()
	rep, err := bench.ReadMatrixJSON(f)
	require.NoError(t, err)
	require.Len(t, rep.Results, 4)
	got, err := os.ReadFile(readme)
	require.NoError(t, err)
	require.Contains(t, string(got), "](img/m.svg)")
	require.Contains(t, string(got), "--target <file>")
	require.Contains(t, string(got), "25% zeros")
	require.NotContains(t, string(got), dir+"/store")

	for _, bad := range [][]string{
		{"matrix", "--ops", "fly"},
		{"matrix", "--peers", "borg"},
		{"matrix", "--workers", "two"},
		{"matrix", "--object-size", "1x"},
		{"matrix", "--compressible", "0.8", "--zeros", "0.5"},
		{"matrix", "--json", "-", "--csv", "-"},
	} {
		err := run(context.Background(), bad, &stdout, &stderr)
		require.Error(t, err, strings.Join(bad, " "))
	}
}

// TestRunMatrixProfile runs the matrix subcommand with --profile: the
// table, the JSON and the README get where the time goes.
func TestRunMatrixProfile(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"matrix", "--profile-dir", dir}, &stdout, &stderr)
	require.ErrorContains(t, err, "--profile-dir needs --profile")
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte(bench.ReadmeBegin+"\n"+bench.ReadmeEnd+"\n"), 0o644))
	err = run(context.Background(), []string{"matrix", "--target", filepath.Join(dir, "store"), "--size", "4MiB", "--object-size", "1MiB",
		"--workers", "2", "--ops", "backup-full", "--repeat", "1", "--dir", dir, "--profile",
		"--json", filepath.Join(dir, "r.json"), "--update-readme", readme}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	require.Contains(t, stdout.String(), "where the time goes")
	f, err := os.Open(filepath.Join(dir, "r.json"))
	require.NoError(t, err)
	defer f.Close()
	rep, err := bench.ReadMatrixJSON(f)
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	require.Len(t, rep.Results[0].Profile, len(bench.ProfileStages()))
	got, err := os.ReadFile(readme)
	require.NoError(t, err)
	require.Contains(t, string(got), "**Where the time goes**")
	require.Contains(t, string(got), "--profile")
}
