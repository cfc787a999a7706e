package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/internal/cindertest"
)

// Engines a Spec can run.
const (
	EngineChunkback = "chunkback"
	EngineCinder    = "cinder"
)

// Kinds of operation a Spec can run.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
	KindVerify  = "verify"
	KindDelete  = "delete"
	// KindPut and KindGet are raw target operations (chunkback engine
	// only): Objects objects of ObjectSize bytes, cut from Source, stored
	// under "chunkbench/BackupID/" or read back, by Workers goroutines.
	KindPut = "put"
	KindGet = "get"
)

// Spec is one operation: what Run (or RunChild, in a child process) does.
// It is plain data, passed to a child process as JSON.
type Spec struct {
	// Engine is EngineChunkback or EngineCinder (real Cinder, through
	// internal/cindertest; it does backup, restore and delete).
	Engine string `json:"engine"`
	// Kind is KindBackup, KindRestore, KindVerify or KindDelete.
	Kind string `json:"kind"`
	// Target is the store: for chunkback a --target URL (a directory is
	// opened with NoSync, and created if missing), for Cinder the directory
	// that is its backup_posix_path.
	Target string `json:"target"`
	// Source is the file a backup reads; Dest the new file a restore
	// writes (it must not exist).
	Source string `json:"source,omitempty"`
	Dest   string `json:"dest,omitempty"`
	// VolumeID and BackupID name the backup made, restored, verified or
	// deleted; ParentID makes a backup incremental.
	VolumeID string `json:"volume_id"`
	BackupID string `json:"backup_id"`
	ParentID string `json:"parent_id,omitempty"`
	// Compression, ObjectSize and BlockSize configure a backup.
	Compression string `json:"compression,omitempty"`
	ObjectSize  int64  `json:"object_size,omitempty"`
	BlockSize   int    `json:"block_size,omitempty"`
	// Workers configures chunkback's engine (0: the number of CPUs), or the
	// goroutines of a put or get.
	Workers int `json:"workers,omitempty"`
	// Objects is the number of objects a put stores or a get reads.
	Objects int `json:"objects,omitempty"`
	// CPUProfile, for a chunkback backup, restore or verify, is a new file
	// that receives a CPU profile (runtime/pprof) of the timed operation
	// alone: the profiler starts after the target is opened and the source
	// or destination file is open, and stops when the engine returns.
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// Outcome is what one operation did.
type Outcome struct {
	// Seconds is the operation's wall time. For chunkback it covers the
	// engine call alone; for Cinder the whole subprocess (Python start-up
	// and imports included: cindertest does not report the driver's own
	// time).
	Seconds float64 `json:"seconds"`
	// Bytes is the source's size: read by a backup, written by a restore,
	// covered by a verify.
	Bytes int64 `json:"bytes"`
	// Objects and BytesStored count the data objects a backup stored and
	// their stored (compressed) size, or the objects a restore or verify
	// read and their stored size.
	Objects     int   `json:"objects"`
	BytesStored int64 `json:"bytes_stored"`
	// PeakRSS is the peak resident set size of the process that ran the
	// operation, in bytes: set by RunChild (0 when run in-process).
	PeakRSS int64 `json:"peak_rss,omitempty"`
	// StartRSS is the resident set size of that process just before the
	// operation started (the program loaded and initialised: for
	// chunkbench, every SDK it links), in bytes; 0 when not measured. The
	// operation's own memory is PeakRSS - StartRSS.
	StartRSS int64 `json:"start_rss,omitempty"`
	// Latency gives the percentiles of the per-object latency of a put or
	// get (nil for other kinds).
	Latency *Latency `json:"latency_ms,omitempty"`
	// SnapshotID is the snapshot a restic backup made or a restore read
	// (set by RunRestic only).
	SnapshotID string `json:"snapshot_id,omitempty"`
}

// Validate checks that the spec names a known engine and kind, and has the
// fields the kind needs.
func (s Spec) Validate() error {
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("bench: %s %s needs %s", s.Engine, s.Kind, what)
		}
		return nil
	}
	switch {
	case s.Engine != EngineChunkback && s.Engine != EngineCinder:
		return fmt.Errorf("bench: engine %q: want %q or %q", s.Engine, EngineChunkback, EngineCinder)
	case s.Kind != KindBackup && s.Kind != KindRestore && s.Kind != KindVerify && s.Kind != KindDelete && s.Kind != KindPut && s.Kind != KindGet:
		return fmt.Errorf("bench: kind %q: want backup, restore, verify, delete, put or get", s.Kind)
	case s.Engine == EngineCinder && (s.Kind == KindVerify || s.Kind == KindPut || s.Kind == KindGet):
		return fmt.Errorf("bench: Cinder has no %s", s.Kind)
	case (s.Kind == KindPut || s.Kind == KindGet) && (s.Objects <= 0 || s.ObjectSize <= 0 || s.Workers <= 0):
		return fmt.Errorf("bench: %s needs a positive number of objects, object size and workers", s.Kind)
	case s.CPUProfile != "" && (s.Engine != EngineChunkback || (s.Kind != KindBackup && s.Kind != KindRestore && s.Kind != KindVerify)):
		return fmt.Errorf("bench: a CPU profile of %s %s: only chunkback's backup, restore and verify are profiled", s.Engine, s.Kind)
	}
	return errors.Join(
		need(s.Target != "", "a target"),
		need(s.BackupID != "" && s.VolumeID != "", "a volume ID and a backup ID"),
		need((s.Kind != KindBackup && s.Kind != KindPut) || s.Source != "", "a source file"),
		need(s.Kind != KindRestore || s.Dest != "", "a destination file"),
	)
}

