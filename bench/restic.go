package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ResticPassword is the fixed password of the restic repositories the
// benchmarks create (passed as RESTIC_PASSWORD): they hold generated test
// data only.
const ResticPassword = "chunkback-bench"

// ResticInstall is the command that installs restic (the Debian package).
const ResticInstall = "scripts/bench/install.sh (or: apt-get install -y restic)"

// ResticAvailable returns nil when the restic program is on PATH, or an
// error that says how to install it.
func ResticAvailable() error {
	if _, err := exec.LookPath("restic"); err != nil {
		return fmt.Errorf("bench: restic is not installed (%w): install it with %s", err, ResticInstall)
	}
	return nil
}

// ResticSpec is one restic operation.
type ResticSpec struct {
	// Kind is KindBackup or KindRestore.
	Kind string `json:"kind"`
	// Repo is the directory of a local restic repository; a backup
	// initializes it (untimed) when it holds no repository yet.
	Repo string `json:"repo"`
	// Source is the file a backup reads.
	Source string `json:"source,omitempty"`
	// Dest is the new file a restore writes (it must not exist).
	Dest string `json:"dest,omitempty"`
	// Parent makes a backup incremental: the snapshot ID (or a unique
	// prefix of it) of the backup it builds on, restic's --parent. restic
	// reads the whole source again (the path differs when the source is a
	// modified copy) and stores only the chunks the repository lacks.
	Parent string `json:"parent,omitempty"`
	// Snapshot is the snapshot a restore restores (an ID or a unique
	// prefix; "" for the latest).
	Snapshot string `json:"snapshot,omitempty"`
	// Compression is restic's --compression for a backup: "auto" (restic's
	// default, zstd at its fastest level), "off" or "max". chunkback's codec
	// names are mapped: "none" to "off", "zlib" and "zstd" to "auto". ""
	// leaves restic's default.
	Compression string `json:"compression,omitempty"`
}

// Validate checks that the spec has the fields its kind needs.
func (s ResticSpec) Validate() error {
	if s.Kind != KindBackup && s.Kind != KindRestore {
		return fmt.Errorf("bench: restic kind %q: want backup or restore", s.Kind)
	}
	if _, err := resticCompression(s.Compression); err != nil {
		return err
	}
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("bench: restic %s needs %s", s.Kind, what)
		}
		return nil
	}
	return errors.Join(
		need(s.Repo != "", "a repository directory"),
		need(s.Kind != KindBackup || s.Source != "", "a source file"),
		need(s.Kind != KindRestore || s.Dest != "", "a destination file"),
	)
}

// resticCompression maps a codec name to restic's --compression mode.
func resticCompression(c string) (string, error) {
	switch c {
	case "", "auto", "zlib", "zstd":
		return "auto", nil
	case "off", "none":
		return "off", nil
	case "max":
		return "max", nil
	}
	return "", fmt.Errorf("bench: restic compression %q: want auto, off, max (or none, zlib, zstd)", c)
}

// RunRestic runs one restic operation as a child process and returns its
// outcome: Seconds is the wall time of the restic process (start-up, the
// repository's key derivation with scrypt included, as ResticStartup
// measures; for a restore also the fsync of the restored file, as
// chunkback's restore does), PeakRSS the restic process's peak resident set
// size (wait4's rusage), SnapshotID the snapshot a backup made or a restore
// read. For a backup, Bytes is the source's size, Objects the data blobs
// (chunks) restic added and BytesStored the growth of the repository's
// pack files (compressed and encrypted; measured untimed); for a
// restore, Bytes is the restored file's size. Opening the repository
// costs restic about 0.5-0.8 s and 53 MiB of RSS here (scrypt), whatever
// the size of the data: a floor under every time and peak RSS.
//
// A restore goes into a new directory next to Dest (restic restores the
// snapshot's paths under a target directory); the restored file is then
// moved to Dest and the directory removed.
func RunRestic(ctx context.Context, s ResticSpec) (*Outcome, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := ResticAvailable(); err != nil {
		return nil, err
	}
	if s.Kind == KindBackup {
		return resticBackup(ctx, s)
	}
	return resticRestore(ctx, s)
}

