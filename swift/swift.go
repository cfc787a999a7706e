// Package swift is a target.Target that stores objects in an OpenStack Swift
// container (or any store with Swift's API, such as Ceph radosgw), with every
// option of Cinder's Swift backup driver; see Config. It uses the
// github.com/ncw/swift/v2 client.
//
// Objects are stored under Config.Prefix in Config.Container, laid out as
// Cinder's Swift driver lays out its container (target.LayoutObject), so
// Cinder restores what chunkback writes there and the other way round.
//
//   - Put streams the body in one PUT with its length and checks the ETag
//     Swift returns against the MD5 of what was sent: PutOptions.ContentMD5
//     goes up as the request's ETag, so Swift itself refuses altered data
//     (HTTP 422); without it the target hashes the body on the way, and
//     deletes an object whose ETag differs. Either way the error wraps
//     ErrChecksum and no altered object is left.
//   - Objects larger than Config.SegmentSize (Swift's 5 GiB single-PUT limit
//     by default) go up as static large objects: the segments, each checked
//     like a small object, into Config.SegmentContainer (created on first
//     use), then the manifest. Until the manifest is stored the object does
//     not exist; a failed or cancelled upload deletes the segments it stored.
//     Replacing a large object and Delete remove its segments too, which is
//     why every Put and Delete first looks at the object (one HEAD).
//   - PutOptions.IfNotExists: that look finds an existing object, and Put sends
//     If-None-Match: *, which Swift checks when the PUT starts (radosgw's
//     Swift API ignores it). Neither makes it atomic: two writers that start
//     before either finishes may both succeed, the later one replacing the
//     earlier one. Swift has no atomic create.
//   - Errors: HTTP failures are *target.StatusError values carrying the
//     status and Retry-After, so target.NewRetry classifies and paces them;
//     404 is target.ErrNotFound, 412 target.ErrExists, 401 and 403
//     target.ErrPermission with a message naming the credential to check
//     (never its value).
//   - The client makes one attempt per request (the SDK's own retries are
//     off): wrap the target with target.NewRetry(t, cfg.RetryPolicy()) for
//     Cinder's retry behaviour. In single_user mode an expired token is
//     renewed once per operation.
package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	goswift "github.com/ncw/swift/v2"

	"github.com/chunkback/chunkback/target"
)

// contentType is the type of every object written.
const contentType = "application/octet-stream"

// cleanupTimeout bounds the deletion of a failed upload's segments, which
// runs even when the Put's context has ended.
const cleanupTimeout = 2 * time.Minute

// Target stores objects in one Swift container. It is safe for concurrent
// use; Close releases its idle connections.
type Target struct {
	cfg    Config // with defaults
	conn   *goswift.Connection
	tr     *http.Transport
	prefix string // cfg.Prefix + "/", or ""

	segMu    sync.Mutex
	segReady bool // the segments container is known to exist
}

var (
	_ target.Target         = (*Target)(nil)
	_ target.LayoutTarget   = (*Target)(nil)
	_ target.ContentMD5User = (*Target)(nil)
	_ target.Closer         = (*Target)(nil)
)

