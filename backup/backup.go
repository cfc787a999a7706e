package backup

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/chunkback/chunkback/chunk"
	"github.com/chunkback/chunkback/compress"
	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/internal/pages"
	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
)

// Result describes a backup that completed.
type Result struct {
	// Info describes the new backup as a later List would.
	Info *Info
	// Full is true for a full backup.
	Full bool
	// FallbackReason says why a requested incremental became a full backup
	// (BackupOptions.FallbackToFull), or is empty.
	FallbackReason string
	// BytesRead counts source bytes read (with BackupOptions.Changed, only
	// the blocks it touches); BytesChanged the uncompressed bytes
	// stored; BytesStored the bytes written to the target for data objects.
	BytesRead, BytesChanged, BytesStored int64
	// Objects is the number of data objects stored.
	Objects int
	// Duration is the wall time of the backup.
	Duration time.Duration
	// Resumed is true when the backup continued a partial one
	// (BackupOptions.Resume). ObjectsReused counts the objects it found
	// already stored and did not store again (they count in Objects), and
	// BytesReused their uncompressed bytes.
	Resumed       bool
	ObjectsReused int
	BytesReused   int64
	// Warnings report what the backup left alone or could not tidy up:
	// backups of other owners in the volume (see Config.Owner), a lock
	// that could not be removed.
	Warnings []string
}

// minZeroGap is the shortest run of zero blocks a full backup leaves out:
// shorter runs inside data compress to almost nothing, and cutting objects
// around them would make many small objects.
const minZeroGap = 1 << 20

