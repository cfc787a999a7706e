package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	goswift "github.com/ncw/swift/v2"

	"github.com/chunkback/chunkback/target"
)

// Static large objects (SLO): the segments go to Config.SegmentContainer as
// "<hash of the object's full name>/slo/<time>/<size>/<segment size>/<n>",
// then a manifest listing them is PUT under the object's name. The manifest
// carries two things that Swift would not need but radosgw does:
//
//   - segmentsHeader, the container and name prefix of its segments, so that
//     replacing the object can delete the old segments (radosgw answers
//     multipart-manifest=get with an empty body);
//   - sizeParam in its Content-Type, the object's size, which List reports
//     (radosgw lists a manifest with the manifest's own size; Swift lists the
//     object's).

const (
	segmentsHeader = "X-Object-Meta-Chunkback-Segments"
	sizeParam      = "chunkback_size"
)

// sloSegment is one entry of a manifest, as Swift takes it.
type sloSegment struct {
	Path      string `json:"path"`
	Etag      string `json:"etag"`
	SizeBytes int64  `json:"size_bytes"`
}

// putLarge stores the object as a static large object.
func (t *Target) putLarge(ctx context.Context, name, full string, body io.ReadSeeker, start, size int64, opts target.PutOptions) (err error) {
	segSize := t.cfg.SegmentSize
	n := (size + segSize - 1) / segSize
	if n > MaxSegments {
		return fmt.Errorf("swift: put %q: %d bytes make %d segments of Config.SegmentSize (%d bytes); Swift allows %d: raise SegmentSize: %w",
			name, size, n, segSize, MaxSegments, target.ErrInvalidArgument)
	}
	if err := t.ensureSegmentContainer(ctx); err != nil {
		return err
	}
	segContainer := t.cfg.SegmentContainer
	var stored []string // segments that may exist, for the cleanup
	defer func() {
		if err != nil && len(stored) > 0 {
			_ = t.deleteSegments(ctx, segContainer, stored)
		}
	}()

	// The whole object's MD5, to check against ContentMD5 before the
	// manifest makes the object exist.
	var whole hash.Hash
	if len(opts.ContentMD5) > 0 {
		whole = md5.New()
	}
	base := segmentBase(full, size, segSize)
	manifest := make([]sloSegment, 0, n)
	sloETag := md5.New() // Swift's ETag of an SLO: the MD5 of its segments' ETags
	for i := range n {
		off := i * segSize
		length := min(segSize, size-off)
		segName := fmt.Sprintf("%s/%08d", base, i+1)
		stored = append(stored, segName)
		var wholeState []byte
		if whole != nil {
			wholeState, _ = whole.(encoding.BinaryMarshaler).MarshalBinary()
		}
		var segSum string
		err := t.call(ctx, "put", name, func(ctx context.Context) error {
			if whole != nil {
				// A repeated attempt hashes this segment again.
				if err := whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(wholeState); err != nil {
					return err
				}
			}
			if _, err := body.Seek(start+off, io.SeekStart); err != nil {
				return fmt.Errorf("rewinding the body: %w", err)
			}
			sum := md5.New()
			var hw io.Writer = sum
			if whole != nil {
				hw = io.MultiWriter(sum, whole)
			}
			sb := newSizedBody(ctx, body, length, hw)
			hdrs, err := t.conn.ObjectPut(ctx, segContainer, segName, sb, false, "", contentType,
				goswift.Headers{"Content-Length": strconv.FormatInt(length, 10)})
			if berr := sb.stop(); berr != nil {
				return berr
			}
			if err != nil {
				return err
			}
			segSum = hex.EncodeToString(sum.Sum(nil))
			return t.checkETag(ctx, segContainer, segName, hdrs, segSum)
		})
		if err != nil {
			return err
		}
		manifest = append(manifest, sloSegment{Path: "/" + segContainer + "/" + segName, Etag: segSum, SizeBytes: length})
		sloETag.Write([]byte(segSum))
	}
	if whole != nil && !bytes.Equal(whole.Sum(nil), opts.ContentMD5) {
		return fmt.Errorf("swift: put %q: %w: the MD5 of the data read, %x, is not PutOptions.ContentMD5, %x; nothing was stored",
			name, ErrChecksum, whole.Sum(nil), opts.ContentMD5)
	}

	doc, err := json.Marshal(manifest)
	if err != nil {
		return fmt.Errorf("swift: put %q: %w", name, err)
	}
	// No ETag on the request: Swift would check it against the segments'
	// ETags, radosgw against the manifest document. The reply's is checked.
	want := hex.EncodeToString(sloETag.Sum(nil))
	h := goswift.Headers{
		"Content-Type":   mime.FormatMediaType(contentType, map[string]string{sizeParam: strconv.FormatInt(size, 10)}),
		"Content-Length": strconv.Itoa(len(doc)),
		segmentsHeader:   segContainer + "/" + base,
	}
	if opts.IfNotExists {
		h["If-None-Match"] = "*"
	}
	return t.call(ctx, "put", name, func(ctx context.Context) error {
		hdrs, err := t.storageCall(ctx, goswift.RequestOpts{
			ObjectName: full,
			Operation:  http.MethodPut,
			Parameters: url.Values{"multipart-manifest": {"put"}},
			Headers:    h,
			Body:       bytes.NewReader(doc),
			NoResponse: true,
		}, nil)
		if err != nil {
			return err
		}
		if got := strings.ToLower(strings.Trim(hdrs["Etag"], `"`)); got != want {
			// The manifest does not describe the segments sent: remove it
			// (the deferred cleanup removes the segments).
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = t.conn.ObjectDelete(dctx, t.cfg.Container, full)
			return fmt.Errorf("%w: the large object's ETag is %q, but the MD5 of its segments' ETags is %s; the object was deleted", ErrChecksum, got, want)
		}
		return nil
	})
}

