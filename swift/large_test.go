package swift

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/chunkback/chunkback/target"
)

// failAt serves data and fails once it has served at least n bytes.
type failAt struct {
	*bytes.Reader
	n int64
}

var errBody = errors.New("body failed on purpose")

func (f *failAt) Read(p []byte) (int, error) {
	pos := f.Size() - int64(f.Len())
	if pos >= f.n {
		return 0, errBody
	}
	if rest := f.n - pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	return f.Reader.Read(p)
}

// cancelAt serves data and cancels a context once it has served n bytes.
type cancelAt struct {
	*bytes.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAt) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	if c.Size()-int64(c.Len()) >= c.n {
		c.cancel()
	}
	return n, err
}

// TestSwiftLargeObjects checks the static large objects and their segments
// on each server: stored in segments, read across them (ranges too), listed
// and statted with the object's size, and no segment left behind by a
// replacement, a delete, a failed or a cancelled upload.
func TestSwiftLargeObjects(t *testing.T) {
	servers(t, func(t *testing.T, s server) {
		const seg = 1 << 20
		cfg := s.config(t)
		cfg.SegmentSize = seg
		tg := open(t, cfg)
		ctx := t.Context()
		full := tg.prefix + "big"
		segments := func() int { return len(segmentNamesIn(t, tg, full)) }
		data := make([]byte, 3*seg+seg/2)
		_, _ = rand.Read(data)

		put := func(d []byte, opts target.PutOptions) error {
			return tg.Put(ctx, "big", bytes.NewReader(d), int64(len(d)), opts)
		}
		if err := put(data, target.PutOptions{}); err != nil {
			t.Fatalf("Put %d bytes: %v", len(data), err)
		}
		if n := segments(); n != 4 {
			t.Errorf("%d segments for 3.5 segment sizes, want 4", n)
		}
		requireContent(t, tg, "big", data)
		rc, err := tg.Get(ctx, "big", seg-5, seg+10)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data[seg-5:2*seg+5]) {
			t.Errorf("range across segments: %d bytes, wrong content", len(got))
		}
		info, err := tg.Stat(ctx, "big")
		if err != nil || info.Size != int64(len(data)) {
			t.Errorf("Stat = %+v, %v; want size %d", info, err, len(data))
		}
		var listed []target.Info
		_ = tg.List(ctx, "", func(i target.Info) error { listed = append(listed, i); return nil })
		if len(listed) != 1 || listed[0].Size != int64(len(data)) {
			t.Errorf("List = %+v, want big with size %d", listed, len(data))
		}

		// IfNotExists on the large object: refused, nothing uploaded.
		if err := put(data, target.PutOptions{IfNotExists: true}); !errors.Is(err, target.ErrExists) {
			t.Errorf("IfNotExists on an existing large object = %v", err)
		}
		if n := segments(); n != 4 {
			t.Errorf("%d segments after a refused IfNotExists, want 4", n)
		}

		// Replaced by a smaller large object: the old segments go.
		smaller := data[:2*seg+1]
		if err := put(smaller, target.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := segments(); n != 3 {
			t.Errorf("%d segments after replacing with 2 segment sizes + 1 byte, want 3", n)
		}
		requireContent(t, tg, "big", smaller)

		// A failed and a cancelled replacement leave the object as it was
		// and no segments of their own.
		err = tg.Put(ctx, "big", &failAt{bytes.NewReader(data), 2*seg + 100}, int64(len(data)), target.PutOptions{})
		if !errors.Is(err, errBody) {
			t.Errorf("Put with a failing body = %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		err = tg.Put(cctx, "big", &cancelAt{bytes.NewReader(data), seg + seg/2, cancel}, int64(len(data)), target.PutOptions{})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Put = %v", err)
		}
		if n := segments(); n != 3 {
			t.Errorf("%d segments after a failed and a cancelled upload, want the 3 of the object", n)
		}
		requireContent(t, tg, "big", smaller)

		// Replaced by a small object, then a large one deleted: no segments.
		if err := put([]byte("small"), target.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := segments(); n != 0 {
			t.Errorf("%d segments after replacing with a small object", n)
		}
		if err := put(data, target.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := tg.Delete(ctx, "big"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if n := segments(); n != 0 {
			t.Errorf("%d segments after Delete", n)
		}
		if _, err := tg.Stat(ctx, "big"); !errors.Is(err, target.ErrNotFound) {
			t.Errorf("Stat after Delete = %v", err)
		}

		// More segments than Swift allows: refused before uploading.
		if err := tg.Put(ctx, "huge", bytes.NewReader(nil), (MaxSegments+1)*seg, target.PutOptions{}); !errors.Is(err, target.ErrInvalidArgument) {
			t.Errorf("Put of %d segments = %v, want ErrInvalidArgument", MaxSegments+1, err)
		}
	})
}
