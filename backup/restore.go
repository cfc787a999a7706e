package backup

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/chunkback/chunkback/compress"
	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/sha"
	"github.com/chunkback/chunkback/target"
)

// RestoreOptions tunes a restore. The zero value is right for most callers.
type RestoreOptions struct {
	// DestinationZeroed promises that the destination reads as zeros where
	// the backup holds none (a new thin volume, a new sparse file), so gaps
	// are skipped instead of written with zeros. An empty regular file is
	// detected as zeroed without this.
	DestinationZeroed bool
	// VerifyMD5 also checks each object read against the MD5 its _metadata
	// records. Restore checks every byte it writes against the top backup's
	// SHA-256 manifest whatever this says (and fails, naming the object, on
	// any difference), so the MD5 adds only the cost of hashing each object
	// a second time (a third of a zlib restore's CPU); Verify always checks
	// both.
	VerifyMD5 bool
	// Progress, when set, receives a report every ProgressInterval (default
	// one second) and a final one.
	Progress         ProgressFunc
	ProgressInterval time.Duration
}

// Discarder is implemented by restore destinations that can drop a range
// of bytes so that it reads as zeros without writing them (a thin volume's
// discard or TRIM, a file's hole punch). When the destination may hold old
// data (RestoreOptions.DestinationZeroed is false), Restore discards the
// ranges the backup holds no data for instead of writing zeros there.
type Discarder interface {
	Discard(offset, length int64) error
}

// RestoreResult describes a restore that completed.
type RestoreResult struct {
	// Chain is the backups applied, the full one first.
	Chain []*Info
	// Size is the number of bytes restored: the source's size.
	Size int64
	// ObjectsRead counts the objects read; ObjectsSkipped those not read
	// because newer backups of the chain replace all their data.
	ObjectsRead, ObjectsSkipped int
	// BytesRead counts stored (compressed) bytes read from the target.
	BytesRead int64
	// ZeroBytes counts bytes of the source that no object holds (zeros).
	ZeroBytes int64
	// Duration is the wall time of the restore.
	Duration time.Duration
}

// piece is a part of an object that ends up in the restored image.
type piece struct {
	objOff, dstOff, length int64
}

// restoreObject is one object to read, with the pieces of it that survive.
type restoreObject struct {
	info   *Info
	meta   ObjectMeta
	pieces []piece
}

// Restore writes the backup backupID, with its whole chain, into dst.
//
// The result has exactly the source's size: a regular file is truncated or
// extended to it; any other destination (a block device) must be at least
// that large. Each byte is written once, from the newest backup that holds
// it; objects that newer backups replace entirely are not read. Every object
// is checked for its length after decompression, and every block written
// against the top backup's SHA-256 manifest (and each object against its MD5
// with RestoreOptions.VerifyMD5): a restore either returns nil with the
// source's exact bytes, or an error wrapping ErrCorrupt that names the object
// or block at fault.
func (e *Engine) Restore(ctx context.Context, backupID string, dst io.WriterAt, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	if dst == nil {
		return nil, fmt.Errorf("%w: destination is nil", ErrInvalidOptions)
	}
	chain, err := e.Chain(ctx, backupID)
	if err != nil {
		return nil, err
	}
	// A missing or wrong key is one error, before any object is read.
	if err := e.unlockAll(ctx, chain); err != nil {
		return nil, err
	}
	top := chain[len(chain)-1]
	m, err := e.manifest(ctx, top)
	if err != nil {
		return nil, err
	}
	size, plan, gaps, err := e.planRestore(ctx, chain, m)
	if err != nil {
		return nil, err
	}
	zeroed, err := prepareDestination(dst, size, o.DestinationZeroed)
	if err != nil {
		return nil, err
	}

	res := &RestoreResult{Chain: chain, Size: size}
	checker := newBlockChecker(m.Hashes, m.BlockSize, size)
	mt := newMeter("restore", backupID, size, o.Progress)
	stop := mt.run(ctx, o.ProgressInterval)
	err = e.runRestore(ctx, plan, gaps, dst, zeroed, o.VerifyMD5, checker, mt, res)
	if err == nil {
		err = checker.incomplete()
	}
	if err == nil {
		if s, ok := dst.(interface{ Sync() error }); ok {
			if serr := s.Sync(); serr != nil {
				err = fmt.Errorf("%w: flushing: %w", ErrDestination, serr)
			}
		}
	}
	stop(err == nil)
	if err != nil {
		return nil, err
	}
	res.BytesRead = mt.stored.Load()
	res.Duration = time.Since(start)
	return res, nil
}

