package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// retentionCLI runs a synthetic full and a prune through the CLI against
// targetURL: a full and two incrementals of a 2 MiB volume, a synthetic
// full of the chain (restored and compared byte for byte), an incremental
// on top of it, a dry-run prune that deletes nothing, a prune that deletes
// the old chain, and a restore of what is left. The caller sets the
// environment the URL's scheme reads.
func retentionCLI(t *testing.T, targetURL string) {
	t.Helper()
	const size = 2<<20 + 4096*3 + 11
	src, data := volume(t, size)
	vol := fmt.Sprintf("ret-%d", time.Now().UnixNano())
	base := []string{"--target", targetURL, "--progress", "none", "--json"}
	run := func(args ...string) map[string]any {
		t.Helper()
		code, out, errOut := cli(t, nil, append(args, base...)...)
		require.Equal(t, 0, code, "chunkback %v: %s", args, errOut)
		return jsonOut(t, out)
	}
	backupOf := func(incremental bool) string {
		t.Helper()
		args := []string{"backup", "--create", "--volume-id", vol, "--object-size", "262144", src}
		if incremental {
			args = append(args, "--incremental")
		}
		return run(args...)["backup_id"].(string)
	}
	change := func(seed uint64) {
		t.Helper()
		r := rand.New(rand.NewPCG(seed, 9))
		for range 8 {
			off := r.IntN(size - 4096)
			for i := off; i < off+4096; i++ {
				data[i] = byte(r.Uint32())
			}
		}
		require.NoError(t, os.WriteFile(src, data, 0o600))
	}
	restored := func(id string) []byte {
		t.Helper()
		dest := filepath.Join(t.TempDir(), "restored.img")
		run("restore", "--backup-id", id, dest)
		got, err := os.ReadFile(dest)
		require.NoError(t, err)
		return got
	}
	listed := func() []string {
		t.Helper()
		var ids []string
		for _, b := range run("list", "--volume-id", vol)["backups"].([]any) {
			ids = append(ids, b.(map[string]any)["backup_id"].(string))
		}
		return ids
	}

	full := backupOf(false)
	change(1)
	inc1 := backupOf(true)
	change(2)
	inc2 := backupOf(true)
	t.Cleanup(func() {
		for _, id := range listed() {
			cli(t, nil, append([]string{"delete", "--chain", "--backup-id", id}, base...)...)
		}
	})

	syn := run("synthesize", "--backup-id", inc2, "--new-backup-id", "syn-"+vol)
	require.Equal(t, "syn-"+vol, syn["backup_id"])
	require.Equal(t, inc2, syn["synthetic_of"])
	require.True(t, bytes.Equal(data, restored("syn-"+vol)), "the synthetic full restores other bytes than the chain")

	change(3)
	inc3 := backupOf(true)
	require.Equal(t, []string{full, inc1, inc2, "syn-" + vol, inc3}, listed())

	dry := run("prune", "--volume-id", vol, "--keep-last", "2", "--dry-run")
	require.Equal(t, true, dry["dry_run"])
	require.Equal(t, []any{inc2, inc1, full}, dry["deleted"])
	require.Len(t, listed(), 5, "a dry run deleted backups")

	pruned := run("prune", "--volume-id", vol, "--keep-last", "2")
	require.Equal(t, []any{inc2, inc1, full}, pruned["deleted"])
	require.Equal(t, []string{"syn-" + vol, inc3}, listed())
	require.True(t, bytes.Equal(data, restored(inc3)), "the incremental on the synthetic full restores other bytes")
	require.Equal(t, true, run("verify", "--backup-id", inc3)["ok"])
}

func TestRetentionPosix(t *testing.T) {
	retentionCLI(t, "file://"+t.TempDir())
}

// TestRetentionServers runs the synthetic full and prune against every
// --target URL of every real server.
func TestRetentionServers(t *testing.T) {
	forEachServerURL(t, func(t *testing.T, targetURL string) {
		retentionCLI(t, targetURL)
	})
}

func TestPruneAndSynthesizeUsage(t *testing.T) {
	store := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"prune", "--target", store}, "--volume-id is required"},
		{[]string{"prune", "--target", store, "--volume-id", "v"}, "set --keep-last, --keep-fulls or --keep-within"},
		{[]string{"prune", "--target", store, "--volume-id", "v", "--keep-last", "-1"}, "--keep-last -1 must not be negative"},
		{[]string{"prune", "--target", store, "--volume-id", "v", "--keep-within", "a month"}, "use a duration such as 720h"},
		{[]string{"prune", "--target", store, "--volume-id", "v", "--keep-within", "-3d"}, "whole number of days"},
		{[]string{"synthesize", "--target", store}, "--backup-id is required"},
		{[]string{"synthesize", "--target", store, "--backup-id", "b", "--object-size", "-1"}, "object size -1"},
	} {
		code, _, errOut := cli(t, nil, c.args...)
		require.Equal(t, exitUsage, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.want, "%v", c.args)
	}
	code, _, errOut := cli(t, nil, "synthesize", "--target", store, "--backup-id", "nope")
	require.Equal(t, exitNotFound, code, errOut)

	// --keep-within in days, and the text output.
	src, _ := volume(t, 100000)
	code, _, errOut = cli(t, nil, "backup", "--target", store, "--volume-id", "v", "--progress", "none", src)
	require.Equal(t, 0, code, errOut)
	code, out, errOut := cli(t, nil, "prune", "--target", store, "--volume-id", "v", "--keep-within", "30d", "--dry-run")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "newest backup; within 720h0m0s")
	require.Contains(t, out, "kept 1 backup(s), would delete 0")
}
