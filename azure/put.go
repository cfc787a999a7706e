package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"golang.org/x/sync/errgroup"

	"github.com/chunkback/chunkback/target"
)

// Put implements target.Target; see the package documentation for how.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("azure: %w", err)
	}
	if opts.ContentMD5 != nil && len(opts.ContentMD5) != md5.Size {
		return fmt.Errorf("azure: put %q: PutOptions.ContentMD5 is %d bytes long, not %d: %w", name, len(opts.ContentMD5), md5.Size, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azure: put %q: %w", name, err)
	}
	if body == nil {
		body = bytes.NewReader(nil)
	}
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("azure: put %q: the body cannot seek: %v: %w", name, err, target.ErrInvalidArgument)
	}
	client := t.client.NewBlockBlobClient(t.blobName(name))
	if size <= t.cfg.SinglePutThreshold {
		return t.putSingle(ctx, client, name, body, start, size, opts)
	}
	return t.putBlocks(ctx, client, name, body, start, size, opts)
}

// conditions returns the access conditions of a Put.
func conditions(opts target.PutOptions) *blob.AccessConditions {
	if !opts.IfNotExists {
		return nil
	}
	etag := azcore.ETagAny
	return &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &etag}}
}

// putSingle sends the object in one Put Blob request, streaming the body.
func (t *Target) putSingle(ctx context.Context, client *blockblob.Client, name string, body io.ReadSeeker, start, size int64, opts target.PutOptions) error {
	src := &section{r: body, start: start, size: size, dirty: true}
	o := &blockblob.UploadOptions{Tier: t.tier, AccessConditions: conditions(opts)}
	o.ImmutabilityPolicyMode, o.ImmutabilityPolicyExpiryTime = t.immutability(opts)
	if opts.ContentMD5 != nil {
		o.TransactionalValidation = blob.TransferValidationTypeMD5(opts.ContentMD5)
	}
	resp, err := client.Upload(ctx, src, o)
	if berr := src.finish(); berr != nil && ctx.Err() == nil {
		return fmt.Errorf("azure: put %q: %w", name, berr)
	}
	if err != nil {
		if opts.IfNotExists {
			if eerr := t.existsAfterBrokenPut(ctx, client, name, err); eerr != nil {
				return eerr
			}
		}
		return t.fail(ctx, "put", name, err, errOptions{ifNotExists: opts.IfNotExists})
	}
	if opts.ContentMD5 != nil && resp.ContentMD5 != nil && !bytes.Equal(resp.ContentMD5, opts.ContentMD5) {
		// The service checked our Content-MD5 and yet reports another: do
		// not trust what it stored; the retry decorator writes it again.
		return fmt.Errorf("azure: put %q: the service reports MD5 %s for the stored object, not the %s of the body",
			name, hex.EncodeToString(resp.ContentMD5), hex.EncodeToString(opts.ContentMD5))
	}
	return nil
}