// planRestore works out the source's size, which part of which object lands
// where (the newest layer wins), and the gaps no object covers.
func (e *Engine) planRestore(ctx context.Context, chain []*Info, m *sha.Manifest) (int64, []*restoreObject, []span, error) {
	top := chain[len(chain)-1]
	size := top.Size
	if !top.ours {
		// Cinder records no exact size; its full backup covers the whole
		// volume, so the furthest object end is the size.
		for _, b := range chain {
			size = max(size, b.Size)
		}
	}
	if got := sha.Blocks(size, m.BlockSize); got != len(m.Hashes) {
		return 0, nil, nil, fmt.Errorf("%w: backup %s: its SHA-256 manifest has %d blocks of %d bytes, but the source is %d bytes (%d blocks)", ErrCorrupt, top.ID, len(m.Hashes), m.BlockSize, size, got)
	}
	var covered spanSet
	var plan []*restoreObject
	for i := len(chain) - 1; i >= 0; i-- {
		b := chain[i]
		if err := e.checkObjectList(ctx, b); err != nil {
			return 0, nil, nil, err
		}
		for _, obj := range b.Metadata.Objects {
			if obj.End() > size {
				return 0, nil, nil, fmt.Errorf("%w: backup %s: object %s ends at byte %d, past the source's end (%d)", ErrCorrupt, b.ID, obj.Name, obj.End(), size)
			}
			ro := &restoreObject{info: b, meta: obj}
			for _, s := range covered.missing(span{obj.Offset, obj.End()}) {
				ro.pieces = append(ro.pieces, piece{objOff: s.Start - obj.Offset, dstOff: s.Start, length: s.End - s.Start})
			}
			plan = append(plan, ro)
		}
		for _, obj := range b.Metadata.Objects {
			covered.add(span{obj.Offset, obj.End()})
		}
	}
	return size, plan, covered.missing(span{0, size}), nil
}

// prepareDestination sizes the destination and reports whether it reads as
// zeros.
func prepareDestination(dst io.WriterAt, size int64, zeroed bool) (bool, error) {
	if f, ok := dst.(interface {
		Stat() (fs.FileInfo, error)
		Truncate(int64) error
	}); ok {
		fi, err := f.Stat()
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrDestination, err)
		}
		if fi.Mode().IsRegular() {
			if fi.Size() == 0 {
				zeroed = true // a new file: extending it reads as zeros
			}
			if err := f.Truncate(size); err != nil {
				return false, fmt.Errorf("%w: sizing it to %d bytes: %w", ErrDestination, size, err)
			}
			return zeroed, nil
		}
	}
	if s, ok := dst.(io.Seeker); ok {
		end, err := s.Seek(0, io.SeekEnd)
		if err != nil {
			return false, fmt.Errorf("%w: measuring it: %w", ErrDestination, err)
		}
		if end < size {
			return false, fmt.Errorf("%w: it holds %d bytes but the backup needs %d: restore onto a volume of at least %d bytes", ErrDestination, end, size, size)
		}
	}
	return zeroed, nil
}

