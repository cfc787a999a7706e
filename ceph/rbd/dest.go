//go:build ceph

package rbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	librbd "github.com/ceph/go-ceph/rbd"

	"github.com/chunkback/chunkback/backup"
	"github.com/chunkback/chunkback/target"
)

// DestinationOptions describes the image a restore writes into.
type DestinationOptions struct {
	// Image is the image to write (Image.Snapshot must be empty).
	Image ImageRef
	// Size is the number of bytes the restore writes (the backup's size).
	Size int64
	// Create makes the image, Size bytes large with librbd's default
	// features, when it does not exist. An existing image must be at
	// least Size bytes.
	Create bool
	// KeepExcessBytes leaves the bytes of an existing image past Size as
	// they are. By default they are discarded, so they read as zeros
	// (Cinder's restore_discard_excess_bytes, default true).
	KeepExcessBytes bool
}

// Destination is an RBD image opened for a restore: an io.WriterAt that
// also implements backup.Discarder (librbd discard) and Sync (flush). Its
// writes may run in parallel.
type Destination struct {
	ref       ImageRef
	img       *librbd.Image
	size      int64 // the image's size
	zeroed    bool  // created by OpenDestination: reads as zeros
	written   atomic.Int64
	discarded atomic.Int64
}

var _ backup.Discarder = (*Destination)(nil)

// maxDiscard bounds one librbd discard: rbd_discard returns the length as
// an int.
const maxDiscard = 1 << 30

// OpenDestination opens (or with o.Create, creates) the image to restore
// into, and checks its size: too small is an error wrapping
// backup.ErrDestination; bytes past o.Size are discarded unless
// o.KeepExcessBytes.
func (c *Conn) OpenDestination(ctx context.Context, o DestinationOptions) (*Destination, error) {
	ref := o.Image
	if err := ref.validate("destination"); err != nil {
		return nil, err
	}
	if ref.Snapshot != "" {
		return nil, fmt.Errorf("%w: rbd destination %s: a snapshot is read-only: name the image without @%s", target.ErrInvalidArgument, ref, ref.Snapshot)
	}
	if o.Size < 0 {
		return nil, fmt.Errorf("%w: rbd destination %s: Size %d must not be negative", target.ErrInvalidArgument, ref, o.Size)
	}
	ioc, err := c.ioctx(ref.Pool)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	created := false
	img, err := librbd.OpenImage(ioc, ref.Image, librbd.NoSnapshot)
	if errors.Is(err, librbd.ErrNotFound) && o.Create {
		opts := librbd.NewRbdImageOptions()
		err = librbd.CreateImage(ioc, ref.Image, uint64(o.Size), opts)
		opts.Destroy()
		if err != nil {
			return nil, c.imageError("creating", ref, err)
		}
		created = true
		img, err = librbd.OpenImage(ioc, ref.Image, librbd.NoSnapshot)
	}
	if err != nil {
		err = c.imageError("opening", ref, err)
		if errors.Is(err, target.ErrNotFound) {
			err = fmt.Errorf("%w (create it, or let the restore create it: Create, or rbd://...?create=true)", err)
		}
		return nil, err
	}
	d := &Destination{ref: ref, img: img, zeroed: created}
	size, err := img.GetSize()
	if err != nil {
		d.Close()
		return nil, c.imageError("measuring", ref, err)
	}
	d.size = int64(size)
	if d.size < o.Size {
		d.Close()
		return nil, fmt.Errorf("%w: rbd image %s holds %d bytes but the backup needs %d: grow it (rbd resize --size %dB %s) or restore into a new image", backup.ErrDestination, ref, d.size, o.Size, o.Size, ref)
	}
	if d.size > o.Size && !o.KeepExcessBytes && !created {
		if err := d.Discard(o.Size, d.size-o.Size); err != nil {
			d.Close()
			return nil, fmt.Errorf("%w: discarding the %d bytes of %s past the backup's end: %w", backup.ErrDestination, d.size-o.Size, ref, err)
		}
	}
	return d, nil
}

