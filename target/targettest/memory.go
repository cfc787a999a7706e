package targettest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Memory is a target.Target that keeps objects in memory, for unit tests.
// It is safe for concurrent use, copies what it is given, honours contexts
// and checks names like every target (target.CheckName). The zero value is
// not usable; call NewMemory.
type Memory struct {
	mu      sync.RWMutex
	objects map[string]memObject
	layout  target.Layout
}

type memObject struct {
	data    []byte // never modified once stored: Put replaces the slice
	modTime time.Time
}

// NewMemory returns an empty in-memory target that reports
// target.LayoutObject.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string]memObject), layout: target.LayoutObject}
}

// SetLayout sets the layout CinderLayout reports, so engine tests can run the
// posix layout against memory.
func (m *Memory) SetLayout(l target.Layout) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.layout = l
}

// CinderLayout implements target.LayoutTarget.
func (m *Memory) CinderLayout() target.Layout {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.layout
}

// memChunk is how much Put reads between two looks at the context.
const memChunk = 256 << 10

// Put implements target.Target.
func (m *Memory) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: put %q: %w", name, err)
	}
	// Read into a buffer of our own, in chunks so cancellation is noticed
	// while the body is read; a failure leaves the map untouched.
	data := make([]byte, size)
	for off := int64(0); off < size; {
		n := min(size-off, memChunk)
		if _, err := io.ReadFull(body, data[off:off+n]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("memory: put %q: reading body at byte %d of %d: %w", name, off, size, err)
		}
		off += n
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory: put %q: %w", name, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[name]; ok && opts.IfNotExists {
		return fmt.Errorf("memory: put %q: %w", name, target.ErrExists)
	}
	m.objects[name] = memObject{data: data, modTime: time.Now()}
	return nil
}

// Get implements target.Target.
func (m *Memory) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	obj, err := m.lookup(ctx, "get", name)
	if err != nil {
		return nil, err
	}
	size := int64(len(obj.data))
	switch {
	case offset < 0:
		return nil, fmt.Errorf("memory: get %q: negative offset %d: %w", name, offset, target.ErrInvalidArgument)
	case offset > size:
		return nil, fmt.Errorf("memory: get %q: offset %d beyond size %d: %w", name, offset, size, target.ErrInvalidRange)
	}
	end := size
	if length >= 0 && length < size-offset {
		end = offset + length
	}
	return &ctxReader{ctx: ctx, r: bytes.NewReader(obj.data[offset:end])}, nil
}

// Stat implements target.Target.
func (m *Memory) Stat(ctx context.Context, name string) (target.Info, error) {
	obj, err := m.lookup(ctx, "stat", name)
	if err != nil {
		return target.Info{}, err
	}
	return target.Info{Name: name, Size: int64(len(obj.data)), ModTime: obj.modTime}, nil
}

func (m *Memory) lookup(ctx context.Context, op, name string) (memObject, error) {
	if err := target.CheckName(name); err != nil {
		return memObject{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return memObject{}, fmt.Errorf("memory: %s %q: %w", op, name, err)
	}
	m.mu.RLock()
	obj, ok := m.objects[name]
	m.mu.RUnlock()
	if !ok {
		return memObject{}, fmt.Errorf("memory: %s %q: %w", op, name, target.ErrNotFound)
	}
	return obj, nil
}

// List implements target.Target. It works on a snapshot of the names taken
// when it starts, and calls fn without holding a lock, so fn may use m.
func (m *Memory) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: list %q: %w", prefix, err)
	}
	var infos []target.Info
	m.mu.RLock()
	for name, obj := range m.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, target.Info{Name: name, Size: int64(len(obj.data)), ModTime: obj.modTime})
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(infos, func(a, b target.Info) int { return strings.Compare(a.Name, b.Name) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory: list %q: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements target.Target.
func (m *Memory) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete %q: %w", name, err)
	}
	m.mu.Lock()
	delete(m.objects, name)
	m.mu.Unlock()
	return nil
}

// ctxReader fails reads once its context is done, as a network stream would.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *ctxReader) Close() error { return nil }
