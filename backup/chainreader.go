package backup

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/chunkback/chunkback/sha"
)

// DefaultImageCacheObjects is ImageOptions.CacheObjects' default.
const DefaultImageCacheObjects = 4

// ImageOptions tunes OpenImage. The zero value is right for most callers.
type ImageOptions struct {
	// CacheObjects is how many decompressed objects the image keeps for the
	// next reads. Default DefaultImageCacheObjects. Memory is bounded by
	// (CacheObjects + the number of ReadAt calls in progress) x the largest
	// object's length, plus each object being fetched in its stored form.
	CacheObjects int
}

// Validate checks the options.
func (o ImageOptions) Validate() error {
	if o.CacheObjects < 0 {
		return fmt.Errorf("%w: image cache of %d objects must not be negative (0 picks %d)", ErrInvalidOptions, o.CacheObjects, DefaultImageCacheObjects)
	}
	return nil
}

// Image reads the restored image of a backup, with its whole chain, without
// restoring it: an io.ReaderAt over exactly the bytes Restore would write.
// Each byte comes from the newest backup of the chain that holds it, and
// reads as zero where none does. Only the objects that hold the bytes asked
// for are read, and every block returned has been checked against the top
// backup's SHA-256 manifest: a read returns the source's bytes or an error
// wrapping ErrCorrupt that names the object at fault.
//
// An Image is safe for concurrent use. Each ReadAt works on whole blocks of
// the manifest (it reads the blocks the range touches), so reads aligned to
// the block size waste nothing, and fetches each object it needs once; a
// cache of recently used objects (ImageOptions.CacheObjects) serves the
// reads that come back to them.
type Image struct {
	e        *Engine
	ctx      context.Context
	chain    []*Info
	manifest *sha.Manifest
	size     int64
	checker  *blockChecker
	segments []segment // the data pieces, sorted by offset; the rest is zeros
	cache    *objectCache
}

// segment is a piece of an object that lands at [dstOff, dstOff+length) of
// the image.
type segment struct {
	obj *restoreObject
	piece
}

// OpenImage opens the image of backupID's chain for reading. It reads the
// chain's metadata and checks its object lists, as Restore does; objects
// are read on demand. ctx bounds every ReadAt (ReadAtContext takes its own).
func (e *Engine) OpenImage(ctx context.Context, backupID string, o ImageOptions) (*Image, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.CacheObjects == 0 {
		o.CacheObjects = DefaultImageCacheObjects
	}
	chain, err := e.Chain(ctx, backupID)
	if err != nil {
		return nil, err
	}
	m, err := e.manifest(ctx, chain[len(chain)-1])
	if err != nil {
		return nil, err
	}
	size, plan, _, err := e.planRestore(ctx, chain, m)
	if err != nil {
		return nil, err
	}
	im := &Image{
		e: e, ctx: ctx, chain: chain, manifest: m, size: size,
		checker: newBlockChecker(m.Hashes, m.BlockSize, size),
		cache:   newObjectCache(o.CacheObjects),
	}
	for _, ro := range plan {
		for _, p := range ro.pieces {
			im.segments = append(im.segments, segment{obj: ro, piece: p})
		}
	}
	sort.Slice(im.segments, func(i, j int) bool { return im.segments[i].dstOff < im.segments[j].dstOff })
	return im, nil
}

// Size returns the image's length in bytes: the source's size.
func (im *Image) Size() int64 { return im.size }

// BlockSize returns the manifest's block size, the unit every read checks.
func (im *Image) BlockSize() int { return im.manifest.BlockSize }

// Chain returns the backups the image is made of, the full one first.
func (im *Image) Chain() []*Info { return im.chain }

// ReadAt implements io.ReaderAt, bounded by the context given to OpenImage.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	return im.ReadAtContext(im.ctx, p, off)
}

