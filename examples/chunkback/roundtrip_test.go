package main

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/internal/servertest"
)

// roundTripSize is the volume every target's CLI round trip backs up.
const roundTripSize = 256 << 20

// roundTripCLI backs a 256 MiB volume up through the CLI into targetURL (a
// full, then an incremental after scattered writes), restores the
// incremental, compares it byte for byte, verifies and deletes the chain.
// The caller sets the environment the URL's scheme reads (t.Setenv).
func roundTripCLI(t *testing.T, targetURL string) {
	t.Helper()
	src, data := volume(t, roundTripSize)
	volID := "rt-" + filepath.Base(t.Name())
	code, out, errOut := cli(t, nil, "backup", "--target", targetURL, "--create", "--volume-id", volID, "--progress", "none", "--json", src)
	require.Equal(t, 0, code, errOut)
	full := jsonOut(t, out)
	require.Equal(t, true, full["full"])
	require.EqualValues(t, roundTripSize, full["bytes_read"])

	// Scattered writes: 64 blocks of 32 KiB across the whole volume.
	r := rand.New(rand.NewPCG(3, 4))
	for range 64 {
		off := r.IntN(roundTripSize/32768) * 32768
		for i := off; i < off+32768; i += 512 {
			data[i] ^= 0x5a
		}
	}
	require.NoError(t, os.WriteFile(src, data, 0o600))
	code, out, errOut = cli(t, nil, "backup", "--target", targetURL, "--volume-id", volID, "--incremental", "--progress", "none", "--json", src)
	require.Equal(t, 0, code, errOut)
	inc := jsonOut(t, out)
	require.Equal(t, false, inc["full"])
	require.Equal(t, full["backup_id"], inc["parent_id"])
	require.Less(t, inc["bytes_stored"].(float64), full["bytes_stored"].(float64)/4, "the incremental stored too much")

	dest := filepath.Join(t.TempDir(), "restored.img")
	code, _, errOut = cli(t, nil, "restore", "--target", targetURL, "--backup-id", inc["backup_id"].(string), "--progress", "none", dest)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "restored bytes differ")

	code, out, errOut = cli(t, nil, "verify", "--target", targetURL, "--backup-id", inc["backup_id"].(string), "--chain", "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, true, jsonOut(t, out)["ok"])
	code, _, errOut = cli(t, nil, "delete", "--target", targetURL, "--backup-id", full["backup_id"].(string), "--chain", "--json")
	require.Equal(t, 0, code, errOut)
}

func TestRoundTripPosix(t *testing.T) {
	roundTripCLI(t, "file://"+t.TempDir())
}

// TestRoundTripServers runs the round trip against every --target URL that
// every real server serves (URL_<KIND> in its env file), with the
// environment variables its start script gives for the CLI.
func TestRoundTripServers(t *testing.T) {
	forEachServerURL(t, roundTripCLI)
}

// forEachServerURL runs fn, as a subtest per server and per target kind,
// on every --target URL that every real server serves (URL_<KIND> in its
// env file), with the environment variables its start script gives for the
// CLI set.
func forEachServerURL(t *testing.T, fn func(t *testing.T, targetURL string)) {
	t.Helper()
	for _, server := range servertest.Servers() {
		t.Run(server, func(t *testing.T) {
			env := servertest.Require(t, server)
			urls := env.URLs()
			require.NotEmpty(t, urls, "the env file of %s names no URL_ target", server)
			for _, kind := range slices.Sorted(maps.Keys(urls)) {
				t.Run(kind, func(t *testing.T) {
					env.SetCLIEnv(t)
					fn(t, urls[kind])
				})
			}
		})
	}
}
