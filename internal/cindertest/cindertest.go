// Package cindertest drives REAL OpenStack Cinder (Debian python3-cinder
// 21.3.1, PosixBackupDriver) from Go tests and benchmarks, through
// scripts/cinder/cinder_posix.py: Backup makes a backup with Cinder's own
// ChunkedBackupDriver.backup(), Restore restores one (with its chain) with
// Cinder's restore(). No database, message bus or OpenStack service is used.
//
// Cinder is installed with scripts/cinder/install.sh. Tests call Require,
// which fails the test when Cinder is missing unless CHUNKBACK_SKIP_CINDER=1.
//
// Environment:
//
//	CHUNKBACK_SKIP_CINDER=1   Require skips instead of failing
//	CHUNKBACK_CINDER_PYTHON   interpreter to use (default /usr/bin/python3)
package cindertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// SkipEnv is the environment variable that turns Require's failure into a skip.
const SkipEnv = "CHUNKBACK_SKIP_CINDER"

// PythonEnv overrides the Python interpreter (default /usr/bin/python3).
const PythonEnv = "CHUNKBACK_CINDER_PYTHON"

const scriptRel = "scripts/cinder/cinder_posix.py"
const installRel = "scripts/cinder/install.sh"

// BackupOptions configure Backup. Zero values mean Cinder's defaults:
// ObjectSize 1999994880 (backup_file_size), BlockSize 32768
// (backup_sha_block_size_bytes), Compression "zlib", Container
// ID[0:2]/ID[2:4]/ID. ParentID makes an incremental backup; the parent is
// found in the store (its default container, then Container).
type BackupOptions struct {
	VolumeID, BackupID, ParentID string
	ObjectSize, BlockSize        int64
	Compression                  string
	Container                    string
}

var (
	availOnce sync.Once
	availErr  error
)

// Available reports nil if real Cinder can run here, else an error saying how
// to install it (scripts/cinder/install.sh). The result is cached.
func Available() error {
	availOnce.Do(func() { availErr = available() })
	return availErr
}

func available() error {
	root, rerr := moduleRoot()
	install := installRel
	if rerr == nil {
		install = filepath.Join(root, installRel)
	}
	hint := fmt.Sprintf("install it with: sudo %s (Debian bookworm: apt-get install python3-cinder python3-zstd), "+
		"or set %s=1 to skip tests that need it", install, SkipEnv)
	if rerr != nil {
		return fmt.Errorf("real OpenStack Cinder unavailable: %v; %s", rerr, hint)
	}
	if _, err := os.Stat(filepath.Join(root, scriptRel)); err != nil {
		return fmt.Errorf("real OpenStack Cinder unavailable: harness script missing: %v", err)
	}
	py := python()
	if _, err := exec.LookPath(py); err != nil {
		return fmt.Errorf("real OpenStack Cinder unavailable: no Python interpreter %s (%v); %s", py, err, hint)
	}
	cmd := exec.Command(py, "-c", "import cinder.backup.drivers.posix, cinder.backup.chunkeddriver, zstd")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("real OpenStack Cinder unavailable: %s cannot import cinder.backup.drivers.posix and zstd (%v: %s); %s",
			py, err, lastLine(stderr.String()), hint)
	}
	return nil
}

// Require fails the test (t.Fatal) when Cinder is unavailable, unless
// CHUNKBACK_SKIP_CINDER=1 is set, in which case it skips the test.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%v (skipping: %s=1)", err, SkipEnv)
	}
	t.Fatal(err)
}

// Backup backs volumeFile up with real Cinder into the posix store rooted at
// backupPath (backup_posix_path). VolumeID and BackupID are required.
func Backup(ctx context.Context, backupPath, volumeFile string, o BackupOptions) error {
	if o.VolumeID == "" || o.BackupID == "" {
		return errors.New("cindertest.Backup: VolumeID and BackupID are required")
	}
	args := []string{"backup",
		"--backup-path", backupPath,
		"--volume", volumeFile,
		"--volume-id", o.VolumeID,
		"--backup-id", o.BackupID,
	}
	if o.ParentID != "" {
		args = append(args, "--parent-id", o.ParentID)
	}
	if o.ObjectSize != 0 {
		args = append(args, "--object-size", strconv.FormatInt(o.ObjectSize, 10))
	}
	if o.BlockSize != 0 {
		args = append(args, "--block-size", strconv.FormatInt(o.BlockSize, 10))
	}
	if o.Compression != "" {
		args = append(args, "--compression", o.Compression)
	}
	if o.Container != "" {
		args = append(args, "--container", o.Container)
	}
	_, err := run(ctx, args...)
	return err
}

// Restore restores backup backupID (with its whole chain, discovered from
// the store) with real Cinder into outFile, which is opened 'wb' (truncated)
// as Cinder's backup manager does. volumeID is the target volume's id.
func Restore(ctx context.Context, backupPath, volumeID, backupID, outFile string) error {
	_, err := run(ctx, "restore",
		"--backup-path", backupPath,
		"--volume-id", volumeID,
		"--backup-id", backupID,
		"--out", outFile)
	return err
}

// SampleDir returns the absolute path of the shared Cinder sample
// (../shared/cinder-sample relative to the module root).
func SampleDir() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("cinder sample: %w", err)
	}
	dir := filepath.Join(filepath.Dir(root), "shared", "cinder-sample")
	st, err := os.Stat(filepath.Join(dir, "backups"))
	if err != nil || !st.IsDir() {
		return "", fmt.Errorf("cinder sample not found: looked for %s (../shared/cinder-sample relative to module root %s)",
			dir, root)
	}
	return dir, nil
}

// run executes the harness script; errors include its stderr.
func run(ctx context.Context, args ...string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("cinder %s: %w", args[0], err)
	}
	script := filepath.Join(root, scriptRel)
	cmd := exec.CommandContext(ctx, python(), append([]string{script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return stdout.String(), fmt.Errorf("cinder %s failed: %w\nstderr:\n%s\ncommand: %s %s",
			args[0], err, strings.TrimSpace(stderr.String()), python(), strings.Join(append([]string{script}, args...), " "))
	}
	return stdout.String(), nil
}

func python() string {
	if p := os.Getenv(PythonEnv); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod found in %s or any parent directory", wd)
		}
		dir = parent
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// SampleSums returns the SHA-256 of each volume image of the shared sample
// (its SHA256SUMS file), by file name.
func SampleSums() (map[string]string, error) {
	dir, err := SampleDir()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) == 2 {
			sums[strings.TrimPrefix(fields[1], "*")] = fields[0]
		}
	}
	for _, want := range []string{"volume-original.img", "volume-modified.img"} {
		if _, ok := sums[want]; !ok {
			return nil, fmt.Errorf("cindertest: %s in %s has no line for %s", "SHA256SUMS", dir, want)
		}
	}
	return sums, nil
}
