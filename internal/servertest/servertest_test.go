package servertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadReadsEnvFileAndOverrides(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirEnv, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "demo.env"), []byte("# comment\nENDPOINT=http://127.0.0.1:1\nKEY=a=b\n\n"), 0o600))
	t.Setenv("CHUNKBACK_DEMO_ENDPOINT", "http://127.0.0.1:2")
	env, err := Load("demo")
	require.NoError(t, err)
	require.Equal(t, Env{"ENDPOINT": "http://127.0.0.1:2", "KEY": "a=b"}, env)
	require.Equal(t, "a=b", env.Get(t, "KEY"))
}

func TestLoadMissingSaysHowToStart(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	_, err := Load("nosuch")
	require.ErrorContains(t, err, "bash scripts/servers/start.sh nosuch")
	require.ErrorContains(t, err, SkipEnv)
}

func TestLoadRejectsMalformedLine(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirEnv, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.env"), []byte("NOEQUALS\n"), 0o600))
	_, err := Load("bad")
	require.ErrorContains(t, err, "not KEY=VALUE")
}

func TestSkipped(t *testing.T) {
	t.Setenv(SkipEnv, "minio, swift")
	require.True(t, Skipped("swift"))
	require.False(t, Skipped("ceph"))
	t.Setenv(SkipEnv, "all")
	require.True(t, Skipped("ceph"))
	t.Setenv(SkipEnv, "")
	require.False(t, Skipped("ceph"))
}

func TestURLsAndCLIEnv(t *testing.T) {
	env := Env{"URL_S3": "s3://b/p", "URL_SWIFT": "swift://c/p", "CLI_AWS_REGION": "r", "ENDPOINT": "x"}
	require.Equal(t, map[string]string{"s3": "s3://b/p", "swift": "swift://c/p"}, env.URLs())
	require.Equal(t, map[string]string{"AWS_REGION": "r"}, env.CLIEnv())
	env.SetCLIEnv(t)
	require.Equal(t, "r", os.Getenv("AWS_REGION"))
}