// WriteAt writes p at off.
func (d *Destination) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("rbd: writing %d bytes at byte %d of %s: past its end (%d bytes)", len(p), off, d.ref, d.size)
	}
	n, err := d.img.WriteAt(p, off)
	d.written.Add(int64(n))
	if err != nil {
		return n, fmt.Errorf("rbd: writing %s at byte %d: %w", d.ref, off, err)
	}
	return n, nil
}

// Discard makes length bytes at offset read as zeros, freeing their space.
func (d *Destination) Discard(offset, length int64) error {
	if offset < 0 || length < 0 || offset+length > d.size {
		return fmt.Errorf("rbd: discarding %d bytes at byte %d of %s: past its end (%d bytes)", length, offset, d.ref, d.size)
	}
	for length > 0 {
		n := min(length, maxDiscard)
		if _, err := d.img.Discard(uint64(offset), uint64(n)); err != nil {
			return fmt.Errorf("rbd: discarding %d bytes at byte %d of %s: %w", n, offset, d.ref, err)
		}
		d.discarded.Add(n)
		offset += n
		length -= n
	}
	return nil
}

// Sync flushes librbd's cache to the cluster.
func (d *Destination) Sync() error {
	if err := d.img.Flush(); err != nil {
		return fmt.Errorf("rbd: flushing %s: %w", d.ref, err)
	}
	return nil
}

// Size returns the image's size in bytes.
func (d *Destination) Size() int64 { return d.size }

// Zeroed reports whether the image was created by OpenDestination, so it
// reads as zeros (pass it as backup.RestoreOptions.DestinationZeroed).
func (d *Destination) Zeroed() bool { return d.zeroed }

// BytesWritten and BytesDiscarded count what the restore did to the image.
func (d *Destination) BytesWritten() int64 { return d.written.Load() }

// BytesDiscarded counts the bytes discarded (see BytesWritten).
func (d *Destination) BytesDiscarded() int64 { return d.discarded.Load() }

// Close flushes and closes the image.
func (d *Destination) Close() error {
	ferr := d.img.Flush()
	cerr := d.img.Close()
	if ferr != nil {
		return fmt.Errorf("rbd: flushing %s: %w", d.ref, ferr)
	}
	return cerr
}

// RestoreOptions describes a restore from the chunked engine into an image.
type RestoreOptions struct {
	// Image, Create and KeepExcessBytes are as in DestinationOptions (the
	// size is the backup's).
	Image           ImageRef
	Create          bool
	KeepExcessBytes bool
	// Restore is passed to backup.Engine.Restore; DestinationZeroed is set
	// for an image Restore creates.
	Restore backup.RestoreOptions
}

// RestoreResult describes a restore into an image.
type RestoreResult struct {
	*backup.RestoreResult
	// Created is true when the restore created the image.
	Created bool
	// BytesWritten and BytesDiscarded count the image's writes and
	// discards (the excess bytes' discard included).
	BytesWritten, BytesDiscarded int64
}

// Restore restores the chunked backup backupID (with its chain) from e into
// an image.
func Restore(ctx context.Context, e *backup.Engine, c *Conn, backupID string, o RestoreOptions) (*RestoreResult, error) {
	if e == nil || c == nil {
		return nil, fmt.Errorf("%w: rbd restore: the engine and the connection must not be nil", backup.ErrInvalidOptions)
	}
	info, err := e.Find(ctx, backupID, "")
	if err != nil {
		return nil, err
	}
	d, err := c.OpenDestination(ctx, DestinationOptions{Image: o.Image, Size: info.Size, Create: o.Create, KeepExcessBytes: o.KeepExcessBytes})
	if err != nil {
		return nil, err
	}
	ro := o.Restore
	ro.DestinationZeroed = ro.DestinationZeroed || d.Zeroed()
	res, err := e.Restore(ctx, backupID, d, ro)
	if cerr := d.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", backup.ErrDestination, cerr)
	}
	if err != nil {
		return nil, err
	}
	return &RestoreResult{RestoreResult: res, Created: d.Zeroed(), BytesWritten: d.BytesWritten(), BytesDiscarded: d.BytesDiscarded()}, nil
}

var _ io.WriterAt = (*Destination)(nil)
