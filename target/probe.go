package target

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Probe tells whether t is usable for backups, as Velero validates its
// storage locations: it runs t's Check (when t, or a target it decorates, is
// a Checker), then writes a probe object below opts.Prefix and reads it
// back (Put, Stat, Get compared byte for byte, a ranged Get, List), writes
// and reads a large one if opts.LargeSize asks, deletes them and checks
// that they are gone. Each step is timed and its failure classified
// (ErrorKind); the store's clock is compared with this host's; and
// credentials that may read but not write are reported as read-only.
//
// Probe always tries to delete what it wrote, even when a step failed or
// ctx ended (the deletion gets opts.StepTimeout of its own); a probe object
// it could not delete is named in the report's Problems.
//
// The store's failures are in the report (OK false), not in the error,
// which is non-nil only when opts are invalid (ErrInvalidArgument) or ctx
// ended, and then comes with the report of what ran.
func Probe(ctx context.Context, t Target, opts ProbeOptions) (*ProbeReport, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("probe: nil target: %w", ErrInvalidArgument)
	}
	p := &prober{t: t, opts: opts.withDefaults(), report: &ProbeReport{Start: time.Now()}}
	p.report.Object = p.opts.Prefix + "probe-" + p.report.Start.UTC().Format("20060102T150405Z") + "-" + randomHex(8)
	p.run(ctx)
	p.finish(ctx)
	if err := ctx.Err(); err != nil {
		return p.report, fmt.Errorf("probe: %w", err)
	}
	return p.report, nil
}

// prober runs one probe.
type prober struct {
	t      Target
	opts   ProbeOptions // with defaults
	report *ProbeReport

	small, large  *pattern // nil until written (or attempted)
	largeName     string
	putBefore     time.Time
	putAfter      time.Time
	written       []string // probe objects a Put may have stored
	leftBehind    []string // of those, the ones the delete step could not remove
	deleteRefused bool     // Delete failed with ErrPermission
}

func (p *prober) add(s ProbeStep) ProbeStep {
	p.report.Steps = append(p.report.Steps, s)
	return s
}

// step runs fn as the step name under the step timeout, unless ctx has
// ended.
func (p *prober) step(ctx context.Context, name string, fn func(ctx context.Context) error) ProbeStep {
	if err := ctx.Err(); err != nil {
		return p.add(skippedStep(name, "the probe was interrupted: "+err.Error()))
	}
	sctx, cancel := context.WithTimeout(ctx, p.opts.StepTimeout)
	defer cancel()
	start := time.Now()
	err := fn(sctx)
	if err != nil && sctx.Err() != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		// The step ran out of time, and the target's error does not say so.
		err = fmt.Errorf("%w after %v (ProbeOptions.StepTimeout): %w", context.DeadlineExceeded, p.opts.StepTimeout, err)
	}
	return p.add(NewProbeStep(name, start, err))
}

func (p *prober) run(ctx context.Context) {
	name := p.report.Object
	if c, ok := As[Checker](p.t); ok {
		if s := p.step(ctx, StepCheck, c.Check); !s.OK {
			for _, n := range []string{StepPut, StepStat, StepGet, StepGetRange, StepList, StepDelete, StepStatDeleted} {
				p.add(skippedStep(n, "the check failed"))
			}
			return
		}
	} else {
		p.add(skippedStep(StepCheck, "the target has no native check"))
	}
	defer p.cleanup(ctx)

	p.small = newPattern(p.opts.Size)
	put := p.step(ctx, StepPut, func(ctx context.Context) error {
		p.putBefore = time.Now()
		err := p.t.Put(ctx, name, p.small.reader(), p.small.size, PutOptions{})
		p.putAfter = time.Now()
		p.noteWritten(name, err)
		return err
	})
	if put.OK {
		p.step(ctx, StepStat, func(ctx context.Context) error {
			info, err := p.t.Stat(ctx, name)
			if err != nil {
				return err
			}
			if info.Size != p.small.size {
				return fmt.Errorf("stat %q: size %d, but %d bytes were written: %w", name, info.Size, p.small.size, ErrProbeMismatch)
			}
			p.measureSkew(info.ModTime)
			return nil
		})
		p.step(ctx, StepGet, func(ctx context.Context) error { return p.compare(ctx, name, p.small, 0, -1) })
		off, n := p.small.size/3, max(p.small.size/3, 1)
		if off+n > p.small.size {
			off, n = 0, p.small.size
		}
		p.step(ctx, StepGetRange, func(ctx context.Context) error { return p.compare(ctx, name, p.small, off, n) })
	} else {
		for _, n := range []string{StepStat, StepGet, StepGetRange} {
			p.add(skippedStep(n, "the put failed"))
		}
	}
	// List even after a failed Put: that it works tells read-only
	// credentials from none.
	p.step(ctx, StepList, func(ctx context.Context) error { return p.list(ctx, name, put.OK) })

	if p.opts.LargeSize > 0 {
		if !put.OK {
			p.add(skippedStep(StepPutLarge, "the put failed"))
			p.add(skippedStep(StepGetLarge, "the put failed"))
			return
		}
		p.largeName = name + "-large"
		p.large = newPattern(p.opts.LargeSize)
		s := p.step(ctx, StepPutLarge, func(ctx context.Context) error {
			err := p.t.Put(ctx, p.largeName, p.large.reader(), p.large.size, PutOptions{})
			p.noteWritten(p.largeName, err)
			return err
		})
		p.throughput(s)
		if !s.OK {
			p.add(skippedStep(StepGetLarge, "the put of the large object failed"))
			return
		}
		p.throughput(p.step(ctx, StepGetLarge, func(ctx context.Context) error {
			return p.compare(ctx, p.largeName, p.large, 0, -1)
		}))
	}
}

