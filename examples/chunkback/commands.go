package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/internal/targeturl"
)

// usageError marks bad command-line usage (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errReported marks an error whose details were already printed.
var errReported = errors.New("reported")

func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue), errors.Is(err, backup.ErrInvalidOptions), errors.Is(err, flag.ErrHelp):
		return exitUsage
	case errors.Is(err, backup.ErrParentUnusable):
		return exitParent
	case errors.Is(err, backup.ErrNotFound):
		return exitNotFound
	case errors.Is(err, backup.ErrCorrupt):
		return exitDamaged
	case errors.Is(err, backup.ErrHasChildren):
		return exitHasChildren
	case errors.Is(err, backup.ErrKeyRequired), errors.Is(err, backup.ErrWrongKey), errors.Is(err, crypt.ErrInvalidKey):
		return exitKey
	case errors.Is(err, backup.ErrLocked), errors.Is(err, backup.ErrLockLost):
		return exitLocked
	}
	return exitFailure
}

// common holds the flags every command takes.
type common struct {
	target   string
	workers  int
	json     bool
	progress string
	create   bool
	noSync   bool
	cpuProf  string
	keys     keyFlags
	lock     lockFlags // backup and delete (cmd_lock.go)

	immutable *backup.Immutability // backup's write-once mode (cmd_immutable.go)
}

func newFlags(name string, c *common, out *output) *flag.FlagSet {
	fs := flag.NewFlagSet("chunkback "+name, flag.ContinueOnError)
	fs.SetOutput(out.stderr)
	fs.StringVar(&c.target, "target", os.Getenv("CHUNKBACK_TARGET"), "storage target: "+targeturl.Schemes+" (default $CHUNKBACK_TARGET)")
	fs.IntVar(&c.workers, "workers", 0, "objects processed at once (default: the number of CPUs)")
	fs.BoolVar(&c.json, "json", false, "print the result as one JSON document on stdout")
	fs.StringVar(&c.progress, "progress", "auto", "progress on stderr: auto (a bar on a terminal), bar, json (one JSON line a second), none")
	fs.StringVar(&c.cpuProf, "cpuprofile", "", "write a CPU profile (go tool pprof) of the command to this file")
	c.keys.add(fs)
	return fs
}

// parse parses flags, which may come before or after the positional
// arguments, and checks the common ones.
func parse(fs *flag.FlagSet, args []string, c *common, out *output, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errReported
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	out.json = c.json
	if len(pos) != positional {
		return nil, usageError{fmt.Sprintf("expected %d argument(s), got %d (%s)", positional, len(pos), strings.Join(pos, " "))}
	}
	if c.target == "" {
		return nil, usageError{"--target is required: " + targeturl.Schemes}
	}
	switch c.progress {
	case "auto", "bar", "json", "none":
	default:
		return nil, usageError{fmt.Sprintf("--progress %q: use auto, bar, json or none", c.progress)}
	}
	return pos, nil
}