// runRestore reads the planned objects in parallel and writes their pieces,
// then fills and checks the gaps.
func (e *Engine) runRestore(ctx context.Context, plan []*restoreObject, gaps []span, dst io.WriterAt, zeroed, verifyMD5 bool, checker *blockChecker, mt *meter, res *RestoreResult) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wb := newWriteback(dst)
	defer wb.stop()
	work := make(chan *restoreObject)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []byte
			for ro := range work {
				var err error
				out, err = e.restoreOne(ctx, ro, dst, wb, verifyMD5, checker, mt, out)
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, ro := range plan {
			if len(ro.pieces) == 0 {
				mu.Lock()
				res.ObjectsSkipped++
				mu.Unlock()
				continue
			}
			select {
			case work <- ro:
				mu.Lock()
				res.ObjectsRead++
				mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	// Gaps are zeros: check them against the manifest (and discard them, or
	// write zeros, when the destination may hold old data) while the
	// workers run.
	discarder, canDiscard := dst.(Discarder)
	gapErr := func() error {
		var zeros []byte
		for _, g := range gaps {
			res.ZeroBytes += g.End - g.Start
			if err := checker.check(g.Start, g.End-g.Start, nil, "a range no object holds (a zero extent)"); err != nil {
				return err
			}
			if !zeroed && canDiscard {
				if err := discarder.Discard(g.Start, g.End-g.Start); err != nil {
					return fmt.Errorf("%w: discarding %d bytes at byte %d: %w", ErrDestination, g.End-g.Start, g.Start, err)
				}
			} else if !zeroed {
				if zeros == nil {
					zeros = make([]byte, 1<<20)
				}
				for off := g.Start; off < g.End; off += int64(len(zeros)) {
					if err := ctx.Err(); err != nil {
						return err
					}
					n := min(int64(len(zeros)), g.End-off)
					if _, err := dst.WriteAt(zeros[:n], off); err != nil {
						return fmt.Errorf("%w: writing at byte %d: %w", ErrDestination, off, err)
					}
				}
			}
			mt.done.Add(g.End - g.Start)
		}
		return nil
	}()
	if gapErr != nil {
		cancel(gapErr)
	}
	wg.Wait()
	return context.Cause(ctx)
}

// restoreOne reads one object, checks it and writes its pieces. out is the
// worker's reusable buffer.
func (e *Engine) restoreOne(ctx context.Context, ro *restoreObject, dst io.WriterAt, wb *writeback, verifyMD5 bool, checker *blockChecker, mt *meter, out []byte) ([]byte, error) {
	data, stored, err := e.readObject(ctx, ro.info, ro.meta, out, verifyMD5)
	if data != nil {
		out = data
	}
	if err != nil {
		return out, err
	}
	mt.stored.Add(stored)
	mt.changed.Add(int64(len(data)))
	mt.count.Add(1)
	source := fmt.Sprintf("object %s of backup %s", ro.meta.Name, ro.info.ID)
	for _, p := range ro.pieces {
		chunk := data[p.objOff : p.objOff+p.length]
		if err := checker.check(p.dstOff, p.length, chunk, source); err != nil {
			return out, err
		}
		if _, err := dst.WriteAt(chunk, p.dstOff); err != nil {
			return out, fmt.Errorf("%w: writing at byte %d: %w", ErrDestination, p.dstOff, err)
		}
		wb.start(p.dstOff, p.length)
		mt.done.Add(p.length)
	}
	return out, nil
}

// readObject fetches one data object, opening it as it arrives in an
// encrypted backup and decompressing it into out (reused when large enough),
// and checks its length and, if checkMD5, its MD5 (of the stored bytes in an
// encrypted backup). It returns the data (nil with out unused on some
// errors) and the number of stored bytes read. Only the decompressed object
// is held in memory, never the stored one as well.
func (e *Engine) readObject(ctx context.Context, b *Info, obj ObjectMeta, out []byte, checkMD5 bool) (data []byte, stored int64, err error) {
	name := b.loc.full(obj.Name)
	codec, err := compress.ForMetadata(obj.Compression)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: object %s of backup %s: %w", ErrCorrupt, name, b.ID, err)
	}
	if obj.Length > maxObjectLength {
		return nil, 0, fmt.Errorf("%w: object %s of backup %s: length %d is larger than any object chunkback or Cinder writes", ErrCorrupt, name, b.ID, obj.Length)
	}
	rc, err := e.openStored(ctx, b, obj)
	if err != nil {
		if errors.Is(err, target.ErrNotFound) {
			return nil, 0, fmt.Errorf("%w: object %s of backup %s is missing", ErrCorrupt, name, b.ID)
		}
		return nil, 0, fmt.Errorf("reading %s: %w", name, err)
	}
	defer rc.Close()
	// A stored object is never longer than its data (plus the sealing
	// overhead): Cinder and chunkback store it raw when compression does not
	// make it smaller. So a damaged store cannot make a restore read more
	// than one byte past that.
	limit := b.storedLimit(obj) + 1
	body := &boundedReader{r: rc, left: limit}
	src, sealed, storedMD5, err := b.unseal(body, obj, checkMD5)
	if err != nil {
		return nil, 0, err
	}
	// Every byte a caller uses is checked afterwards, against the
	// manifest's SHA-256 of its block or the object's MD5, so the codec's
	// own checksum is not computed as well.
	data, err = compress.DecompressFromUnchecked(codec, out, src, int(obj.Length))
	if err == nil && sealed {
		// Open to the end: the last segment authenticates that nothing
		// was cut off or added.
		_, err = io.Copy(io.Discard, src)
	}
	if errors.Is(err, compress.ErrCorrupt) {
		// Say why, when it is that the object is too long.
		if _, derr := io.Copy(io.Discard, body); errors.Is(derr, errTooLong) {
			err = derr
		}
	}
	stored = limit - body.left
	switch {
	case errors.Is(err, errTooLong):
		return data, stored, fmt.Errorf("%w: %s of backup %s holds more than the %d bytes of its data", ErrCorrupt, name, b.ID, obj.Length)
	case errors.Is(err, crypt.ErrAuth):
		return data, stored, fmt.Errorf("%w: object %s of backup %s does not decrypt: %w", ErrCorrupt, name, b.ID, err)
	case errors.Is(err, compress.ErrCorrupt):
		return data, stored, fmt.Errorf("%w: object %s of backup %s: %w", ErrCorrupt, name, b.ID, err)
	case err != nil:
		return data, stored, fmt.Errorf("reading %s: %w", name, err)
	}
	// A sealed object was authenticated as it opened, which is stronger than
	// an MD5; the MD5 of its stored bytes is checked only when asked for.
	if sealed && checkMD5 {
		if sum := hex.EncodeToString(storedMD5.Sum(nil)); sum != obj.MD5 {
			return data, stored, fmt.Errorf("%w: object %s of backup %s: MD5 %s of its stored (encrypted) bytes does not match the metadata's %s", ErrCorrupt, name, b.ID, sum, obj.MD5)
		}
	} else if !sealed && checkMD5 {
		sum := md5.Sum(data)
		if hex.EncodeToString(sum[:]) != obj.MD5 {
			return data, stored, fmt.Errorf("%w: object %s of backup %s: MD5 %x does not match the metadata's %s", ErrCorrupt, name, b.ID, sum, obj.MD5)
		}
	}
	return data, stored, nil
}

// maxObjectLength is the largest object length a restore accepts from
// metadata: BackupOptions.ObjectSize's limit, well above Cinder's largest
// default (the posix driver's 1999994880).
const maxObjectLength = 1<<31 - 1

// openStored opens the stored bytes of one data object: the one place
// restore and verify read data objects from the target.
func (e *Engine) openStored(ctx context.Context, b *Info, obj ObjectMeta) (io.ReadCloser, error) {
	return e.t.Get(ctx, b.loc.full(obj.Name), 0, -1)
}

// errTooLong is boundedReader's error for a body longer than its limit.
var errTooLong = errors.New("stored object longer than its data")

// boundedReader reads at most left bytes and fails with errTooLong
// rather than reading more.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Is there more? One byte past the limit is an error.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, errTooLong
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