// New validates cfg, authenticates (single_user) and checks that the
// container exists, creating it when cfg.CreateContainer is set. A missing
// container is an error wrapping target.ErrNotFound; refused credentials one
// wrapping target.ErrPermission.
func New(ctx context.Context, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tr, err := cfg.transport()
	if err != nil {
		return nil, err
	}
	conn := &goswift.Connection{
		UserAgent:      "chunkback",
		Retries:        -1, // one attempt per request: retrying is target.NewRetry's job
		ConnectTimeout: cfg.ConnectTimeout,
		Timeout:        cfg.Timeout,
		Transport:      recorder{base: tr},
		// radosgw may end a listing page early with more names to come:
		// a listing ends only at an empty page.
		FetchUntilEmptyPage: true,
	}
	if cfg.AuthStrategy == AuthPerUser {
		conn.StorageUrl, conn.AuthToken = cfg.StorageURL, cfg.Token
	} else {
		conn.AuthUrl, conn.AuthVersion = cfg.AuthURL, cfg.AuthVersion
		conn.UserName, conn.ApiKey = cfg.User, cfg.Key
		conn.Region, conn.EndpointType = cfg.Region, goswift.EndpointType(cfg.Interface)
		switch cfg.AuthVersion {
		case 2:
			conn.Tenant = cfg.Tenant
		case 3:
			conn.Tenant, conn.Domain, conn.TenantDomain = cfg.Project, cfg.UserDomain, cfg.ProjectDomain
		}
	}
	t := &Target{cfg: cfg, conn: conn, tr: tr}
	if cfg.Prefix != "" {
		t.prefix = cfg.Prefix + "/"
	}
	if cfg.AuthStrategy == AuthSingleUser {
		if err := t.authenticate(ctx); err != nil {
			tr.CloseIdleConnections()
			return nil, err
		}
	}
	if err := t.ensureContainer(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return t, nil
}

// authenticate gets a token and storage URL from cfg.AuthURL.
func (t *Target) authenticate(ctx context.Context) error {
	actx, rec := withReply(ctx)
	defer rec.cancel()
	err := t.conn.Authenticate(actx)
	if err == nil {
		return nil
	}
	if statusOf(err) == 0 && ctx.Err() == nil && t.conn.AuthToken != "" && t.conn.StorageUrl == "" {
		return fmt.Errorf("swift: authenticated at %s, but its service catalog has no object-store endpoint of interface %q in region %q: check Config.Region (OS_REGION_NAME) and Config.Interface: %w",
			redactURL(t.cfg.AuthURL), t.cfg.Interface, t.cfg.Region, target.ErrInvalidArgument)
	}
	return t.classify(ctx, "authenticate", redactURL(t.cfg.AuthURL), err, rec)
}

// Close releases the target's idle connections. The target must not be used
// afterwards.
func (t *Target) Close() error {
	t.tr.CloseIdleConnections()
	return nil
}

// CinderLayout implements target.LayoutTarget: objects are laid out as
// Cinder's Swift driver lays them out.
func (t *Target) CinderLayout() target.Layout { return target.LayoutObject }

// UsesContentMD5 implements target.ContentMD5User: PutOptions.ContentMD5 is
// sent as the PUT's ETag, which Swift verifies.
func (t *Target) UsesContentMD5() bool { return true }

// String describes the target for messages.
func (t *Target) String() string {
	return "swift:" + t.cfg.Container + "/" + t.cfg.Prefix
}

// call runs one operation of the SDK, fn, with a context that records its
// replies, renews an expired token once (single_user), and classifies the
// error. fn must be repeatable (a Put rewinds its body).
func (t *Target) call(ctx context.Context, op, name string, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("swift: %s %q: %w", op, name, err)
	}
	octx, rec := withReply(ctx)
	defer rec.cancel()
	err := fn(octx)
	if err != nil && statusOf(err) == http.StatusUnauthorized && t.cfg.AuthStrategy == AuthSingleUser && octx.Err() == nil {
		// The token has expired or was revoked: authenticate again.
		t.conn.UnAuthenticate()
		err = fn(octx)
	}
	return t.classify(ctx, op, name, err, rec)
}

// ensureContainer checks that the container exists, creating it if asked.
func (t *Target) ensureContainer(ctx context.Context) error {
	c := t.cfg.Container
	err := t.call(ctx, "head container", c, func(ctx context.Context) error {
		_, _, err := t.conn.Container(ctx, c)
		return err
	})
	if !errors.Is(err, target.ErrNotFound) {
		return err
	}
	if !t.cfg.CreateContainer {
		return fmt.Errorf("swift: container %q does not exist in account %s: create it (swift post %s), or set Config.CreateContainer (--create in the CLI): %w",
			c, t.conn.StorageUrl, c, target.ErrNotFound)
	}
	return t.createContainer(ctx, c)
}