// Backup reads src to its end and stores it as a new backup. A full backup is
// made unless o.ParentID or o.Incremental asks for an incremental.
//
// The backup is complete when Backup returns nil. On any error, including
// cancellation through ctx, no _metadata is written and the objects already
// stored are deleted (best effort), so nothing looks like a backup; a
// Resumable backup keeps them for Resume instead (resume.go).
//
// The backup holds the volume's lock while it runs (Config.Lock): another
// writer's backup or delete of the volume fails with ErrLocked meanwhile.
func (e *Engine) Backup(ctx context.Context, src io.Reader, o BackupOptions) (*Result, error) {
	newID := o.BackupID == "" // a new UUID: no partial backup can have it
	o, err := o.normalized(e.naming.layout == target.LayoutPosix, e.naming.container != "")
	if err != nil {
		return nil, err
	}
	var res *Result
	err = e.withVolumeLock(ctx, o.VolumeID, "backup", func(ctx context.Context) error {
		res, err = e.backup(ctx, src, o, newID)
		return err
	})
	if rel := (*lockReleaseError)(nil); errors.As(err, &rel) && res != nil {
		res.Warnings, err = append(res.Warnings, rel.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// backup is Backup under the volume's lock.
// o is normalized; newID says its BackupID was made up by normalized.
func (e *Engine) backup(ctx context.Context, src io.Reader, o BackupOptions, newID bool) (*Result, error) {
	start := time.Now()
	codec, err := compress.New(o.Compression, compress.Options{Level: o.CompressionLevel})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if src == nil {
		return nil, fmt.Errorf("%w: source is nil", ErrInvalidOptions)
	}
	src, size, err := sourceSize(src, o.Size)
	if err != nil {
		return nil, err
	}
	seal, err := e.newSealer(ctx, o.BackupID)
	if err != nil {
		return nil, err
	}
	if _, err := e.Find(ctx, o.BackupID, o.VolumeID); err == nil && o.Resume {
		return nil, fmt.Errorf("%w: backup %s is complete: there is nothing to resume", ErrExists, o.BackupID)
	} else if err == nil {
		return nil, fmt.Errorf("%w: backup %s is already on the target: choose another backup ID", ErrExists, o.BackupID)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	jr, err := e.resumable(ctx, &o, codec.Name(), newID)
	if err != nil {
		return nil, err
	}
	if err := jr.checkKey(o.BackupID, seal.keyID()); err != nil {
		return nil, err
	}

	res := &Result{Full: true}
	var parent *Info
	var parentHashes []sha.Hash
	if o.ParentID != "" || o.Incremental {
		parent, parentHashes, err = e.parentFor(ctx, o, size, res)
		if err != nil {
			if !o.FallbackToFull || !errors.Is(err, ErrParentUnusable) {
				return nil, err
			}
			res.FallbackReason = err.Error()
			parent = nil
		} else {
			res.Full = false
		}
	}

	var extents []chunk.Extent
	holes := false
	if parent != nil && o.Changed != nil {
		if extents, err = changedExtents(src, size, parent.Size, o); err != nil {
			return nil, err
		}
	} else if !o.ReadHoles {
		if extents = dataExtents(src, size); extents != nil {
			holes = true
			extents = append(extents, lastBlock(size, o.BlockSize))
		}
	}

	at := e.now()
	if jr != nil {
		at = jr.startTime(at)
	}
	run := &backupRun{
		e: e, o: o, codec: codec, seal: seal,
		loc:          e.naming.newLocation(o.VolumeID, o.BackupID, at),
		parentHashes: parentHashes,
		full:         parent == nil,
		extents:      extents,
		holes:        holes,
		contentMD5:   target.UsesContentMD5(e.t),
		meter:        newMeter("backup", o.BackupID, size, o.Progress),
		journal:      jr,
	}
	if jr != nil {
		parentID := ""
		if parent != nil {
			parentID = parent.ID
		}
		if err := jr.start(ctx, run.loc, at, o, codec.Name(), parentID, size, res); err != nil {
			return nil, err
		}
	}
	stop := run.meter.run(ctx, o.ProgressInterval)
	err = run.store(ctx, src, size)
	if err == nil && jr != nil {
		err = jr.dropStrays(ctx, run.objects)
	}
	if err == nil {
		err = run.finish(ctx, parent, at)
	}
	stop(err == nil)
	if err != nil && jr != nil {
		return nil, jr.keep(ctx, err)
	}
	if err != nil {
		run.cleanup(ctx)
		return nil, err
	}
	if jr != nil {
		jr.finished(ctx)
		jr.result(res)
	}
	info, err := e.load(ctx, run.loc, o.BackupID)
	if err != nil {
		return nil, fmt.Errorf("reading back the new backup: %w", err)
	}
	res.Info = info
	res.BytesRead = run.bytesRead
	res.BytesChanged = run.meter.changed.Load()
	res.BytesStored = run.meter.stored.Load()
	res.Objects = len(run.objects)
	res.Duration = time.Since(start)
	return res, nil
}

// parentFor finds and checks the parent of an incremental, and reads its
// block hashes. Every reason the parent cannot be used wraps
// ErrParentUnusable. The latest backup is the latest not of another owner;
// the ones skipped are reported in res.Warnings.
func (e *Engine) parentFor(ctx context.Context, o BackupOptions, size int64, res *Result) (*Info, []sha.Hash, error) {
	var parent *Info
	if o.ParentID == "" {
		all, err := e.List(ctx, o.VolumeID)
		if err != nil {
			return nil, nil, err
		}
		var warnings []string
		parent, warnings = e.latestOwnBackup(all)
		res.Warnings = append(res.Warnings, warnings...)
		if parent == nil {
			return nil, nil, fmt.Errorf("%w: volume %s has no backup of owner %s to base an incremental on: do a full backup first", ErrParentUnusable, o.VolumeID, e.owner)
		}
	} else {
		p, err := e.findRelated(ctx, o.ParentID, o.VolumeID)
		if err != nil {
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
				return nil, nil, fmt.Errorf("%w: parent %s: %w", ErrParentUnusable, o.ParentID, err)
			}
			return nil, nil, err
		}
		parent = p
		if e.foreign(p) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("parent %s was written by owner %s, not %s: its owner may delete it, which would break this incremental", p.ID, p.Owner, e.owner))
		}
	}
	if parent.VolumeID != o.VolumeID {
		return nil, nil, fmt.Errorf("%w: parent %s is a backup of volume %s, not %s", ErrParentUnusable, parent.ID, parent.VolumeID, o.VolumeID)
	}
	m, err := e.manifest(ctx, parent)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, nil, fmt.Errorf("%w: parent %s: %w", ErrParentUnusable, parent.ID, err)
		}
		return nil, nil, err
	}
	if m.BlockSize != o.BlockSize {
		return nil, nil, fmt.Errorf("%w: hash block size has changed from the parent's %d to %d bytes: use --block-size %d, or do a full backup", ErrParentUnusable, m.BlockSize, o.BlockSize, m.BlockSize)
	}
	if size >= 0 && sha.Blocks(size, o.BlockSize) > len(m.Hashes) {
		return nil, nil, fmt.Errorf("%w: the source grew to %d bytes, past the %d blocks of parent %s: do a full backup", ErrParentUnusable, size, len(m.Hashes), parent.ID)
	}
	return parent, m.Hashes, nil
}