// putBlocks stages the object as blocks, Concurrency at a time, then commits
// the block list.
func (t *Target) putBlocks(ctx context.Context, client *blockblob.Client, name string, body io.ReadSeeker, start, size int64, opts target.PutOptions) error {
	bs := max(t.cfg.BlockSize, (size+MaxBlocks-1)/MaxBlocks)
	n := int((size + bs - 1) / bs)
	// Block IDs unique to this Put, all of one length as Azure requires, so
	// that a concurrent Put of the same name cannot commit our blocks.
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	uploadID := hex.EncodeToString(rnd[:])
	ids := make([]string, n)
	if opts.IfNotExists {
		// Not the check (the commit's If-None-Match is), but it spares
		// uploading a whole object that cannot be committed.
		if _, err := client.GetProperties(ctx, nil); err == nil {
			return fmt.Errorf("azure: put %q: %w", name, target.ErrExists)
		} else if !bloberror.HasCode(err, bloberror.BlobNotFound) {
			return t.fail(ctx, "put", name, err, errOptions{})
		}
	}

	// A *bytes.Reader (what the backup engine passes) is sent from its own
	// bytes, block by block, through ReadAt; only that exact type, because
	// a type embedding it may override Read, and Read is what we must use.
	ra, direct := body.(*bytes.Reader)
	if direct && ra.Size()-start < size {
		return fmt.Errorf("azure: put %q: %w", name, shortBody(max(ra.Size()-start, 0), size))
	}
	var whole hash.Hash
	if opts.ContentMD5 != nil {
		whole = md5.New()
	}

	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(gctx)
	g.SetLimit(t.cfg.Concurrency)
	var readErr error
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		off := int64(i) * bs
		l := min(bs, size-off)
		var blk io.ReadSeeker
		release := func() {}
		if direct {
			blk = io.NewSectionReader(ra, start+off, l)
			if whole != nil {
				_, _ = io.Copy(whole, io.NewSectionReader(ra, start+off, l))
			}
		} else {
			buf := t.buffer(bs)
			got, err := io.ReadFull(body, (*buf)[:l])
			if err != nil {
				t.release(buf, bs)
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					readErr = shortBody(off+int64(got), size)
				} else {
					readErr = fmt.Errorf("reading the body at byte %d of %d: %w", off+int64(got), size, err)
				}
				cancel()
				break
			}
			if whole != nil {
				whole.Write((*buf)[:l])
			}
			blk = bytes.NewReader((*buf)[:l])
			release = func() { t.release(buf, bs) }
		}
		ids[i] = base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%08d", uploadID, i))
		g.Go(func() error {
			defer release()
			return t.stageBlock(gctx, client, name, ids[i], blk)
		})
	}
	werr := g.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("azure: put %q: %w", name, ctx.Err())
	case readErr != nil:
		return fmt.Errorf("azure: put %q: %w", name, readErr)
	case werr != nil:
		return werr
	}
	if whole != nil {
		if sum := whole.Sum(nil); !bytes.Equal(sum, opts.ContentMD5) {
			return fmt.Errorf("azure: put %q: the body's MD5 is %s, not PutOptions.ContentMD5 %s: %w",
				name, hex.EncodeToString(sum), hex.EncodeToString(opts.ContentMD5), target.ErrInvalidArgument)
		}
	}

	co := &blockblob.CommitBlockListOptions{Tier: t.tier, AccessConditions: conditions(opts)}
	co.ImmutabilityPolicyMode, co.ImmutabilityPolicyExpiryTime = t.immutability(opts)
	if opts.ContentMD5 != nil {
		co.HTTPHeaders = &blob.HTTPHeaders{BlobContentMD5: opts.ContentMD5}
	}
	_, err := client.CommitBlockList(ctx, ids, co)
	if err != nil && opts.IfNotExists {
		if bloberror.HasCode(err, bloberror.InvalidBlockList) {
			// Another writer committed the name while we staged, which
			// discarded our blocks: for an exclusive create, "exists".
			if _, serr := client.GetProperties(ctx, nil); serr == nil {
				return fmt.Errorf("azure: put %q: written meanwhile by another writer: %w", name, target.ErrExists)
			}
		}
		if eerr := t.existsAfterBrokenPut(ctx, client, name, err); eerr != nil {
			return eerr
		}
	}
	return t.fail(ctx, "put", name, err, errOptions{ifNotExists: opts.IfNotExists})
}

// existsAfterBrokenPut handles a conditional write whose connection broke
// without an answer: a service may refuse it (409) before reading the
// body and close the connection, and Go's HTTP client then reports the
// broken write, not the answer (golang/go#11745; Azurite does this). If
// the object exists now, the write lost, and ErrExists is returned: a
// write cut short cannot have stored its object, and one that was stored
// but lost its reply gets ErrExists on a retry too (see target.NewRetry).
// Otherwise it returns nil, and err stands.
func (t *Target) existsAfterBrokenPut(ctx context.Context, client *blockblob.Client, name string, err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) || ctx.Err() != nil {
		return nil // the service answered, or we gave up
	}
	if _, serr := client.GetProperties(ctx, nil); serr != nil {
		return nil
	}
	redactURLs(err)
	return fmt.Errorf("azure: put %q: %w (the service closed the connection: %v)", name, target.ErrExists, err)
}

