// Package gcs is a target.Target that stores objects in a Google Cloud
// Storage bucket, laid out like OpenStack Cinder's GCS backup driver: object
// names as they are (volume_<volume>/<timestamp>/az_<zone>_backup_<id>-NNNNN
// for a backup), below an optional prefix.
//
// It uses the client library cloud.google.com/go/storage over the JSON API,
// with the library's own retries turned off: every operation makes one
// attempt, and target.NewRetry with Config.RetryPolicy retries as Cinder's
// driver does. Errors carry a *target.StatusError with the HTTP status and
// the Retry-After the server sent.
//
// Every Put is verified by the target itself: it computes the MD5 (or takes
// PutOptions.ContentMD5) and CRC32C of the bytes it sends and compares them,
// and the size, with what the server reports for the stored object; on a
// mismatch it deletes that generation of the object and fails with
// ErrChecksumMismatch. The upload also carries the object's CRC32C (and
// ContentMD5), so Google refuses a damaged object before it becomes
// visible; emulators such as fake-gcs-server do not check them on resumable
// uploads, and the target's own check does not depend on it. Reads of a
// whole object are checked against the object's CRC32C, whether they come
// in one request or in chunks.
//
// PutOptions.IfNotExists is a conditional write (ifGenerationMatch=0), atomic
// on the server. Get reads ranges, in requests of at most
// Config.ReaderChunkSize bytes pinned to the generation the first one read,
// so an object overwritten during a read fails the read instead of mixing
// two versions. List pages through the bucket in lexical order.
package gcs

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/auth/httptransport"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/chunkback/chunkback/target"
)

// EmulatorHostEnv is the environment variable that points the client library
// at an emulator (host:port); when it is set no credentials are sent.
const EmulatorHostEnv = "STORAGE_EMULATOR_HOST"

// cleanupTimeout bounds the deletion of an object that failed verification,
// which runs even when the caller's context has ended.
const cleanupTimeout = 30 * time.Second

// Target stores objects in one GCS bucket. It is safe for concurrent use.
// Close releases its connections.
type Target struct {
	client *storage.Client
	bucket *storage.BucketHandle
	cfg    Config // with defaults
	prefix string // "" or cfg.Prefix + "/"
	// credential describes the credentials for error messages: what to
	// check when the server refuses them (never a secret). Empty when no
	// credentials are sent.
	credential string
	crcTable   *crc32.Table
}

var (
	_ target.Target         = (*Target)(nil)
	_ target.LayoutTarget   = (*Target)(nil)
	_ target.ContentMD5User = (*Target)(nil)
	_ target.Closer         = (*Target)(nil)
)

// New connects to GCS and checks that the bucket exists and the credentials
// may list it, creating the bucket when cfg.CreateBucket is set. Wrap the
// target in target.NewRetry(t, cfg.RetryPolicy()) to retry failed requests.
func New(ctx context.Context, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Target{cfg: cfg, crcTable: crc32.MakeTable(crc32.Castagnoli)}
	if cfg.Prefix != "" {
		t.prefix = cfg.Prefix + "/"
	}

	base := http.DefaultTransport.(*http.Transport).Clone()
	// The backup engine runs many requests at once: keep their connections.
	base.MaxIdleConnsPerHost = 64
	if cfg.ProxyURL != "" {
		proxy, _ := url.Parse(cfg.ProxyURL) // checked by Validate
		base.Proxy = http.ProxyURL(proxy)
	}

	var rt http.RoundTripper = base
	anonymous := cfg.Anonymous || os.Getenv(EmulatorHostEnv) != ""
	if !anonymous {
		creds, desc, err := loadCredentials(cfg, &http.Client{Transport: base})
		if err != nil {
			return nil, err
		}
		t.credential = desc
		if err := checkToken(ctx, creds, desc); err != nil {
			return nil, err
		}
		hc, err := httptransport.NewClient(&httptransport.Options{
			BaseRoundTripper: base,
			Credentials:      creds,
			DisableTelemetry: true,
		})
		if err != nil {
			return nil, fmt.Errorf("gcs: %w", err)
		}
		rt = hc.Transport
		if cfg.ProjectID == "" && cfg.CreateBucket {
			if id, err := creds.ProjectID(ctx); err == nil {
				t.cfg.ProjectID = id
			}
		}
	}

	opts := []option.ClientOption{
		// Authentication is done by rt; the library must not look for
		// credentials of its own.
		option.WithHTTPClient(&http.Client{Transport: userAgent{base: rt, agent: cfg.UserAgent}}),
		option.WithoutAuthentication(),
		// One API for everything, so endpoints and proxies that serve only
		// the JSON API work.
		storage.WithJSONReads(),
	}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(jsonEndpoint(cfg.Endpoint)))
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: %w", err)
	}
	// One attempt per operation: retrying is target.NewRetry's job. An error
	// function that refuses every retry also stops the retries of upload
	// chunks, which storage.RetryNever would leave on.
	client.SetRetry(storage.WithPolicy(storage.RetryAlways), storage.WithErrorFunc(func(error) bool { return false }))
	t.client = client
	t.bucket = client.Bucket(cfg.Bucket)

	if err := t.checkBucket(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return t, nil
}