// createContainer creates the container name with the configured storage
// policy (an existing container is left as it is).
func (t *Target) createContainer(ctx context.Context, name string) error {
	h := goswift.Headers{}
	if t.cfg.StoragePolicy != "" {
		h["X-Storage-Policy"] = t.cfg.StoragePolicy
	}
	err := t.call(ctx, "create container", name, func(ctx context.Context) error {
		return t.conn.ContainerCreate(ctx, name, h)
	})
	if err != nil && t.cfg.StoragePolicy != "" && errors.Is(err, target.ErrInvalidArgument) {
		return fmt.Errorf("swift: creating container %q with Config.StoragePolicy %q was refused; use a storage policy of this cluster (its /info lists them): %w",
			name, t.cfg.StoragePolicy, err)
	}
	return err
}

// ensureSegmentContainer makes sure the segments container exists.
func (t *Target) ensureSegmentContainer(ctx context.Context) error {
	t.segMu.Lock()
	defer t.segMu.Unlock()
	if t.segReady {
		return nil
	}
	c := t.cfg.SegmentContainer
	err := t.call(ctx, "head container", c, func(ctx context.Context) error {
		_, _, err := t.conn.Container(ctx, c)
		return err
	})
	if errors.Is(err, target.ErrNotFound) {
		err = t.createContainer(ctx, c)
	}
	if err != nil {
		return err
	}
	t.segReady = true
	return nil
}

// Put implements target.Target; see the package documentation for how.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("swift: %w", err)
	}
	if len(opts.ContentMD5) != 0 && len(opts.ContentMD5) != md5.Size {
		return fmt.Errorf("swift: put %q: PutOptions.ContentMD5 has %d bytes; an MD5 has %d: %w", name, len(opts.ContentMD5), md5.Size, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("swift: put %q: %w", name, err)
	}
	if body == nil {
		body = bytes.NewReader(nil)
	}
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("swift: put %q: the body cannot seek: %w: %w", name, err, target.ErrInvalidArgument)
	}
	full := t.prefix + name
	// One look first: for IfNotExists, since radosgw ignores If-None-Match
	// on its Swift API; and to find the segments of a large object being
	// replaced, which would be left behind otherwise.
	hdrs, found, err := t.head(ctx, "put", name, full)
	if err != nil {
		return err
	}
	if found && opts.IfNotExists {
		return fmt.Errorf("swift: put %q: %w", name, target.ErrExists)
	}
	deleteReplaced := func() {}
	if found && hdrs.IsLargeObjectSLO() {
		deleteReplaced = t.replacedSegments(ctx, name, full, hdrs)
	}
	if size > t.cfg.SegmentSize {
		err = t.putLarge(ctx, name, full, body, start, size, opts)
	} else {
		err = t.putSingle(ctx, name, full, body, start, size, opts)
	}
	if err == nil {
		deleteReplaced()
	}
	return err
}

// head returns the headers of the object full, and whether it exists.
func (t *Target) head(ctx context.Context, op, name, full string) (goswift.Headers, bool, error) {
	var hdrs goswift.Headers
	err := t.call(ctx, op, name, func(ctx context.Context) error {
		var err error
		_, hdrs, err = t.conn.Object(ctx, t.cfg.Container, full)
		return err
	})
	if errors.Is(err, target.ErrNotFound) {
		return nil, false, nil
	}
	return hdrs, err == nil, err
}

// putSingle stores the object in one PUT.
func (t *Target) putSingle(ctx context.Context, name, full string, body io.ReadSeeker, start, size int64, opts target.PutOptions) error {
	want := hex.EncodeToString(opts.ContentMD5)
	h := goswift.Headers{"Content-Length": strconv.FormatInt(size, 10)}
	if opts.IfNotExists {
		h["If-None-Match"] = "*"
	}
	return t.call(ctx, "put", name, func(ctx context.Context) error {
		if _, err := body.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding the body: %w", err)
		}
		var sum hash.Hash
		var hw io.Writer
		if want == "" {
			sum = md5.New() // Swift cannot check: check its ETag afterwards
			hw = sum
		}
		sb := newSizedBody(ctx, body, size, hw)
		// With want set the SDK sends it as the ETag and Swift checks it.
		hdrs, err := t.conn.ObjectPut(ctx, t.cfg.Container, full, sb, false, want, contentType, h)
		if berr := sb.stop(); berr != nil {
			return berr
		}
		if err != nil {
			return err
		}
		if want == "" {
			want = hex.EncodeToString(sum.Sum(nil))
		}
		return t.checkETag(ctx, t.cfg.Container, full, hdrs, want)
	})
}