// openEngine opens the target and the engine, and starts the CPU profile if
// asked for; the returned function undoes both.
func openEngine(ctx context.Context, c *common) (*backup.Engine, func() error, error) {
	keys, err := c.keys.provider()
	if err != nil {
		return nil, nil, err
	}
	t, err := targeturl.Open(ctx, c.target, targeturl.Options{Create: c.create, NoSync: c.noSync})
	if err != nil {
		return nil, nil, err
	}
	e, err := backup.New(t, backup.Config{Workers: c.workers, Keys: keys, Owner: c.lock.owner, Lock: backup.LockConfig{Wait: c.lock.wait}, Immutability: c.immutable})
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	stopProfile := func() {}
	if c.cpuProf != "" {
		f, err := os.Create(c.cpuProf)
		if err != nil {
			t.Close()
			return nil, nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			t.Close()
			return nil, nil, err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	return e, func() error { stopProfile(); return t.Close() }, nil
}

func cmdBackup(ctx context.Context, args []string, out *output) error {
	var c common
	var o backup.BackupOptions
	fs := newFlags("backup", &c, out)
	fs.StringVar(&o.VolumeID, "volume-id", "", "the volume the source belongs to (required)")
	fs.StringVar(&o.BackupID, "backup-id", "", "ID of the new backup (default: a new UUID)")
	fs.StringVar(&o.ParentID, "parent-id", "", "make an incremental on top of this backup")
	fs.BoolVar(&o.Incremental, "incremental", false, "make an incremental on top of the volume's latest backup")
	fs.BoolVar(&o.FallbackToFull, "fallback-full", false, "make a full backup when the parent cannot be used, instead of failing")
	fs.StringVar(&o.Compression, "compression", backup.DefaultCompression, "none, zlib, gzip, bz2, bzip2 or zstd")
	fs.IntVar(&o.CompressionLevel, "compression-level", 0, "codec level (default: Cinder's: zlib 6, bz2 9, zstd 3)")
	fs.Int64Var(&o.ObjectSize, "object-size", backup.DefaultObjectSize, "bytes per object (a multiple of --block-size)")
	fs.IntVar(&o.BlockSize, "block-size", backup.DefaultBlockSize, "bytes per SHA-256 block")
	fs.StringVar(&o.Name, "name", "", "display name of the backup")
	fs.StringVar(&o.Description, "description", "", "display description of the backup")
	fs.BoolVar(&o.StoreZeros, "store-zeros", false, "store all-zero extents too (as Cinder does)")
	fs.BoolVar(&c.create, "create", true, "create the target directory, bucket or container if it is missing")
	fs.BoolVar(&c.noSync, "no-sync", false, "do not fsync objects (faster; a crash may lose the backup)")
	fs.BoolVar(&o.Resumable, "resumable", true, "on failure keep what was stored, to be continued with --resume")
	fs.BoolVar(&o.Resume, "resume", false, "continue the interrupted backup --backup-id (see list --partial)")
	c.lock.register(fs)
	immutable := addImmutableFlags(fs)
	pos, err := parse(fs, args, &c, out, 1)
	if err != nil {
		return err
	}
	if o.Resume && o.BackupID == "" {
		return usageError{"--resume needs --backup-id: the partial backup to continue (see chunkback list --partial)"}
	}
	if c.immutable, err = immutable.config(); err != nil {
		return err
	}
	if o.VolumeID == "" {
		return usageError{"--volume-id is required: name the volume the source belongs to"}
	}
	if o.ParentID != "" && o.Incremental {
		return usageError{"--parent-id and --incremental exclude each other: name the parent, or let the latest backup be it"}
	}
	var src io.Reader = os.Stdin
	if isRBD(pos[0]) {
		src = nil // opened below, with the engine (rbd.go)
	} else if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	} else {
		o.Size = -1
		src = struct{ io.Reader }{os.Stdin}
	}
	e, closeTarget, err := openEngine(ctx, &c)
	if err != nil {
		return err
	}
	defer closeTarget()
	noteEnforcement(e, out)
	finish := func(_ *backup.Result, err error) error { return err }
	if isRBD(pos[0]) {
		if src, finish, err = openRBDSource(ctx, e, pos[0], &o); err != nil {
			return err
		}
	}
	o.Progress = out.progress(c.progress)
	res, err := e.Backup(ctx, src, o)
	err = finish(res, err)
	out.endProgress()
	if err != nil {
		return withResumeHint(err, args, c.target)
	}
	doc := map[string]any{
		"backup_id": res.Info.ID, "volume_id": res.Info.VolumeID, "parent_id": res.Info.ParentID,
		"full": res.Full, "fallback_reason": res.FallbackReason,
		"bytes_read": res.BytesRead, "bytes_changed": res.BytesChanged, "bytes_stored": res.BytesStored,
		"objects": res.Objects, "seconds": res.Duration.Seconds(), "rate_bytes_per_second": rate(res.BytesRead, res.Duration),
		"resumed": res.Resumed, "objects_reused": res.ObjectsReused, "bytes_reused": res.BytesReused,
	}
	kind := "full"
	if !res.Full {
		kind = "incremental on " + res.Info.ParentID
	}
	text := fmt.Sprintf("backup %s (%s) of volume %s: read %s, stored %d objects, %s (%s compressed) in %s, %s/s\n",
		res.Info.ID, kind, res.Info.VolumeID, bytesText(res.BytesRead), res.Objects, bytesText(res.BytesChanged),
		bytesText(res.BytesStored), res.Duration.Round(time.Millisecond), bytesText(int64(rate(res.BytesRead, res.Duration))))
	if res.FallbackReason != "" {
		text += "note: made a full backup because " + res.FallbackReason + "\n"
	}
	text += resumedText(res)
	doc["owner"], doc["warnings"] = res.Info.Owner, res.Warnings
	for _, w := range res.Warnings {
		text += "warning: " + w + "\n"
	}
	out.result(doc, text)
	return nil
}

func cmdRestore(ctx context.Context, args []string, out *output) error {
	var c common
	var id string
	fs := newFlags("restore", &c, out)
	fs.StringVar(&id, "backup-id", "", "the backup to restore, with its chain (required)")
	verifyMD5 := fs.Bool("verify-md5", false, "also check each object's MD5 (every restored block is checked against the SHA-256 manifest anyway)")
	pos, err := parse(fs, args, &c, out, 1)
	if err != nil {
		return err
	}
	if id == "" {
		return usageError{"--backup-id is required (see chunkback list)"}
	}
	e, closeTarget, err := openEngine(ctx, &c)
	if err != nil {
		return err
	}
	defer closeTarget()
	dest := pos[0]
	opts := backup.RestoreOptions{Progress: out.progress(c.progress), VerifyMD5: *verifyMD5}
	var res *backup.RestoreResult
	if isRBD(dest) {
		res, err = restoreRBD(ctx, e, id, dest, opts)
		out.endProgress()
		if err != nil {
			return err
		}
	} else if fi, err := os.Stat(dest); err == nil && !fi.Mode().IsRegular() {
		// A device: written in place; it must be large enough.
		f, err := os.OpenFile(dest, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		res, err = e.Restore(ctx, id, f, opts)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		out.endProgress()
		if err != nil {
			return err
		}
	} else {
		// A file: restored beside it and renamed over it only when complete
		// and verified, so a failed restore leaves the old file as it was.
		res, err = restoreFile(ctx, e, id, dest, opts)
		out.endProgress()
		if err != nil {
			return err
		}
	}
	chain := make([]string, len(res.Chain))
	for i, b := range res.Chain {
		chain[i] = b.ID
	}
	out.result(map[string]any{
		"backup_id": id, "chain": chain, "bytes": res.Size, "objects_read": res.ObjectsRead,
		"objects_skipped": res.ObjectsSkipped, "bytes_read": res.BytesRead, "zero_bytes": res.ZeroBytes,
		"seconds": res.Duration.Seconds(), "rate_bytes_per_second": rate(res.Size, res.Duration), "verified": true,
	}, fmt.Sprintf("restored backup %s (chain of %d) to %s: %s in %s, %s/s, every block verified\n",
		id, len(chain), dest, bytesText(res.Size), res.Duration.Round(time.Millisecond), bytesText(int64(rate(res.Size, res.Duration)))))
	return nil
}

// restoreFile restores into a temporary file next to dest, then renames it
// over dest.
func restoreFile(ctx context.Context, e *backup.Engine, id, dest string, opts backup.RestoreOptions) (*backup.RestoreResult, error) {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(dest); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".chunkback-*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	opts.DestinationZeroed = true // a new file reads as zeros
	res, err := e.Restore(ctx, id, tmp, opts)
	if err != nil {
		return nil, err
	}
	if err := tmp.Chmod(mode); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return nil, err
	}
	ok = true
	return res, nil
}

func cmdList(ctx context.Context, args []string, out *output) error {
	var c common
	var vol string
	fs := newFlags("list", &c, out)
	fs.StringVar(&vol, "volume-id", "", "only this volume's backups")
	partial := fs.Bool("partial", false, "list the interrupted backups (to resume or delete) instead")
	if _, err := parse(fs, args, &c, out, 0); err != nil {
		return err
	}
	e, closeTarget, err := openEngine(ctx, &c)
	if err != nil {
		return err
	}
	defer closeTarget()
	if *partial {
		return listPartials(ctx, e, vol, out)
	}
	list, err := e.List(ctx, vol)
	if err != nil {
		return err
	}
	docs := make([]map[string]any, len(list))
	var text strings.Builder
	fmt.Fprintf(&text, "%-36s  %-36s  %-11s  %-19s  %10s  %-20s  %s\n", "BACKUP", "VOLUME", "KIND", "CREATED (UTC)", "SIZE", "OWNER", "NAME")
	for i, b := range list {
		docs[i] = infoDoc(b)
		kind := "full"
		if b.Incremental() {
			kind = "incremental"
		}
		fmt.Fprintf(&text, "%-36s  %-36s  %-11s  %-19s  %10s  %-20s  %s\n", b.ID, b.VolumeID, kind, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"), bytesText(b.Size), cmp.Or(b.Owner, "-"), b.Name)
	}
	out.result(map[string]any{"backups": docs}, text.String())
	return nil
}

func infoDoc(b *backup.Info) map[string]any {
	return map[string]any{
		"backup_id": b.ID, "volume_id": b.VolumeID, "parent_id": b.ParentID, "name": b.Name,
		"description": b.Description, "created_at": b.CreatedAt.UTC().Format(time.RFC3339Nano),
		"size": b.Size, "objects": b.Objects, "data_bytes": b.DataBytes, "incremental": b.Incremental(), "writer": b.Writer,
		"owner": b.Owner,
	}
}

// oneBackup is the shared start of the commands about one backup (show,
// verify, delete): their flags, the required --backup-id, the engine.
type oneBackup struct {
	common
	id     string
	engine *backup.Engine
	close  func() error
}

// open parses args (flags given through extra) and opens the engine; the
// caller must call close.
func (b *oneBackup) open(ctx context.Context, name, what string, args []string, out *output, extra func(*flag.FlagSet)) error {
	fs := newFlags(name, &b.common, out)
	fs.StringVar(&b.id, "backup-id", "", "the backup to "+what+" (required)")
	if extra != nil {
		extra(fs)
	}
	if _, err := parse(fs, args, &b.common, out, 0); err != nil {
		return err
	}
	if b.id == "" {
		return usageError{"--backup-id is required (see chunkback list)"}
	}
	e, closeTarget, err := openEngine(ctx, &b.common)
	if err != nil {
		return err
	}
	b.engine, b.close = e, closeTarget
	return nil
}

func cmdShow(ctx context.Context, args []string, out *output) error {
	var ob oneBackup
	if err := ob.open(ctx, "show", "show", args, out, nil); err != nil {
		return err
	}
	defer ob.close()
	chain, err := ob.engine.Chain(ctx, ob.id)
	if err != nil {
		return err
	}
	b := chain[len(chain)-1]
	doc := infoDoc(b)
	ids := make([]string, len(chain))
	for i, x := range chain {
		ids[i] = x.ID
	}
	doc["chain"] = ids
	encryption := "none (Cinder can restore it)"
	if enc := b.Encryption(); enc != nil {
		doc["encryption"] = map[string]any{"algorithm": enc.Algorithm, "key_id": enc.KeyID}
		encryption = fmt.Sprintf("key %s, %s (Cinder cannot restore it)", enc.KeyID, enc.Algorithm)
	}
	var text strings.Builder
	fmt.Fprintf(&text, "backup      %s\nvolume      %s\nname        %s\ndescription %s\ncreated     %s\nsize        %s (%d bytes)\nobjects     %d holding %s\nwriter      %s\nowner       %s\nchain       %s\nencryption  %s\n",
		b.ID, b.VolumeID, b.Name, b.Description, b.CreatedAt.UTC().Format(time.RFC3339), bytesText(b.Size), b.Size,
		b.Objects, bytesText(b.DataBytes), b.Writer, b.Owner, strings.Join(ids, " <- "), encryption)
	out.result(doc, text.String())
	return nil
}

func cmdVerify(ctx context.Context, args []string, out *output) error {
	var b oneBackup
	var chain bool
	err := b.open(ctx, "verify", "verify", args, out, func(fs *flag.FlagSet) {
		fs.BoolVar(&chain, "chain", true, "verify every backup it depends on too")
	})
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.engine.Verify(ctx, b.id, backup.VerifyOptions{Chain: chain, Progress: out.progress(b.progress)})
	out.endProgress()
	if err != nil {
		return err
	}
	faults := make([]string, len(rep.Faults))
	var text strings.Builder
	for i, f := range rep.Faults {
		faults[i] = f.String()
		fmt.Fprintf(&text, "FAULT %s\n", f)
	}
	for _, id := range rep.KeyMissing {
		fmt.Fprintf(&text, "NOTE backup %s is encrypted and no key was given: only its stored bytes were checked (MD5), not its content\n", id)
	}
	fmt.Fprintf(&text, "verified %d backup(s), %d objects, %s: %d fault(s)\n", len(rep.Backups), rep.Objects, bytesText(rep.Bytes), len(rep.Faults))
	out.result(map[string]any{"backups": rep.Backups, "objects": rep.Objects, "bytes": rep.Bytes, "faults": faults, "ok": rep.OK(), "key_missing": nonNil(rep.KeyMissing)}, text.String())
	if !rep.OK() {
		return fmt.Errorf("%w: %d fault(s) found: %w", backup.ErrCorrupt, len(rep.Faults), errReported)
	}
	return nil
}

func cmdDelete(ctx context.Context, args []string, out *output) error {
	var b oneBackup
	var chain, foreign bool
	err := b.open(ctx, "delete", "delete", args, out, func(fs *flag.FlagSet) {
		fs.BoolVar(&chain, "chain", false, "also delete every incremental that depends on it")
		fs.BoolVar(&foreign, "allow-foreign", false, "also delete backups written by another --owner")
		b.lock.register(fs)
	})
	if err != nil {
		return err
	}
	defer b.close()
	deleted, err := b.engine.Delete(ctx, b.id, backup.DeleteOptions{Chain: chain, AllowForeign: foreign})
	if err != nil {
		return err
	}
	out.result(map[string]any{"deleted": deleted}, fmt.Sprintf("deleted %s\n", strings.Join(deleted, ", ")))
	return nil
}

// nonNil makes an empty list print as [] in JSON, not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