// jsonEndpoint returns the JSON API endpoint of a server: a URL without a
// path gets /storage/v1/, as STORAGE_EMULATOR_HOST does.
func jsonEndpoint(endpoint string) string {
	u, _ := url.Parse(endpoint) // checked by Validate
	if u.Path == "" || u.Path == "/" {
		u.Path = "/storage/v1/"
	} else if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String()
}

// checkBucket lists at most one object of the bucket, which needs only the
// permission to list objects (not the bucket's metadata), and creates the
// bucket when it is missing and the configuration asks for it.
func (t *Target) checkBucket(ctx context.Context) error {
	it := t.bucket.Objects(ctx, &storage.Query{Prefix: t.prefix})
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	if err == nil || errors.Is(err, iterator.Done) {
		return nil
	}
	var ge *googleapi.Error
	missing := errors.Is(err, storage.ErrBucketNotExist) || (errors.As(err, &ge) && ge.Code == http.StatusNotFound)
	if !missing {
		return t.fail("list", t.prefix, err)
	}
	if !t.cfg.CreateBucket {
		return fmt.Errorf("gcs: %s: %w", t.bucketMissing(), target.ErrNotFound)
	}
	if t.cfg.ProjectID == "" {
		return fmt.Errorf("gcs: bucket %q does not exist and cannot be created without a project: set Config.ProjectID (GOOGLE_CLOUD_PROJECT): %w",
			t.cfg.Bucket, target.ErrInvalidArgument)
	}
	err = t.bucket.Create(ctx, t.cfg.ProjectID, &storage.BucketAttrs{
		Location:     t.cfg.BucketLocation,
		StorageClass: t.cfg.StorageClass,
	})
	if errors.As(err, &ge) && ge.Code == http.StatusConflict {
		return nil // created meanwhile by someone else
	}
	if err != nil {
		return fmt.Errorf("gcs: creating bucket %q in project %q at %s (%s): %w",
			t.cfg.Bucket, t.cfg.ProjectID, t.cfg.BucketLocation, t.cfg.StorageClass, t.fail("create-bucket", t.cfg.Bucket, err))
	}
	return nil
}

// Close releases the client's connections.
func (t *Target) Close() error { return t.client.Close() }

// CinderLayout reports that backups are laid out as Cinder's object-store
// drivers (GCS among them) lay them out.
func (t *Target) CinderLayout() target.Layout { return target.LayoutObject }

// UsesContentMD5 reports that Put uses PutOptions.ContentMD5: it is sent
// with the upload, so Google refuses a damaged object before storing it,
// and it saves the target hashing the body itself.
func (t *Target) UsesContentMD5() bool { return true }

// key returns the object name in the bucket.
func (t *Target) key(name string) string { return t.prefix + name }

