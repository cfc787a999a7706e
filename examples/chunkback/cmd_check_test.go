package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/internal/targeturl"
)

// probeSteps are the steps of a passing check of a target opened by the
// command, in order.
var probeSteps = []string{"open", "check", "put", "stat", "get", "get-range", "list", "delete", "stat-deleted"}

// requireCheckPasses runs chunkback check against targetURL as a table, as
// JSON and repeated, and requires every round and step to pass.
func requireCheckPasses(t *testing.T, targetURL string) {
	t.Helper()
	code, out, errOut := cli(t, nil, "check", "--target", targetURL)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, ": OK (")
	for _, step := range probeSteps {
		require.Regexp(t, "(?m)^"+step+` +ok +[0-9.]+ m?s`, out)
	}
	require.NotContains(t, out, "FAIL")

	code, out, errOut = cli(t, nil, "check", "--target", targetURL, "--json", "--large-size", "3000000")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	doc := jsonOut(t, out)
	require.Equal(t, true, doc["ok"], out)
	var names []string
	for _, s := range doc["steps"].([]any) {
		step := s.(map[string]any)
		names = append(names, step["name"].(string))
		require.Equal(t, true, step["ok"], "%v", step)
		require.Contains(t, step, "latency_ms")
	}
	require.Equal(t, []string{"open", "check", "put", "stat", "get", "get-range", "list", "put-large", "get-large", "delete", "stat-deleted"}, names)
	require.Equal(t, float64(1), doc["round"])

	code, out, errOut = cli(t, nil, "check", "--target", targetURL, "--every", "100ms", "--count", "2")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	for i, line := range lines {
		require.Regexp(t, `^\S+ round=`+string(rune('1'+i))+` ok .*put=[0-9.]+m?s .*stat-deleted=`, line)
	}
	require.Contains(t, lines[0], " open=", "the first round opens the target")
	require.NotContains(t, lines[1], " open=", "later rounds reuse it")
}

func TestCheckCLIPosix(t *testing.T) {
	dir := t.TempDir()
	requireCheckPasses(t, "file://"+dir)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the probe leaves nothing behind")
}

// TestCheckCLIServers runs the check against every --target URL every real
// server serves, with the environment its start script gives the CLI.
func TestCheckCLIServers(t *testing.T) {
	forEachServerURL(t, func(t *testing.T, targetURL string) {
		// The check creates nothing: make sure the container exists.
		tg, err := targeturl.Open(t.Context(), targetURL, targeturl.Options{Create: true})
		require.NoError(t, err)
		require.NoError(t, tg.Close())
		requireCheckPasses(t, targetURL)
	})
}

// TestCheckCLIWrongCredentials: a wrong secret in the CLI's environment
// fails the check at "open" with a permission error, exit code 1, and the
// secret in no output.
func TestCheckCLIWrongCredentials(t *testing.T) {
	cases := []struct {
		server, kind, secretVar string
	}{
		{"minio", "s3", "AWS_SECRET_ACCESS_KEY"},
		{"swift", "swift", "OS_PASSWORD"},
		{"azurite", "azblob", "AZURE_STORAGE_CONNECTION_STRING"},
	}
	for _, c := range cases {
		t.Run(c.server, func(t *testing.T) {
			env := servertest.Require(t, c.server)
			env.SetCLIEnv(t)
			good := env.CLIEnv()[c.secretVar]
			require.NotEmpty(t, good)
			wrong := "Wr0ngSecretValue-4f1c9a7e2b8d"
			if c.secretVar == "AZURE_STORAGE_CONNECTION_STRING" {
				key := between(good, "AccountKey=", ";")
				require.NotEmpty(t, key)
				wrong = strings.Replace(good, key, "V3JvbmdTZWNyZXRWYWx1ZS00ZjFjOWE3ZTJiOGRXcm9uZ1NlY3JldFZhbHVlLTRmMWM5YTdlMmI4ZA==", 1)
				good = key
			}
			t.Setenv(c.secretVar, wrong)
			url := env.URLs()[c.kind]

			code, out, errOut := cli(t, nil, "check", "--target", url)
			require.Equal(t, exitFailure, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Contains(t, out, ": FAILED (")
			require.Regexp(t, `(?m)^open +FAIL +[0-9.]+ m?s +permission$`, out)
			require.Contains(t, out, "problem: open: the store refused the credentials")
			for _, secret := range []string{good, wrong, between(wrong, "AccountKey=", ";")} {
				if secret == "" {
					continue
				}
				require.NotContains(t, out, secret)
				require.NotContains(t, errOut, secret)
			}

			code, out, _ = cli(t, nil, "check", "--target", url, "--json", "--every", "10ms", "--count", "2")
			require.Equal(t, exitFailure, code)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 2, "each round tries to open the target again")
			for _, line := range lines {
				doc := jsonOut(t, line)
				require.Equal(t, false, doc["ok"])
				open := doc["steps"].([]any)[0].(map[string]any)
				require.Equal(t, "open", open["name"])
				require.Equal(t, "permission", open["error_kind"])
				require.NotContains(t, line, good)
				require.NotContains(t, line, wrong)
			}
		})
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// TestCheckCLIReadOnly: Ceph's client.readonly user may read the pool but
// not write it: the check says so, and fails.
func TestCheckCLIReadOnly(t *testing.T) {
	env := servertest.Require(t, "ceph")
	url := "rados://" + env.Get(t, "POOL") + "/ci?conf=" + env.Get(t, "CONF") + "&id=readonly&keyring=" +
		filepath.Join(filepath.Dir(env.Get(t, "KEYRING")), "client.readonly.keyring")
	code, out, errOut := cli(t, nil, "check", "--target", url)
	require.Equal(t, exitFailure, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Regexp(t, `(?m)^check +ok `, out)
	require.Regexp(t, `(?m)^list +ok `, out)
	require.Regexp(t, `(?m)^put +FAIL +[0-9.]+ m?s +permission$`, out)
	require.Contains(t, out, "client.readonly")
	require.Contains(t, out, "read-only credentials")
}

// TestCheckCLIRecovers: a check that fails and then passes (the directory
// appears) exits 0, because the last round passed.
func TestCheckCLIRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = os.Mkdir(dir, 0o700)
	}()
	code, out, errOut := cli(t, nil, "check", "--target", dir, "--every", "500ms", "--count", "2")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Contains(t, lines[0], " FAIL open=FAIL(not_found)")
	require.Contains(t, lines[0], "does not exist")
	require.Contains(t, lines[1], " ok open=")
}

// TestCheckCLIInterrupted: --every without --count runs until interrupted;
// the exit code is that of the last round.
func TestCheckCLIInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"check", "--target", t.TempDir(), "--every", "200ms", "--json"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.GreaterOrEqual(t, len(lines), 2, stdout.String())
	for _, line := range lines {
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &doc), line)
		require.Equal(t, true, doc["ok"])
	}

	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	stdout.Reset()
	code = run(ctx, []string{"check", "--target", filepath.Join(t.TempDir(), "missing"), "--every", "200ms"}, &stdout, &stderr)
	require.Equal(t, exitInterrupted, code, "interrupted after failed rounds")
}

func TestCheckCLIUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--every", "-1s"},
		{"--count", "-1"},
		{"--large-size", "-1"},
		{"--max-skew", "-1m"},
		{"--prefix", "/abs"},
		{"extra-argument"},
	} {
		code, _, errOut := cli(t, nil, append([]string{"check", "--target", dir}, args...)...)
		require.Equal(t, exitUsage, code, "%v: %s", args, errOut)
	}
	code, _, errOut := cli(t, nil, "check")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--target is required")
}