// ReadAtContext reads len(p) bytes at off, as io.ReaderAt does, bounded by
// ctx: fewer only at the image's end, with io.EOF.
func (im *Image) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: image read at negative offset %d", ErrInvalidOptions, off)
	}
	if off >= im.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), im.size)
	bs := int64(im.manifest.BlockSize)
	var scratch []byte
	for pos := off; pos < end; {
		blockStart := pos / bs * bs
		if pos == blockStart && (end-pos >= bs || end == im.size) {
			// Whole blocks: read and check them in place.
			runEnd := pos + (end-pos)/bs*bs
			if end == im.size {
				runEnd = end
			}
			if err := im.readBlocks(ctx, p[pos-off:runEnd-off], pos); err != nil {
				return 0, err
			}
			pos = runEnd
			continue
		}
		// Part of a block: read the whole block aside, hand out the part.
		blockEnd := min(blockStart+bs, im.size)
		if scratch == nil {
			scratch = make([]byte, bs)
		}
		if err := im.readBlocks(ctx, scratch[:blockEnd-blockStart], blockStart); err != nil {
			return 0, err
		}
		to := min(blockEnd, end)
		copy(p[pos-off:to-off], scratch[pos-blockStart:to-blockStart])
		pos = to
	}
	if n := int(end - off); n < len(p) {
		return n, io.EOF
	}
	return len(p), nil
}

// part is where a range of a read came from, for the error that names it.
type part struct {
	end    int64
	source string // "" for zeros no object holds
}

// readBlocks fills dst with the image's bytes at off (whole blocks: off is
// a block boundary and dst ends at one or at the image's end), then checks
// each block against the manifest. Each object the range needs is fetched
// once, however its pieces interleave with newer layers'.
func (im *Image) readBlocks(ctx context.Context, dst []byte, off int64) error {
	if err := ctx.Err(); err != nil {
		return err // a range of zeros alone would never notice
	}
	end := off + int64(len(dst))
	var parts []part
	var objects []*restoreObject // in order of first use
	pieces := map[*restoreObject][]segment{}
	pos := off
	i := sort.Search(len(im.segments), func(i int) bool { return im.segments[i].dstOff+im.segments[i].length > off })
	for ; i < len(im.segments) && im.segments[i].dstOff < end; i++ {
		s := im.segments[i]
		if s.dstOff > pos {
			clear(dst[pos-off : s.dstOff-off])
			parts = append(parts, part{end: s.dstOff})
			pos = s.dstOff
		}
		// Clip the piece to the range.
		to := min(end, s.dstOff+s.length)
		s.objOff += pos - s.dstOff
		s.dstOff, s.length = pos, to-pos
		if pieces[s.obj] == nil {
			objects = append(objects, s.obj)
		}
		pieces[s.obj] = append(pieces[s.obj], s)
		parts = append(parts, part{end: to, source: fmt.Sprintf("object %s of backup %s", s.obj.meta.Name, s.obj.info.ID)})
		pos = to
	}
	if pos < end {
		clear(dst[pos-off:])
		parts = append(parts, part{end: end})
	}
	for _, ro := range objects {
		data, err := im.cache.get(ctx, ro, im.fetchObject)
		if err != nil {
			return err
		}
		for _, s := range pieces[ro] {
			copy(dst[s.dstOff-off:s.dstOff-off+s.length], data[s.objOff:s.objOff+s.length])
		}
	}

	bs := int64(im.manifest.BlockSize)
	k := 0
	for b := off; b < end; b += bs {
		for parts[k].end <= b {
			k++
		}
		bEnd := min(b+bs, end)
		data, source := dst[b-off:bEnd-off], parts[k].source
		if source == "" {
			source = "a range no object holds (a zero extent)"
			if parts[k].end >= bEnd {
				data = nil // zeros: the checker knows their hash
			}
		}
		if err := im.checker.check(b, bEnd-b, data, source); err != nil {
			return err
		}
	}
	return nil
}

// fetchObject reads one object's data, decompressed and length-checked
// (every block is checked against the manifest after). It is the image's
// only call into restore.go's object reader.
func (im *Image) fetchObject(ctx context.Context, ro *restoreObject) ([]byte, error) {
	data, _, err := im.e.readObject(ctx, ro.info, ro.meta, nil, false)
	return data, err
}