// stageBlock sends one block with its MD5, which the service verifies.
func (t *Target) stageBlock(ctx context.Context, client *blockblob.Client, name, id string, blk io.ReadSeeker) error {
	h := md5.New()
	if _, err := io.Copy(h, blk); err != nil {
		return fmt.Errorf("azure: put %q: %w", name, err)
	}
	src := &section{r: blk, size: -1, dirty: true}
	_, err := client.StageBlock(ctx, id, src, &blockblob.StageBlockOptions{
		TransactionalValidation: blob.TransferValidationTypeMD5(h.Sum(nil)),
	})
	src.finish()
	return t.fail(ctx, "put", name, err, errOptions{})
}

// buffer returns a block buffer of bs bytes, from the pool when bs is the
// configured block size.
func (t *Target) buffer(bs int64) *[]byte {
	if bs == t.cfg.BlockSize {
		return t.bufs.Get().(*[]byte)
	}
	b := make([]byte, bs)
	return &b
}

func (t *Target) release(b *[]byte, bs int64) {
	if bs == t.cfg.BlockSize {
		t.bufs.Put(b)
	}
}

func shortBody(got, size int64) error {
	return fmt.Errorf("the body ended after %d of %d bytes: %w: %w", got, size, target.ErrInvalidArgument, io.ErrUnexpectedEOF)
}

// section is the io.ReadSeekCloser the SDK sends: size bytes of r from
// offset start (all of r when size is -1, for a block already cut to
// size), with its own position, so that the SDK's rewinds land on the
// object's first byte. It records the body's own failures, which the HTTP
// client reports only as a broken request. After finish it refuses to
// touch r, because the HTTP client may still read a request body after
// the answer came, and the caller owns the body again once Put returns.
type section struct {
	mu          sync.Mutex
	r           io.ReadSeeker
	start, size int64
	pos         int64
	dirty       bool // r must be sought to start+pos before the next read
	done        bool
	err         error
}

var errSectionDone = errors.New("azure: request body read after the request ended")

func (s *section) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return 0, errSectionDone
	}
	if s.size >= 0 {
		if s.pos >= s.size {
			return 0, io.EOF
		}
		if rest := s.size - s.pos; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	if s.dirty {
		if _, err := s.r.Seek(s.start+s.pos, io.SeekStart); err != nil {
			s.setErr(fmt.Errorf("seeking the body: %w", err))
			return 0, err
		}
		s.dirty = false
	}
	n, err := s.r.Read(p)
	s.pos += int64(n)
	switch {
	case err == io.EOF && s.size >= 0 && s.pos < s.size:
		s.setErr(shortBody(s.pos, s.size))
		return n, io.ErrUnexpectedEOF
	case err != nil && err != io.EOF:
		s.setErr(fmt.Errorf("reading the body at byte %d: %w", s.pos, err))
	}
	return n, err
}

func (s *section) setErr(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *section) Seek(offset int64, whence int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.size
	if size < 0 {
		// A block: ask r, which knows its length.
		end, err := s.r.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, err
		}
		size = end
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.pos + offset
	case io.SeekEnd:
		abs = size + offset
	default:
		return 0, fmt.Errorf("azure: seek: bad whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("azure: seek to negative position %d", abs)
	}
	s.pos, s.dirty = abs, true
	return abs, nil
}

// Close implements io.Closer; the body stays the caller's to close.
func (s *section) Close() error { return nil }

// finish ends the use of r and returns the body's first failure.
func (s *section) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	return s.err
}