// changedExtents checks that an incremental limited to o.Changed can read
// the source at random, and adds what must be read whatever changed: the
// last block (a short block's hash depends on the source's length) and
// everything past the parent's end.
func changedExtents(src io.Reader, size, parentSize int64, o BackupOptions) ([]chunk.Extent, error) {
	if _, ok := src.(io.ReaderAt); !ok || size < 0 {
		return nil, fmt.Errorf("%w: Changed extents need a source that implements io.ReaderAt, with a known size (set Size)", ErrInvalidOptions)
	}
	extents := slices.Clone(o.Changed)
	if size > 0 {
		extents = append(extents, lastBlock(size, o.BlockSize))
	}
	if from := parentSize / int64(o.BlockSize) * int64(o.BlockSize); from < size {
		extents = append(extents, chunk.Extent{Offset: from, Length: size - from})
	}
	return extents, nil
}

// lastBlock is the source's last block, which an incremental or a sparse
// read always reads: its hash covers exactly the source's end (size > 0).
func lastBlock(size int64, blockSize int) chunk.Extent {
	last := (size - 1) / int64(blockSize) * int64(blockSize)
	return chunk.Extent{Offset: last, Length: size - last}
}

// sourceSize settles the source's size: as given, or measured by seeking.
// Parallel reads with ReadAt start at offset 0, so a source positioned
// elsewhere is read sequentially from where it is.
func sourceSize(src io.Reader, given int64) (io.Reader, int64, error) {
	if given != 0 {
		return src, given, nil
	}
	s, ok := src.(io.Seeker)
	if !ok {
		return src, -1, nil
	}
	cur, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return struct{ io.Reader }{src}, -1, nil // a pipe or a socket
	}
	end, err := s.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, fmt.Errorf("measuring the source: %w", err)
	}
	if _, err := s.Seek(cur, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("measuring the source: %w", err)
	}
	if cur != 0 {
		src = struct{ io.Reader }{src}
	}
	return src, end - cur, nil
}

// backupRun is the state of one backup in progress.
type backupRun struct {
	e            *Engine
	o            BackupOptions
	codec        compress.Codec
	seal         *sealer // nil: stored in the clear
	loc          location
	parentHashes []sha.Hash
	full         bool
	extents      []chunk.Extent // the only ranges to read, or nil
	holes        bool           // outside extents are holes (zeros), not unchanged blocks
	contentMD5   bool           // the target uses PutOptions.ContentMD5
	meter        *meter
	journal      *journal // a Resumable backup's, or nil
	outputShare  int      // the bytes of output a worker may hold beside its input

	hashes    []sha.Hash
	objects   []*ObjectMeta // in creation (= source) order
	size      int64
	bytesRead int64

	mu       sync.Mutex
	written  []string // target names stored, for cleanup
	conflict bool     // another writer stores this same backup: cleanup must not touch it
}

// job is one extent to store: blocks [run.Start, run.End) of a chunk.
type job struct {
	chunk *sharedChunk
	run   sha.Run
	obj   *ObjectMeta
}

// sharedChunk releases its buffer when the last extent no longer needs it.
type sharedChunk struct {
	*chunk.Chunk
	mu   sync.Mutex
	refs int
}

func (c *sharedChunk) done() {
	c.mu.Lock()
	c.refs--
	last := c.refs == 0
	c.mu.Unlock()
	if last {
		c.Release()
	}
}