// checkETag compares the ETag of a PUT's reply with the MD5 of what was
// sent. On a mismatch the stored object is not what the caller wrote, so it
// is deleted.
func (t *Target) checkETag(ctx context.Context, container, full string, hdrs goswift.Headers, want string) error {
	got := strings.ToLower(strings.Trim(hdrs["Etag"], `"`))
	if got == want {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	derr := t.conn.ObjectDelete(dctx, container, full)
	if derr != nil && !errors.Is(derr, goswift.ObjectNotFound) {
		return fmt.Errorf("%w: Swift stored %s/%s with ETag %q, but the MD5 of the data sent is %s, and deleting it failed (%v)",
			ErrChecksum, container, full, got, want, derr)
	}
	return fmt.Errorf("%w: Swift stored %s/%s with ETag %q, but the MD5 of the data sent is %s (the data was altered on the way); the object was deleted",
		ErrChecksum, container, full, got, want)
}

// Get implements target.Target. A whole-object read checks the data against
// the object's ETag when it reaches the end (Close reports a mismatch,
// wrapping ErrChecksum); large objects and ranges are not checked.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("swift: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("swift: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("swift: get %q: %w", name, err)
	}
	if length == 0 {
		info, err := t.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		if offset > info.Size {
			return nil, rangeError(name, offset, info.Size)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	h := goswift.Headers{}
	switch {
	case length > 0 && length <= math.MaxInt64-offset:
		h["Range"] = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	case offset > 0:
		h["Range"] = fmt.Sprintf("bytes=%d-", offset)
	}
	full := t.prefix + name
	octx, rec := withReply(ctx)
	open := func() (*goswift.ObjectOpenFile, error) {
		f, _, err := t.conn.ObjectOpen(octx, t.cfg.Container, full, len(h) == 0, h)
		return f, err
	}
	f, err := open()
	if err != nil && statusOf(err) == http.StatusUnauthorized && t.cfg.AuthStrategy == AuthSingleUser && octx.Err() == nil {
		t.conn.UnAuthenticate()
		f, err = open()
	}
	if err != nil {
		rec.cancel()
		if statusOf(err) == http.StatusRequestedRangeNotSatisfiable {
			return t.pastEnd(ctx, name, offset)
		}
		return nil, t.classify(ctx, "get", name, err, rec)
	}
	return &objectReader{t: t, ctx: ctx, name: name, f: f, rec: rec}, nil
}

// pastEnd answers a range Swift could not satisfy: an offset at the end of
// the object (or any range of an empty one) reads nothing; an offset beyond
// it is target.ErrInvalidRange.
func (t *Target) pastEnd(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	info, err := t.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, rangeError(name, offset, info.Size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

func rangeError(name string, offset, size int64) error {
	return fmt.Errorf("swift: get %q: offset %d is past the end of the object (%d bytes): %w", name, offset, size, target.ErrInvalidRange)
}

// objectReader is the body of a Get.
type objectReader struct {
	t    *Target
	ctx  context.Context
	name string
	f    *goswift.ObjectOpenFile
	rec  *reply
}

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		err = r.t.classify(r.ctx, "get", r.name, err, nil)
	}
	return n, err
}

func (r *objectReader) Close() error {
	err := r.f.Close()
	r.rec.cancel()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goswift.ObjectCorrupted):
		return fmt.Errorf("swift: get %q: %w: the MD5 or length of the data read is not the object's ETag or length", r.name, ErrChecksum)
	}
	return r.t.classify(r.ctx, "get", r.name, err, nil)
}

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("swift: stat: %w", err)
	}
	var obj goswift.Object
	err := t.call(ctx, "stat", name, func(ctx context.Context) error {
		var err error
		obj, _, err = t.conn.Object(ctx, t.cfg.Container, t.prefix+name)
		return err
	})
	if err != nil {
		return target.Info{}, err
	}
	return target.Info{Name: name, Size: obj.Bytes, ModTime: obj.LastModified}, nil
}