// ResticStartup returns the wall time of a restic command that opens the
// repository and does nothing else (restic cat config): the start-up cost
// included in every RunRestic figure, mostly the scrypt key derivation.
func ResticStartup(ctx context.Context, repo string) (float64, error) {
	start := time.Now()
	if _, _, err := restic(ctx, repo, "cat", "config"); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// resticSummary is the summary line of restic backup --json.
type resticSummary struct {
	MessageType         string `json:"message_type"`
	DataBlobs           int    `json:"data_blobs"`
	TotalBytesProcessed int64  `json:"total_bytes_processed"`
	SnapshotID          string `json:"snapshot_id"`
}

func resticBackup(ctx context.Context, s ResticSpec) (*Outcome, error) {
	if err := resticInit(ctx, s.Repo); err != nil {
		return nil, err
	}
	src, err := filepath.Abs(s.Source)
	if err != nil {
		return nil, err
	}
	before, err := dirSize(filepath.Join(s.Repo, "data"))
	if err != nil {
		return nil, err
	}
	comp, _ := resticCompression(s.Compression) // checked by Validate
	args := []string{"backup", "--json", "--quiet", "--host", "chunkback-bench", "--compression", comp}
	if s.Parent != "" {
		args = append(args, "--parent", s.Parent)
	}
	start := time.Now()
	stdout, ps, err := restic(ctx, s.Repo, append(args, src)...)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	var sum *resticSummary
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m resticSummary
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.MessageType == "summary" {
			sum = &m
		}
	}
	if sum == nil || sum.SnapshotID == "" {
		return nil, fmt.Errorf("bench: restic backup printed no summary with a snapshot ID: %q", stdout)
	}
	after, err := dirSize(filepath.Join(s.Repo, "data"))
	if err != nil {
		return nil, err
	}
	return &Outcome{
		Seconds: secs, Bytes: sum.TotalBytesProcessed, Objects: sum.DataBlobs, BytesStored: after - before,
		PeakRSS: maxRSS(ps), SnapshotID: sum.SnapshotID,
	}, nil
}

func resticRestore(ctx context.Context, s ResticSpec) (out *Outcome, err error) {
	if _, err := os.Lstat(s.Dest); err == nil {
		return nil, fmt.Errorf("bench: restore destination %s exists", s.Dest)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(s.Dest), filepath.Base(s.Dest)+".restic-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); err == nil && rerr != nil {
			err = rerr
		}
	}()
	snap := s.Snapshot
	if snap == "" {
		snap = "latest"
	}
	start := time.Now()
	stdout, ps, err := restic(ctx, s.Repo, "restore", snap, "--target", tmp)
	if err != nil {
		return nil, err
	}
	// The snapshot holds one file, restored under tmp at its original path.
	var files []string
	err = filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(files) != 1 {
		return nil, fmt.Errorf("bench: restic restore of %s gave %d files, want 1: %q", snap, len(files), stdout)
	}
	size, err := syncFile(files[0])
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	if err := os.Rename(files[0], s.Dest); err != nil {
		return nil, err
	}
	id := s.Snapshot
	if f := strings.Fields(string(stdout)); len(f) > 2 && f[0] == "restoring" && f[1] == "<Snapshot" {
		id = f[2] // "restoring <Snapshot 09166e8e of [...] ..."
	}
	return &Outcome{Seconds: secs, Bytes: size, PeakRSS: maxRSS(ps), SnapshotID: id}, nil
}

// dirSize returns the total size of the regular files under dir (0 when
// it does not exist).
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}

// resticInit creates a restic repository in the directory repo, unless
// one is there already.
func resticInit(ctx context.Context, repo string) error {
	if _, err := os.Stat(filepath.Join(repo, "config")); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, _, err := restic(ctx, repo, "init")
	return err
}

// syncFile fsyncs the file at path and returns its size.
func syncFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// restic runs restic with args on the repository repo (without a cache:
// the repository is local) and the fixed password, and returns its
// standard output and process state. The caller's RESTIC_* variables are
// left out, so that a user's password file or repository cannot interfere.
func restic(ctx context.Context, repo string, args ...string) ([]byte, *os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, "restic", append([]string{"--repo", repo, "--no-cache"}, args...)...)
	env := []string{"RESTIC_PASSWORD=" + ResticPassword}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RESTIC_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("bench: restic %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), cmd.ProcessState, nil
}