// store reads, hashes and stores the data objects.
func (r *backupRun) store(ctx context.Context, src io.Reader, size int64) error {
	bs := r.o.BlockSize
	// Memory: the chunker's buffers plus, per worker, a compression output
	// of at most r.outputShare bytes (see outputShare). With a codec, compression is
	// so much slower than reading and hashing that read-ahead buys nothing
	// (measured: the same MB/s), so one buffer per worker; without one, a
	// chunk of read-ahead overlaps hashing with storing. A second one was
	// measured to buy nothing either (1 GiB, 2 cores, 5 runs: 622 against
	// 634 MB/s, within the noise) for 50 MiB more: the peak stays within
	// (workers + 2) x object size, the Go runtime included.
	buffers := r.e.workers + 1
	if r.codec.Name() != "none" {
		buffers = r.e.workers
	}
	r.outputShare = outputShare(r.e.workers, int(r.o.ObjectSize), r.codec, r.seal != nil)
	ck, err := chunk.New(ctx, src, chunk.Config{
		ObjectSize: int(r.o.ObjectSize), BlockSize: bs, Size: size, Workers: r.e.workers, Buffers: buffers,
		Extents: r.extents, ZeroOutside: r.holes,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	defer ck.Close()
	if size > 0 {
		r.hashes = make([]sha.Hash, 0, sha.Blocks(size, bs))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, r.e.workers)
	var wg sync.WaitGroup
	for range r.e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var bufs extentBuffers
			for j := range jobs {
				if ctx.Err() != nil {
					j.chunk.done()
					continue
				}
				if err := r.storeExtent(ctx, j, &bufs); err != nil {
					cancel(err)
				}
			}
		}()
	}

	minGap := max(1, minZeroGap/bs)
	number := 0
	var storedEnd int64 // end of the last extent queued
	queue := func(shared *sharedChunk, run sha.Run) error {
		number++
		start := int64(run.Start * bs)
		end := min(int64(run.End*bs), int64(len(shared.Data)))
		obj := &ObjectMeta{Name: r.loc.objectName(number), Offset: shared.Offset + start, Length: end - start}
		r.objects = append(r.objects, obj)
		storedEnd = obj.End()
		select {
		case jobs <- job{chunk: shared, run: run, obj: obj}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	dispatch := func() error {
		for {
			ch, err := ck.Next()
			if err == io.EOF {
				// Cinder restores by seeking and writing, never sizing the
				// file: a full backup always stores the last block, so a
				// source ending in zeros restores to its full length there.
				total := ck.BytesCovered()
				if r.full && total > 0 && storedEnd < total {
					last := sha.Blocks(total, bs) - 1
					tail := &sharedChunk{Chunk: &chunk.Chunk{Offset: int64(last) * int64(bs), Data: make([]byte, total-int64(last)*int64(bs))}, refs: 1}
					return queue(tail, sha.Run{Start: 0, End: 1})
				}
				return nil
			}
			if err != nil {
				if errors.Is(err, chunk.ErrShortSource) {
					return fmt.Errorf("%w: %w (pass the right size, or let it be detected)", ErrInvalidOptions, err)
				}
				return err
			}
			if !r.full && ch.FirstBlock+ch.Blocks() > len(r.parentHashes) {
				ch.Release()
				return fmt.Errorf("%w: the source grew past the %d blocks of its parent: do a full backup", ErrParentUnusable, len(r.parentHashes))
			}
			for i, skipped := range ch.Skipped {
				if skipped { // not in BackupOptions.Changed: as in the parent
					ch.Hashes[i] = r.parentHashes[ch.FirstBlock+i]
				}
			}
			r.hashes = append(r.hashes, ch.Hashes...)
			r.meter.done.Store(ck.BytesCovered())
			var runs []sha.Run
			switch {
			case r.full && r.o.StoreZeros:
				runs = sha.Runs(0, ch.Blocks(), 0, func(int) bool { return true })
			case r.full:
				runs = mergeRuns(sha.Runs(0, ch.Blocks(), 0, func(i int) bool { return !ch.Zero[i] }), minGap)
			default:
				runs = sha.Runs(0, ch.Blocks(), 0, func(i int) bool { return ch.Hashes[i] != r.parentHashes[ch.FirstBlock+i] })
			}
			if len(runs) == 0 {
				ch.Release()
				continue
			}
			shared := &sharedChunk{Chunk: ch, refs: len(runs)}
			for k, run := range runs {
				if err := queue(shared, run); err != nil {
					for range runs[k:] {
						shared.done()
					}
					return err
				}
			}
		}
	}
	err = dispatch()
	close(jobs)
	wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return err
	}
	r.size = ck.BytesCovered()
	r.bytesRead = ck.BytesRead()
	r.meter.done.Store(r.size)
	return nil
}

// extentBuffers are a worker's reusable buffers: the compressed and the
// sealed form of an object.
type extentBuffers struct {
	compressed, sealed []byte
}

// storeExtent compresses one extent, seals it in an encrypted backup,
// checksums it and stores it.
func (r *backupRun) storeExtent(ctx context.Context, j job, bufs *extentBuffers) error {
	released := false
	release := func() { // the chunk's bytes are no longer needed
		if !released {
			released = true
			j.chunk.done()
		}
	}
	defer release()
	bs := r.o.BlockSize
	data := j.chunk.Data[j.run.Start*bs : min(j.run.End*bs, len(j.chunk.Data))]
	var sum [md5.Size]byte
	if r.seal == nil { // an encrypted backup records the sealed bytes' MD5 instead
		sum = md5.Sum(data)
	}
	var digest string // what a resume journal recognises the data by
	if r.journal != nil {
		digest = hex.EncodeToString(sum[:])
		if r.seal != nil {
			digest = r.seal.digest(data) // keyed: no plaintext digest in the clear
		}
		if reused, err := r.journal.reuse(ctx, j.obj, digest); reused || err != nil {
			return err
		}
	}
	// Past its share of output, compression gives the pages of the input
	// it has consumed back to the OS (or gives up, and the object is
	// stored raw), so input and output together stay within the share.
	consumed := 0
	out, smaller, err := compress.CompressWithin(r.codec, bufs.compressed[:0], data, r.outputShare, func(n int) {
		pages.Release(data[consumed:n])
		consumed = n
	})
	if err != nil {
		return fmt.Errorf("compressing %s: %w", j.obj.Name, err)
	}
	bufs.compressed = out // keep the buffer even when unused: it may have grown
	defer r.trim(out)
	body, comp, storedSum := data, "none", sum[:]
	if smaller {
		body, comp, storedSum = out, r.codec.Name(), nil
		if r.contentMD5 && r.seal == nil {
			s := md5.Sum(out)
			storedSum = s[:]
		}
		release()
	}
	if r.seal != nil {
		// The metadata's md5 is then the stored bytes' (see encrypt.go).
		id := objectIdentity(r.o.VolumeID, r.o.BackupID, ObjectMeta{Name: j.obj.Name, Offset: j.obj.Offset, Length: j.obj.Length, Compression: comp})
		bufs.sealed = crypt.Seal(bufs.sealed[:0], body, r.seal.key, id)
		defer r.trim(bufs.sealed)
		body = bufs.sealed
		release()
		sum = md5.Sum(body)
		storedSum = sum[:]
	}
	name := r.loc.full(j.obj.Name)
	err = r.e.t.Put(ctx, name, bytes.NewReader(body), int64(len(body)), target.PutOptions{ContentMD5: storedSum})
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	j.obj.Compression = comp
	j.obj.MD5 = hex.EncodeToString(sum[:])
	r.mu.Lock()
	r.written = append(r.written, name)
	r.mu.Unlock()
	r.meter.stored.Add(int64(len(body)))
	r.meter.changed.Add(int64(len(data)))
	r.meter.count.Add(1)
	if r.journal != nil {
		return r.journal.stored(ctx, j.obj, int64(len(body)), digest)
	}
	return nil
}

// outputShare is how many bytes of compressed (and sealed) output a worker
// may hold beside its object: the (workers + 2) objects a backup may hold,
// less one object per worker (its input), the encoders' state and a
// margin of half an object for the rest (hashes, metadata, garbage not yet
// collected), shared among the workers; an encrypted backup holds a sealed
// copy too, so each gets half. It is never below a quarter object: where
// the encoders alone take the rest (bz2 with 4 workers), compression still
// happens, with its state on top of the bound.
func outputShare(workers, objectSize int, codec compress.Codec, sealed bool) int {
	share := (2*objectSize - workers*compress.EncoderMemory(codec) - objectSize/2) / workers
	if sealed {
		share /= 2
	}
	return max(share, objectSize/4)
}

// trim gives back the pages of an output buffer beyond the worker's share
// once its object is stored, so that a buffer kept for reuse holds no more
// than the share between objects. It goes to the buffer's capacity: an
// output given up on leaves its buffer empty but its pages written.
func (r *backupRun) trim(buf []byte) {
	if cap(buf) > r.outputShare {
		pages.Release(buf[r.outputShare:cap(buf)])
	}
}

// mergeRuns joins runs separated by fewer than minGap blocks.
func mergeRuns(runs []sha.Run, minGap int) []sha.Run {
	if len(runs) < 2 {
		return runs
	}
	out := runs[:1]
	for _, r := range runs[1:] {
		last := &out[len(out)-1]
		if r.Start-last.End < minGap {
			last.End = r.End
			continue
		}
		out = append(out, r)
	}
	return out
}

// finish writes the _sha256file and then, last, the _metadata. Both are
// created only if absent: an existing backup is never overwritten.
func (r *backupRun) finish(ctx context.Context, parent *Info, at time.Time) error {
	created := pythonTime(at)
	m := &sha.Manifest{
		BackupDescription: strPtr(r.o.Description), BackupID: r.o.BackupID, BackupName: strPtr(r.o.Name),
		BlockSize: r.o.BlockSize, CreatedAt: created, Hashes: r.hashes, Version: sha.Version, VolumeID: r.o.VolumeID,
	}
	plain, err := m.Reader()
	if err != nil {
		return err
	}
	var body interface {
		io.ReadSeeker
		Size() int64
	} = plain
	version := FormatVersion
	var enc *EncryptionFacts
	if r.seal != nil {
		if body, err = crypt.NewSealReader(plain, plain.Size(), r.seal.key, manifestIdentity(r.o.VolumeID, r.o.BackupID)); err != nil {
			return err
		}
		version, enc = EncryptedFormatVersion, r.seal.facts
	}
	if err := r.put(ctx, r.loc.shaName(), body, body.Size()); err != nil {
		return err
	}
	extra, err := json.Marshal(map[string]Facts{"chunkback": {
		SourceSize: r.size, ObjectSize: r.o.ObjectSize, ZerosSkipped: r.full && !r.o.StoreZeros,
		SyntheticOf: r.o.syntheticOf, Encryption: enc, Owner: r.e.owner, ImmutableUntil: r.e.immutableUntil(),
	}})
	if err != nil {
		return err
	}
	meta := &Metadata{
		BackupDescription: strPtr(r.o.Description), BackupID: r.o.BackupID, BackupName: strPtr(r.o.Name),
		CreatedAt: created, Extra: extra, Version: version, VolumeID: r.o.VolumeID, VolumeMeta: r.o.VolumeMeta,
		Objects: make([]ObjectMeta, len(r.objects)),
	}
	if parent != nil {
		meta.ParentID = &parent.ID
	}
	for i, o := range r.objects {
		meta.Objects[i] = *o
	}
	data, err := meta.Encode()
	if err != nil {
		return err
	}
	if err := checkVolumeLock(ctx); err != nil { // the last look before the commit
		return err
	}
	return r.put(ctx, r.loc.metadataName(), bytes.NewReader(data), int64(len(data)))
}

func (r *backupRun) put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	err := r.e.t.Put(ctx, name, body, size, target.PutOptions{IfNotExists: true})
	if errors.Is(err, target.ErrExists) {
		// A retried create whose first reply was lost finds its own object:
		// that is success. Anything else there is another writer's.
		same, cerr := r.e.sameContent(ctx, name, body, size)
		if cerr != nil {
			return fmt.Errorf("storing %s: %w", name, cerr)
		}
		if !same {
			r.mu.Lock()
			r.conflict = true
			r.mu.Unlock()
			return fmt.Errorf("%w: %s is already on the target: another writer uses this backup ID", ErrExists, name)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	r.mu.Lock()
	r.written = append(r.written, name)
	r.mu.Unlock()
	return nil
}

// cleanup deletes what a failed backup stored: every object under its own
// prefix (which is unique to this backup: it holds the backup ID and the
// time), even objects whose Put failed after reaching the store. It runs even
// when ctx was cancelled, with a time limit of its own.
func (r *backupRun) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	r.mu.Lock()
	conflict := r.conflict
	r.mu.Unlock()
	if conflict { // the prefix is another writer's too: leave its objects alone
		return
	}
	// The metadata first: whatever else fails, nothing looks complete.
	_ = r.e.t.Delete(ctx, r.loc.metadataName())
	names := map[string]bool{}
	r.mu.Lock()
	for _, n := range r.written {
		names[n] = true
	}
	r.mu.Unlock()
	_ = r.e.t.List(ctx, r.loc.listPrefix(), func(o target.Info) error {
		if r.loc.owns(o.Name) {
			names[o.Name] = true
		}
		return nil
	})
	for n := range names {
		_ = r.e.t.Delete(ctx, n)
	}
}

// sameContent reports whether the stored object name holds exactly the size
// bytes of body (read from its start).
func (e *Engine) sameContent(ctx context.Context, name string, body io.ReadSeeker, size int64) (bool, error) {
	info, err := e.t.Stat(ctx, name)
	if err != nil || info.Size != size {
		return false, err
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	rc, err := e.t.Get(ctx, name, 0, -1)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(body, a)
		if n > 0 {
			if _, rerr := io.ReadFull(rc, b[:n]); rerr != nil || !bytes.Equal(a[:n], b[:n]) {
				return false, nil
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}
