package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Chain verifies every backup the given one depends on too.
	Chain bool
	// Progress, when set, receives a report every ProgressInterval (default
	// one second) and a final one.
	Progress         ProgressFunc
	ProgressInterval time.Duration
}

// Fault is one problem Verify found.
type Fault struct {
	// BackupID is the backup at fault; Object the object, if one is.
	BackupID, Object string
	// Problem says what is wrong.
	Problem string
}

func (f Fault) String() string {
	if f.Object == "" {
		return fmt.Sprintf("backup %s: %s", f.BackupID, f.Problem)
	}
	return fmt.Sprintf("backup %s: %s: %s", f.BackupID, f.Object, f.Problem)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	// Backups lists the backups checked.
	Backups []string
	// Objects and Bytes count the objects read and their uncompressed bytes.
	Objects int
	Bytes   int64
	// Faults lists every problem; none means the backups are sound.
	Faults []Fault
	// KeyMissing lists the encrypted backups checked without their key
	// (Config.Keys unset): only their object list and the MD5 of every
	// stored byte were checked, not what the bytes decrypt to.
	KeyMissing []string
}

// OK reports whether no fault was found.
func (r *VerifyReport) OK() bool { return len(r.Faults) == 0 }

// Verify reads every object of a backup and checks it, reporting each fault
// rather than stopping at the first: the object list against the store
// (missing and stray objects), each object's decompression, length and MD5,
// each block against the backup's SHA-256 manifest, and each block the backup
// does not hold against its parent's manifest (or zeros for a full backup).
// The error is for failures that stop the check itself (the target is
// unreachable, ctx is cancelled, the backup does not exist).
func (e *Engine) Verify(ctx context.Context, backupID string, o VerifyOptions) (*VerifyReport, error) {
	var list []*Info
	if o.Chain {
		chain, err := e.Chain(ctx, backupID)
		if err != nil {
			return nil, err
		}
		list = chain
	} else {
		info, err := e.Find(ctx, backupID, "")
		if err != nil {
			return nil, err
		}
		list = []*Info{info}
	}
	rep := &VerifyReport{}
	var total int64
	for _, b := range list {
		total += b.DataBytes
	}
	mt := newMeter("verify", backupID, total, o.Progress)
	stop := mt.run(ctx, o.ProgressInterval)
	var err error
	for _, b := range list {
		if err = e.verifyOne(ctx, b, rep, mt); err != nil {
			break
		}
	}
	stop(err == nil)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func (e *Engine) verifyOne(ctx context.Context, b *Info, rep *VerifyReport, mt *meter) error {
	rep.Backups = append(rep.Backups, b.ID)
	fault := func(object, format string, args ...any) {
		rep.Faults = append(rep.Faults, Fault{BackupID: b.ID, Object: object, Problem: fmt.Sprintf(format, args...)})
	}
	if err := e.unlock(ctx, b); errors.Is(err, ErrKeyRequired) {
		rep.KeyMissing = append(rep.KeyMissing, b.ID)
		return e.verifyStored(ctx, b, rep, mt)
	} else if err != nil {
		return err
	}
	m, err := e.manifest(ctx, b)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			fault(b.loc.shaName(), "%v", err)
			return nil
		}
		return err
	}
	var parentHashes []sha.Hash
	if b.ParentID != "" {
		parent, err := e.findRelated(ctx, b.ParentID, b.VolumeID)
		if err == nil {
			var pm *sha.Manifest
			if pm, err = e.manifest(ctx, parent); err == nil {
				parentHashes = pm.Hashes
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrKeyRequired):
			// An encrypted parent without its key: its blocks go unchecked.
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
			fault("", "its parent %s cannot be read, so it cannot be restored: %v", b.ParentID, err)
		default:
			return err
		}
	}
	if got := sha.Blocks(b.Size, m.BlockSize); b.ours && got != len(m.Hashes) {
		fault(b.loc.shaName(), "the manifest has %d blocks, the %d-byte source has %d", len(m.Hashes), b.Size, got)
	}
	missing, stray, err := e.objectList(ctx, b)
	if err != nil {
		return err
	}
	for _, n := range missing {
		fault(n, "missing from the target")
	}
	for _, n := range stray {
		fault(n, "stray object carrying the backup's prefix (Cinder refuses to restore the backup while it is there)")
	}

	// Read and check the objects in parallel. The exact size matters only
	// for a short last block; Cinder records none, but then an object that
	// holds the last block ends where the source does.
	size := int64(len(m.Hashes)) * int64(m.BlockSize)
	if b.ours || sha.Blocks(b.Size, m.BlockSize) == len(m.Hashes) {
		size = b.Size
	}
	checker := newBlockChecker(m.Hashes, m.BlockSize, size)
	var covered spanSet
	var mu sync.Mutex
	work := make(chan ObjectMeta)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	missingSet := map[string]bool{}
	for _, n := range missing {
		missingSet[n] = true
	}
	for range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []byte
			for obj := range work {
				data, stored, err := e.readObject(ctx, b, obj, out, true)
				if data != nil {
					out = data
				}
				if err == nil {
					if obj.Offset%int64(m.BlockSize) != 0 {
						err = fmt.Errorf("%w: offset %d is not a multiple of the block size %d", ErrCorrupt, obj.Offset, m.BlockSize)
					} else if obj.End() > checker.size {
						err = fmt.Errorf("%w: it ends at byte %d, past the %d blocks of the manifest", ErrCorrupt, obj.End(), len(m.Hashes))
					} else {
						err = checker.check(obj.Offset, obj.Length, data, "the object")
					}
				}
				mu.Lock()
				rep.Objects++
				rep.Bytes += obj.Length
				if err != nil {
					if ctx.Err() != nil {
						mu.Unlock()
						continue
					}
					if !errors.Is(err, ErrCorrupt) {
						mu.Unlock()
						cancel(err) // the target failed: stop
						continue
					}
					rep.Faults = append(rep.Faults, Fault{BackupID: b.ID, Object: b.loc.full(obj.Name), Problem: trimCorrupt(err)})
				}
				mu.Unlock()
				mt.done.Add(obj.Length)
				mt.stored.Add(stored)
				mt.count.Add(1)
			}
		}()
	}
	for _, obj := range b.Metadata.Objects {
		covered.add(span{obj.Offset, obj.End()})
		if missingSet[b.loc.full(obj.Name)] {
			continue
		}
		select {
		case work <- obj:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}

	// Blocks no object holds must be what they were before: zeros in a full
	// backup, the parent's data in an incremental.
	blockSize := int64(m.BlockSize)
	for _, g := range covered.missing(span{0, size}) {
		for blk := g.Start / blockSize; blk*blockSize < g.End; blk++ {
			want := m.Hashes[blk]
			switch {
			case b.ParentID == "":
				if want != checker.zeroHash && want != sha.ZeroHash(int(checker.blockEnd(blk)-blk*blockSize)) {
					fault("", "block %d holds data by the manifest, but no object stores it", blk)
				}
			case parentHashes != nil:
				if blk >= int64(len(parentHashes)) || parentHashes[blk] != want {
					fault("", "block %d changed since the parent, but no object stores it", blk)
				}
			}
		}
	}
	sort.SliceStable(rep.Faults, func(i, j int) bool { return rep.Faults[i].Object < rep.Faults[j].Object })
	return nil
}

// trimCorrupt drops the sentinel's words from a fault message: the report
// already says the backup is at fault.
func trimCorrupt(err error) string {
	return strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": ")
}

// objectList compares the objects stored under a backup's prefix with those
// its metadata names.
func (e *Engine) objectList(ctx context.Context, info *Info) (missing, stray []string, err error) {
	want := make(map[string]bool, len(info.Metadata.Objects))
	for _, o := range info.Metadata.Objects {
		want[info.loc.full(o.Name)] = true
	}
	meta, shaName := info.loc.metadataName(), info.loc.shaName()
	err = e.t.List(ctx, info.loc.listPrefix(), func(o target.Info) error {
		switch {
		case o.Name == meta || o.Name == shaName:
		case want[o.Name]:
			delete(want, o.Name)
		default:
			stray = append(stray, o.Name)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the objects of backup %s: %w", info.ID, err)
	}
	for n := range want {
		missing = append(missing, n)
	}
	sort.Strings(missing)
	return missing, stray, nil
}