// Run performs one operation in this process.
func Run(ctx context.Context, s Spec) (*Outcome, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Engine == EngineCinder {
		return runCinder(ctx, s)
	}
	t, err := openTarget(ctx, s.Target)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if s.Kind == KindPut || s.Kind == KindGet {
		return runRaw(ctx, t, s)
	}
	e, err := backup.New(t, backup.Config{Workers: s.Workers})
	if err != nil {
		return nil, err
	}
	switch s.Kind {
	case KindBackup:
		f, err := os.Open(s.Source)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		stop, err := s.startProfile()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		res, err := e.Backup(ctx, f, backup.BackupOptions{
			VolumeID: s.VolumeID, BackupID: s.BackupID, ParentID: s.ParentID,
			Compression: s.Compression, ObjectSize: s.ObjectSize, BlockSize: s.BlockSize,
		})
		secs := time.Since(start).Seconds()
		if perr := stop(); err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		return &Outcome{Seconds: secs, Bytes: res.BytesRead, Objects: res.Objects, BytesStored: res.BytesStored}, nil
	case KindRestore:
		f, err := os.OpenFile(s.Dest, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		stop, err := s.startProfile()
		if err != nil {
			f.Close()
			return nil, err
		}
		start := time.Now()
		res, err := e.Restore(ctx, s.BackupID, f, backup.RestoreOptions{})
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		secs := time.Since(start).Seconds()
		if perr := stop(); err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		return &Outcome{Seconds: secs, Bytes: res.Size, Objects: res.ObjectsRead, BytesStored: res.BytesRead}, nil
	case KindVerify:
		info, err := e.Find(ctx, s.BackupID, s.VolumeID)
		if err != nil {
			return nil, err
		}
		var last backup.Progress
		stop, err := s.startProfile()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		rep, err := e.Verify(ctx, s.BackupID, backup.VerifyOptions{Progress: func(p backup.Progress) { last = p }})
		secs := time.Since(start).Seconds()
		if perr := stop(); err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		if !rep.OK() {
			return nil, fmt.Errorf("bench: verify of %s found %d faults, the first: %s", s.BackupID, len(rep.Faults), rep.Faults[0])
		}
		return &Outcome{Seconds: secs, Bytes: info.Size, Objects: rep.Objects, BytesStored: last.BytesStored}, nil
	default: // KindDelete
		start := time.Now()
		if _, err := e.Delete(ctx, s.BackupID, backup.DeleteOptions{}); err != nil {
			return nil, err
		}
		return &Outcome{Seconds: time.Since(start).Seconds()}, nil
	}
}

// startProfile starts the CPU profile s.CPUProfile asks for; the returned
// function stops it (a no-op without one).
func (s Spec) startProfile() (stop func() error, err error) {
	if s.CPUProfile == "" {
		return func() error { return nil }, nil
	}
	return StartCPUProfile(s.CPUProfile)
}

// runCinder runs a Cinder operation; its store is s.Target, in Cinder's
// default container layout ID[0:2]/ID[2:4]/ID.
func runCinder(ctx context.Context, s Spec) (*Outcome, error) {
	container := filepath.Join(s.Target, s.BackupID[:2], s.BackupID[2:4], s.BackupID)
	switch s.Kind {
	case KindBackup:
		st, err := os.Stat(s.Source)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(s.Target, 0o755); err != nil {
			return nil, err
		}
		start := time.Now()
		err = cindertest.Backup(ctx, s.Target, s.Source, cindertest.BackupOptions{
			VolumeID: s.VolumeID, BackupID: s.BackupID, ParentID: s.ParentID,
			ObjectSize: s.ObjectSize, BlockSize: int64(s.BlockSize), Compression: s.Compression,
		})
		if err != nil {
			return nil, err
		}
		out := &Outcome{Seconds: time.Since(start).Seconds(), Bytes: st.Size()}
		out.Objects, out.BytesStored, err = cinderObjects(container)
		return out, err
	case KindRestore:
		if _, err := os.Lstat(s.Dest); err == nil {
			return nil, fmt.Errorf("bench: restore destination %s exists", s.Dest)
		}
		start := time.Now()
		if err := cindertest.Restore(ctx, s.Target, s.VolumeID, s.BackupID, s.Dest); err != nil {
			return nil, err
		}
		out := &Outcome{Seconds: time.Since(start).Seconds()}
		st, err := os.Stat(s.Dest)
		if err != nil {
			return nil, err
		}
		out.Bytes = st.Size()
		out.Objects, out.BytesStored, err = cinderObjects(container)
		return out, err
	default: // KindDelete: Cinder's posix driver deletes the container's files
		start := time.Now()
		if err := os.RemoveAll(container); err != nil {
			return nil, err
		}
		return &Outcome{Seconds: time.Since(start).Seconds()}, nil
	}
}

// cinderObjects counts the data objects in a Cinder backup's container and
// their total size (the _metadata and _sha256file objects left out).
func cinderObjects(container string) (int, int64, error) {
	var n int
	var size int64
	err := filepath.WalkDir(container, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, "_metadata") || strings.HasSuffix(path, "_sha256file") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		size += info.Size()
		return nil
	})
	return n, size, err
}

// NewID returns a random version 4 UUID, the form Cinder's volume and backup
// IDs take.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