// storageCall makes a request of the SDK against an object of the
// container, for the requests the SDK has no method for. When decode is set
// the reply's body is decoded into it as JSON.
func (t *Target) storageCall(ctx context.Context, opts goswift.RequestOpts, decode any) (goswift.Headers, error) {
	storageURL, err := t.conn.GetStorageUrl(ctx)
	if err != nil {
		return nil, err
	}
	opts.Container = t.cfg.Container
	opts.NoResponse = decode == nil
	resp, hdrs, err := t.conn.Call(ctx, storageURL, opts)
	if err != nil || decode == nil {
		return hdrs, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(decode); err != nil {
		return hdrs, fmt.Errorf("reading the reply: %w", err)
	}
	return hdrs, nil
}

// segmentBase returns the name prefix of the segments of one upload of the
// object full: a hash of the name (segment names stay short and free of odd
// characters whatever the object's name), the time, the size and the
// segment size, after the swift client's "<name>/slo/<time>/<size>/<segment>".
func segmentBase(full string, size, segSize int64) string {
	h := sha256.Sum256([]byte(full))
	return fmt.Sprintf("%x/slo/%d/%d/%d", h[:16], time.Now().UnixNano(), size, segSize)
}

// replacedSegments finds the segments of the large object full, which a Put
// is about to replace, and returns a function that deletes them (best
// effort: what it cannot delete stays in the segments container).
func (t *Target) replacedSegments(ctx context.Context, name, full string, hdrs goswift.Headers) func() {
	var container string
	var names []string
	if where := hdrs[segmentsHeader]; where != "" {
		c, base, ok := strings.Cut(where, "/")
		if !ok {
			return func() {}
		}
		container = c
		err := t.call(ctx, "list", container+"/"+base, func(ctx context.Context) error {
			var err error
			names, err = t.conn.ObjectNamesAll(ctx, container, &goswift.ObjectsOpts{Prefix: base + "/", Limit: listPage})
			return err
		})
		if err != nil {
			return func() {}
		}
	} else {
		// Written by another client: read its manifest (Swift can).
		err := t.call(ctx, "stat", name, func(ctx context.Context) error {
			c, segs, err := t.conn.LargeObjectGetSegments(ctx, t.cfg.Container, full)
			container = c
			for _, s := range segs {
				names = append(names, s.Name)
			}
			return err
		})
		if err != nil {
			return func() {}
		}
	}
	return func() { _ = t.deleteSegments(ctx, container, names) }
}

// bulkResult is the reply to a multipart-manifest=delete request.
type bulkResult struct {
	Status string     `json:"Response Status"`
	Errors [][]string `json:"Errors"`
}

// deleteLarge deletes a static large object and its segments, which the
// server does for multipart-manifest=delete.
func (t *Target) deleteLarge(ctx context.Context, name, full string) error {
	var res bulkResult
	err := t.call(ctx, "delete", name, func(ctx context.Context) error {
		_, err := t.storageCall(ctx, goswift.RequestOpts{
			ObjectName: full,
			Operation:  http.MethodDelete,
			Parameters: url.Values{"multipart-manifest": {"delete"}},
			Headers:    goswift.Headers{"Accept": "application/json"},
		}, &res)
		return err
	})
	if err != nil {
		return err
	}
	code := statusCode(res.Status)
	var failed []string
	for _, e := range res.Errors {
		if len(e) == 2 && statusCode(e[1]) != http.StatusNotFound {
			failed = append(failed, e[0]+": "+e[1])
			if code < 300 {
				code = statusCode(e[1])
			}
		}
	}
	if code < 300 && len(failed) == 0 {
		return nil
	}
	// radosgw answers so for an object deleted in the meantime too.
	if _, found, herr := t.head(ctx, "delete", name, full); herr == nil && !found && code == http.StatusBadRequest {
		return nil
	}
	return fmt.Errorf("swift: %w", &target.StatusError{Op: "delete", Name: name, Code: code,
		Err: fmt.Errorf("deleting the large object and its segments failed (%s): %s", res.Status, strings.Join(failed, "; "))})
}

// statusCode reads the code of a status line such as "404 Not Found"; 0 if
// there is none.
func statusCode(status string) int {
	code, _, _ := strings.Cut(strings.TrimSpace(status), " ")
	n, err := strconv.Atoi(code)
	if err != nil {
		return 0
	}
	return n
}

// deleteSegments deletes the named objects of container, a few at a time,
// even when ctx has ended (so a cancelled upload still cleans up). It returns
// the first error other than not found.
func (t *Target) deleteSegments(ctx context.Context, container string, names []string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	const workers = 4
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan string)
	)
	for range workers {
		wg.Go(func() {
			for seg := range next {
				err := t.call(dctx, "delete", container+"/"+seg, func(ctx context.Context) error {
					return t.conn.ObjectDelete(ctx, container, seg)
				})
				if err != nil && !errors.Is(err, target.ErrNotFound) {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, n := range names {
		next <- n
	}
	close(next)
	wg.Wait()
	return first
}

// listedSize returns an object's size from its listing entry: for a large
// object written by this package, the size its manifest's Content-Type
// carries (radosgw lists the manifest's own size).
func listedSize(o goswift.Object) int64 {
	if !strings.Contains(o.ContentType, sizeParam) {
		return o.Bytes
	}
	_, params, err := mime.ParseMediaType(o.ContentType)
	if err != nil {
		return o.Bytes
	}
	if n, err := strconv.ParseInt(params[sizeParam], 10, 64); err == nil && n >= 0 {
		return n
	}
	return o.Bytes
}