// Put implements target.Target. See the package documentation for how
// every write is verified. When verification fails on an overwrite, the
// object is gone: the damaged generation had already replaced the old one
// (unless the bucket keeps versions).
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("gcs: %w", err)
	}
	switch {
	case opts.ContentMD5 != nil && len(opts.ContentMD5) != md5.Size:
		return fmt.Errorf("gcs: put %q: ContentMD5 has %d bytes, not %d: %w", name, len(opts.ContentMD5), md5.Size, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gcs: put %q: %w", name, err)
	}

	// Cancelling wctx before Close aborts the upload, so that no object
	// appears when the body fails or is short.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obj := t.bucket.Object(t.key(name))
	if opts.IfNotExists {
		obj = obj.If(storage.Conditions{DoesNotExist: true})
	}
	w := obj.NewWriter(wctx)
	w.ContentType = "application/octet-stream"
	if t.cfg.WriterChunkSize == SingleRequest {
		// The body streams into one request of unknown length. When the
		// upload is aborted (the body fails, the context ends), the client
		// library still closes the multipart body properly before it
		// breaks the request, and a server may store the truncated object.
		// Sending the CRC32C of the whole body, read once beforehand, makes
		// the server refuse any object that is not that body.
		sum, err := t.crcOf(ctx, body, size)
		if err != nil {
			return fmt.Errorf("gcs: put %q: %w", name, err)
		}
		w.ChunkSize = 0
		w.CRC32C, w.SendCRC32C = sum, true
	} else {
		// A buffer no larger than the object (the library rounds it up to
		// 256 KiB); the +1 lets it see the end of the body within one chunk
		// and send the object in one request. Chunks are sent whole, with
		// their length, and the last one with the object's CRC32C.
		w.ChunkSize = int(min(int64(t.cfg.WriterChunkSize), size+1))
	}
	if opts.ContentMD5 != nil {
		w.MD5 = opts.ContentMD5
	}

	// With ContentMD5 the body is not hashed a second time: the server's MD5
	// is compared with it after the write.
	crc := crc32.New(t.crcTable)
	var md5h hash.Hash
	sums := io.Writer(crc)
	if opts.ContentMD5 == nil {
		md5h = md5.New()
		sums = io.MultiWriter(crc, md5h)
	}
	var in *bodyReader
	var src io.Reader = strings.NewReader("")
	if body != nil {
		in = &bodyReader{ctx: ctx, r: io.LimitReader(body, size)}
		src = io.TeeReader(in, sums)
	}
	n, err := io.Copy(w, src)
	if err == nil && n < size {
		err = fmt.Errorf("the body ended after %d of %d bytes: %w", n, size, target.ErrInvalidArgument)
	}
	if err != nil && (in == nil || in.err == nil) && !errors.Is(err, target.ErrInvalidArgument) {
		// Not the body's fault: the upload failed, and Close returns the
		// library's error for it (the pipe's may be a bare "closed pipe").
		if cerr := w.Close(); cerr != nil {
			err = cerr
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("gcs: put %q: %w (%v)", name, cerr, err)
		}
		return t.fail("put", name, err)
	}
	if err != nil {
		// The body failed or was short: abort the upload, so that no
		// object is stored. Not Close: it would end the upload's body,
		// which might complete the upload before the cancellation reaches
		// it; the cancellation closes the body with an error instead.
		cancel()
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return fmt.Errorf("gcs: put %q: %w (%v)", name, cerr, err)
		}
		return fmt.Errorf("gcs: put %q: %w", name, err)
	}
	if err := w.Close(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("gcs: put %q: %w", name, cerr)
		}
		return t.fail("put", name, err)
	}

	wantMD5 := opts.ContentMD5
	if md5h != nil {
		wantMD5 = md5h.Sum(nil)
	}
	attrs := w.Attrs()
	if problem := verify(attrs, size, wantMD5, crc.Sum32()); problem != "" {
		return t.rejectStored(ctx, name, attrs, problem)
	}
	return nil
}

// crcOf returns the CRC32C of the next size bytes of body and seeks body
// back to where it was.
func (t *Target) crcOf(ctx context.Context, body io.ReadSeeker, size int64) (uint32, error) {
	if body == nil || size == 0 {
		return 0, nil
	}
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("single-request uploads read the body twice, and it cannot seek: %w", err)
	}
	crc := crc32.New(t.crcTable)
	n, err := io.Copy(crc, &bodyReader{ctx: ctx, r: io.LimitReader(body, size)})
	if err != nil {
		return 0, err
	}
	if n < size {
		return 0, fmt.Errorf("the body ended after %d of %d bytes: %w", n, size, target.ErrInvalidArgument)
	}
	if _, err := body.Seek(start, io.SeekStart); err != nil {
		return 0, err
	}
	return crc.Sum32(), nil
}

// verify compares what the server reports of a stored object with what was
// sent, and describes the first difference ("" when there is none).
func verify(attrs *storage.ObjectAttrs, size int64, wantMD5 []byte, wantCRC uint32) string {
	switch {
	case attrs == nil:
		return "the server reported no attributes of the stored object"
	case attrs.Size != size:
		return fmt.Sprintf("the server stored %d bytes, %d were sent", attrs.Size, size)
	case attrs.CRC32C != wantCRC:
		return fmt.Sprintf("the server's CRC32C is %08x, that of the bytes sent %08x", attrs.CRC32C, wantCRC)
	case attrs.MD5 != nil && string(attrs.MD5) != string(wantMD5):
		return fmt.Sprintf("the server's MD5 is %s, that of the bytes sent %s",
			base64.StdEncoding.EncodeToString(attrs.MD5), base64.StdEncoding.EncodeToString(wantMD5))
	}
	return ""
}

// rejectStored deletes the generation of name that failed verification (not
// a newer one another writer may have stored meanwhile) and returns the
// error of the Put.
func (t *Target) rejectStored(ctx context.Context, name string, attrs *storage.ObjectAttrs, problem string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	obj := t.bucket.Object(t.key(name))
	if attrs != nil && attrs.Generation > 0 {
		obj = obj.Generation(attrs.Generation)
	}
	outcome := "it was deleted"
	if err := obj.Delete(dctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		outcome = fmt.Sprintf("deleting it failed too (%v): delete it by hand", t.fail("delete", name, err))
	}
	return fmt.Errorf("gcs: put %q: the stored object does not match what was sent (%s); %s: %w", name, problem, outcome, ErrChecksumMismatch)
}