// listPage is how many names one listing request asks for (radosgw's most).
const listPage = 1000

// List implements target.Target, a page of names at a time. Objects in the
// container whose names are not valid object names (see target.CheckName),
// such as pseudo-directory markers other tools write, are skipped.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if !utf8.ValidString(prefix) || strings.ContainsFunc(prefix, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("swift: list: prefix %q holds invalid UTF-8 or control characters, which no object name has: %w", prefix, target.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("swift: list %q: %w", prefix, err)
	}
	var fnErr error
	err := t.conn.ObjectsWalk(ctx, t.cfg.Container, &goswift.ObjectsOpts{Prefix: t.prefix + prefix, Limit: listPage},
		func(ctx context.Context, opts *goswift.ObjectsOpts) (any, error) {
			var objs []goswift.Object
			err := t.call(ctx, "list", prefix, func(ctx context.Context) error {
				var err error
				objs, err = t.conn.Objects(ctx, t.cfg.Container, opts)
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				name, ok := strings.CutPrefix(o.Name, t.prefix)
				if !ok || o.PseudoDirectory || target.CheckName(name) != nil {
					continue
				}
				if err := fn(target.Info{Name: name, Size: listedSize(o), ModTime: o.LastModified}); err != nil {
					fnErr = err
					return nil, err
				}
			}
			return objs, nil
		})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// Delete implements target.Target. A static large object is deleted with
// its segments.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("swift: delete: %w", err)
	}
	full := t.prefix + name
	hdrs, found, err := t.head(ctx, "delete", name, full)
	switch {
	case err != nil:
		return err
	case !found:
		return nil
	case hdrs.IsLargeObjectSLO():
		return t.deleteLarge(ctx, name, full)
	}
	err = t.call(ctx, "delete", name, func(ctx context.Context) error {
		return t.conn.ObjectDelete(ctx, t.cfg.Container, full)
	})
	if errors.Is(err, target.ErrNotFound) {
		return nil
	}
	return err
}

// sizedBody is a Put's request body: exactly size bytes of the caller's
// body, hashed on the way, checking the context between reads. A body that
// ends early or fails makes the request fail with that error; stop ends its
// use when the request is over (the HTTP client may still hold it).
type sizedBody struct {
	ctx context.Context
	mu  sync.Mutex
	r   io.Reader
	h   io.Writer // hashes what is read; nil: none
	n   int64     // bytes read
	sz  int64
	err error // why reading stopped early, or errStopped
}

var errStopped = errors.New("request is over")

func newSizedBody(ctx context.Context, r io.Reader, size int64, h io.Writer) *sizedBody {
	return &sizedBody{ctx: ctx, r: r, h: h, sz: size}
}

func (b *sizedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return 0, err
	}
	if b.n >= b.sz {
		return 0, io.EOF
	}
	if rest := b.sz - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	if cerr := b.ctx.Err(); cerr != nil {
		// Withhold what was read: a body that never ends is never stored.
		b.err = cerr
		return 0, cerr
	}
	b.n += int64(n)
	if b.h != nil {
		_, _ = b.h.Write(p[:n])
	}
	switch {
	case err == io.EOF && b.n < b.sz:
		b.err = fmt.Errorf("the body ended after %d of its %d bytes: %w", b.n, b.sz, target.ErrInvalidArgument)
		return n, b.err
	case err != nil && err != io.EOF:
		b.err = fmt.Errorf("reading the body: %w", err)
		return n, b.err
	}
	return n, nil
}

// stop ends the body's use and returns why it failed, if it did.
func (b *sizedBody) stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.err
	if err == nil {
		b.err = errStopped
	}
	return err
}