// throughput notes the rate of a passed large-object step.
func (p *prober) throughput(s ProbeStep) {
	if s.OK && s.LatencyMS > 0 {
		last := &p.report.Steps[len(p.report.Steps)-1]
		last.Note = fmt.Sprintf("%.1f MiB/s", float64(p.large.size)/(1<<20)/(s.LatencyMS/1000))
	}
}

// noteWritten records that the Put of name, which returned err, may have
// stored it: a Put refused up front (permission, a missing container, a bad
// argument) stored nothing, any other may have stored it before failing.
func (p *prober) noteWritten(name string, err error) {
	if err == nil || !(errors.Is(err, ErrPermission) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidArgument)) {
		p.written = append(p.written, name)
	}
}

// cleanup deletes the probe objects, on a context that outlives ctx, and
// checks that they are gone. It deletes the small object even when its Put
// was refused, as a probe of the permission to delete.
func (p *prober) cleanup(ctx context.Context) {
	cctx := context.WithoutCancel(ctx)
	names := []string{p.report.Object}
	if p.largeName != "" {
		names = append(names, p.largeName)
	}
	del := p.step(cctx, StepDelete, func(ctx context.Context) error {
		var errs []error
		for _, n := range names {
			if err := p.t.Delete(ctx, n); err != nil {
				if slices.Contains(p.written, n) {
					p.leftBehind = append(p.leftBehind, n)
				}
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	p.deleteRefused = errors.Is(del.Err, ErrPermission)
	if !del.OK {
		p.add(skippedStep(StepStatDeleted, "the delete failed"))
		return
	}
	p.step(cctx, StepStatDeleted, func(ctx context.Context) error {
		for _, n := range names {
			info, err := p.t.Stat(ctx, n)
			switch {
			case err == nil:
				p.leftBehind = append(p.leftBehind, n)
				return fmt.Errorf("stat %q after its delete found it (%d bytes): %w", n, info.Size, ErrProbeMismatch)
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		return nil
	})
}

// compare reads [off, off+n) of the object name (n < 0: to the end) and
// compares it with the pattern that was written.
func (p *prober) compare(ctx context.Context, name string, want *pattern, off, n int64) error {
	rc, err := p.t.Get(ctx, name, off, n)
	if err != nil {
		return err
	}
	defer rc.Close()
	if n < 0 {
		n = want.size - off
	}
	got, wantBuf := make([]byte, 64<<10), make([]byte, 64<<10)
	pos := off
	for {
		k, err := io.ReadFull(rc, got)
		if k > 0 {
			if pos+int64(k) > off+n {
				return fmt.Errorf("get %q at %d: more than the %d bytes asked for: %w", name, off, n, ErrProbeMismatch)
			}
			want.readAt(wantBuf[:k], pos)
			if !bytes.Equal(got[:k], wantBuf[:k]) {
				return fmt.Errorf("get %q: the bytes at %d..%d differ from those written: %w", name, pos, pos+int64(k), ErrProbeMismatch)
			}
			pos += int64(k)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("get %q: reading at %d: %w", name, pos, err)
		}
	}
	if pos != off+n {
		return fmt.Errorf("get %q at %d: %d bytes, %d expected: %w", name, off, pos-off, n, ErrProbeMismatch)
	}
	return nil
}

var errFound = errors.New("found")

// list lists the probe object's name as a prefix: it must find the object
// with its size when the Put passed.
func (p *prober) list(ctx context.Context, name string, stored bool) error {
	var found *Info
	err := p.t.List(ctx, name, func(info Info) error {
		if info.Name == name {
			found = &info
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return err
	}
	switch {
	case !stored:
		return nil
	case found == nil:
		return fmt.Errorf("list %q: the object just written is not listed: %w", name, ErrProbeMismatch)
	case found.Size != p.small.size:
		return fmt.Errorf("list %q: size %d, but %d bytes were written: %w", name, found.Size, p.small.size, ErrProbeMismatch)
	}
	return nil
}

// measureSkew compares the store's modification time of the probe object
// with the local clock around its Put. Stores that keep whole seconds may
// record up to a second before the Put started.
func (p *prober) measureSkew(mod time.Time) {
	if mod.IsZero() || p.putBefore.IsZero() {
		return
	}
	lo, hi := p.putBefore.Add(-time.Second), p.putAfter
	var skew time.Duration
	switch {
	case mod.Before(lo):
		skew = mod.Sub(lo)
	case mod.After(hi):
		skew = mod.Sub(hi)
	}
	p.report.ClockSkew = &ClockSkew{
		SkewMS:   skew.Milliseconds(),
		MaxMS:    p.opts.MaxClockSkew.Milliseconds(),
		Exceeded: skew > p.opts.MaxClockSkew || -skew > p.opts.MaxClockSkew,
	}
}

// finish sets the report's verdict and problems.
func (p *prober) finish(ctx context.Context) {
	r := p.report
	r.DurationMS = millis(time.Since(r.Start))
	r.OK = ctx.Err() == nil // an interrupted probe proves nothing
	for _, s := range r.Steps {
		if !s.OK && !s.Skipped {
			r.OK = false
		}
	}
	if err := ctx.Err(); err != nil {
		r.Problems = append(r.Problems, "the probe was interrupted ("+err.Error()+") before it could finish")
	}
	check, _ := r.Step(StepCheck)
	put, _ := r.Step(StepPut)
	list, _ := r.Step(StepList)
	if errors.Is(put.Err, ErrPermission) && (check.OK || list.OK) {
		r.ReadOnly = true
		r.Problems = append(r.Problems, "read-only credentials: the store lets them read (list) but refuses writes ("+put.Error+
			"): give them permission to write and delete objects, or use this target for restores only")
	}
	for _, s := range r.Steps {
		if s.OK || s.Skipped || (r.ReadOnly && s.Name == StepPut) {
			continue
		}
		r.Problems = append(r.Problems, problemOf(s))
	}
	if sk := r.ClockSkew; sk != nil && sk.Exceeded {
		r.OK = false
		r.Problems = append(r.Problems, fmt.Sprintf("clock skew: the store's clock is %v %s this host's, more than %v: fix the time (NTP) on whichever is wrong; S3 refuses signed requests beyond 15 minutes",
			time.Duration(abs(sk.SkewMS))*time.Millisecond, map[bool]string{true: "ahead of", false: "behind"}[sk.SkewMS > 0], p.opts.MaxClockSkew))
	}
	if len(p.leftBehind) > 0 {
		r.OK = false
		why := "delete them by hand"
		if p.deleteRefused && !r.ReadOnly {
			why = "the credentials may write but not delete (a write-once bucket, or no delete permission), which retention and backup deletion need; delete them by hand"
		}
		r.Problems = append(r.Problems, fmt.Sprintf("probe objects left behind: %q: %s", p.leftBehind, why))
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// pattern is the content of a probe object: size bytes generated from a
// random key, so any range can be produced again to compare with what the
// store returns, without holding the object in memory.
type pattern struct {
	key  [4096]byte
	size int64
}

func newPattern(size int64) *pattern {
	p := &pattern{size: size}
	_, _ = rand.Read(p.key[:])
	return p
}

// readAt fills b with the bytes at off (within the object).
func (p *pattern) readAt(b []byte, off int64) {
	for i := range b {
		o := off + int64(i)
		b[i] = p.key[o%int64(len(p.key))] ^ byte(o>>12) ^ byte(o>>20)
	}
}

// ReadAt implements io.ReaderAt for reader.
func (p *pattern) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-off))
	p.readAt(b[:n], off)
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// reader returns the whole object as a seekable body for Put.
func (p *pattern) reader() io.ReadSeeker { return io.NewSectionReader(p, 0, p.size) }