// Get implements target.Target.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("gcs: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("gcs: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gcs: get %q: %w", name, err)
	}
	if length == 0 {
		return t.emptyRange(ctx, name, offset)
	}
	first := length
	chunk := int64(t.cfg.ReaderChunkSize)
	if chunk > 0 && (length < 0 || length > chunk) {
		first = chunk
	}
	obj := t.bucket.Object(t.key(name))
	r, err := obj.NewRangeReader(ctx, offset, first)
	if err != nil {
		var ge *googleapi.Error
		if errors.As(err, &ge) && ge.Code == http.StatusRequestedRangeNotSatisfiable {
			return t.emptyRange(ctx, name, offset)
		}
		return nil, t.fail("get", name, err)
	}
	size := r.Attrs.Size
	end := size
	if length >= 0 && offset+length < size {
		end = offset + length
	}
	if offset > size {
		r.Close()
		return nil, fmt.Errorf("gcs: get %q: offset %d is beyond the end of the object (%d bytes): %w", name, offset, size, target.ErrInvalidRange)
	}
	cr := &chunkedReader{ctx: ctx, t: t, name: name, cur: r, pos: offset, curEnd: min(offset+first, end), end: end}
	if first < 0 {
		cr.curEnd = end
	}
	if cr.curEnd < end {
		// More requests follow: read the same generation, and check the
		// whole object's CRC32C ourselves when the read covers it (the
		// library checks only unranged reads).
		if gen := r.Attrs.Generation; gen > 0 {
			obj = obj.Generation(gen)
		}
		cr.obj = obj
		if offset == 0 && end == size && r.Attrs.CRC32C != 0 {
			cr.crc, cr.wantCRC = crc32.New(t.crcTable), r.Attrs.CRC32C
		}
	}
	return cr, nil
}

// emptyRange answers a Get that reads nothing: an empty reader if offset is
// within the object or at its end, ErrInvalidRange beyond it.
func (t *Target) emptyRange(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	info, err := t.stat(ctx, "get", name)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, fmt.Errorf("gcs: get %q: offset %d is beyond the end of the object (%d bytes): %w", name, offset, info.Size, target.ErrInvalidRange)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("gcs: stat: %w", err)
	}
	return t.stat(ctx, "stat", name)
}

func (t *Target) stat(ctx context.Context, op, name string) (target.Info, error) {
	if err := ctx.Err(); err != nil {
		return target.Info{}, fmt.Errorf("gcs: %s %q: %w", op, name, err)
	}
	attrs, err := t.bucket.Object(t.key(name)).Attrs(ctx)
	if err != nil {
		return target.Info{}, t.fail(op, name, err)
	}
	return target.Info{Name: name, Size: attrs.Size, ModTime: modTime(attrs)}, nil
}

func modTime(attrs *storage.ObjectAttrs) time.Time {
	if !attrs.Updated.IsZero() {
		return attrs.Updated
	}
	return attrs.Created
}

// List implements target.Target. Objects whose names are not valid object
// names (see target.CheckName), such as the "folder/" placeholders the
// Cloud Console makes, are skipped.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if strings.IndexByte(prefix, 0) >= 0 {
		return fmt.Errorf("gcs: list: prefix %q contains a NUL byte: %w", prefix, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gcs: list %q: %w", prefix, err)
	}
	q := &storage.Query{Prefix: t.key(prefix), Projection: storage.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "Created"}); err != nil {
		return fmt.Errorf("gcs: list %q: %w", prefix, err)
	}
	it := t.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return t.fail("list", prefix, err)
		}
		name, ok := strings.CutPrefix(attrs.Name, t.prefix)
		if !ok || target.CheckName(name) != nil {
			continue
		}
		if err := fn(target.Info{Name: name, Size: attrs.Size, ModTime: modTime(attrs)}); err != nil {
			return err
		}
	}
}

// Delete implements target.Target.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("gcs: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gcs: delete %q: %w", name, err)
	}
	err := t.bucket.Object(t.key(name)).Delete(ctx)
	if err == nil || errors.Is(err, storage.ErrObjectNotExist) {
		return nil
	}
	return t.fail("delete", name, err)
}

// bodyReader reads the body of a Put. It stops once the context ends, so a
// cancelled Put stops at once even when the upload waits for more bytes,
// and it keeps the body's error, so Put can tell it from the upload's.
type bodyReader struct {
	ctx context.Context
	r   io.Reader
	err error // the first error other than io.EOF
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return 0, err
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// userAgent puts the configured product before the library's User-Agent.
type userAgent struct {
	base  http.RoundTripper
	agent string
}

func (u userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	ua := u.agent
	if lib := req.Header.Get("User-Agent"); lib != "" {
		ua += " " + lib
	}
	req.Header.Set("User-Agent", ua)
	return u.base.RoundTrip(req)
}
