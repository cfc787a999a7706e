package targettest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Op names a method of target.Target, for Faulty's rules and counters.
type Op string

// The operations of target.Target.
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpStat   Op = "stat"
	OpList   Op = "list"
	OpDelete Op = "delete"
)

var allOps = [...]Op{OpPut, OpGet, OpStat, OpList, OpDelete}

// ErrInjected is the error a Fault returns when it names none. It wraps
// target.ErrUnavailable, so retry decorators treat it as transient.
var ErrInjected = fmt.Errorf("targettest: injected fault: %w", target.ErrUnavailable)

// Fault is one rule of a Faulty target: which calls it hits and what it does
// to them. The zero value with only Op set fails every call of Op with
// ErrInjected.
type Fault struct {
	// Op is the operation the fault applies to.
	Op Op
	// Match selects calls by object name (for List, by prefix); nil matches
	// every call.
	Match func(name string) bool
	// Times is how many calls the fault hits before it is spent; 0 means no
	// limit. With Times 1 and Prob 0 it fails just the next matching call.
	Times int
	// Prob, if above 0, makes the fault hit each matching call with this
	// probability, drawn from the Faulty's seeded random source.
	Prob float64

	// Err is the error a hit call returns (default ErrInjected).
	Err error
	// After makes the hit call reach the inner target first and then report
	// Err anyway, as when a reply is lost after the store did the work.
	After bool
	// Torn (OpPut only) makes a hit Put store only the first half of the
	// body in the inner target, as a complete object, and then return Err:
	// a store without atomic writes, that an engine must catch on restore.
	Torn bool
	// Corrupt (OpGet only) makes a hit Get succeed but return the data with
	// the lowest bit of its middle byte flipped (empty data is unchanged).
	// Err is ignored.
	Corrupt bool
}

// FaultOptions configures NewFaulty. The zero value injects nothing.
type FaultOptions struct {
	// Faults are the initial rules; more can be added with Faulty.Add. The
	// first rule that hits a call decides what happens to it.
	Faults []Fault
	// Latency delays every call (before it reaches the inner target), and
	// ends early with the context's error if the context is cancelled.
	Latency time.Duration
	// Seed seeds the random source of Fault.Prob, so a failing test can be
	// reproduced.
	Seed uint64
}

// Faulty wraps a target and injects faults, latency and data corruption into
// the calls that reach it, counting calls per operation. It is for testing
// engines and decorators; it is safe for concurrent use.
type Faulty struct {
	inner target.Target

	mu      sync.Mutex
	rules   []*rule
	rnd     *rand.Rand
	latency time.Duration

	calls    [len(allOps)]atomic.Int64
	injected [len(allOps)]atomic.Int64
}

type rule struct {
	Fault
	hits int
}

// NewFaulty wraps inner. It panics if a fault names an operation that does
// not exist, or sets Torn or Corrupt on the wrong operation.
func NewFaulty(inner target.Target, opts FaultOptions) *Faulty {
	f := &Faulty{
		inner:   inner,
		rnd:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		latency: opts.Latency,
	}
	f.Add(opts.Faults...)
	return f
}

// Add appends rules, after the existing ones.
func (f *Faulty) Add(faults ...Fault) {
	for _, ft := range faults {
		opIndex(ft.Op) // panics on an unknown op
		if ft.Torn && ft.Op != OpPut {
			panic("targettest: Fault.Torn applies to OpPut only")
		}
		if ft.Corrupt && ft.Op != OpGet {
			panic("targettest: Fault.Corrupt applies to OpGet only")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range faults {
		f.rules = append(f.rules, &rule{Fault: ft})
	}
}

// FailNext makes the next n calls of op fail with err (ErrInjected if nil).
func (f *Faulty) FailNext(op Op, n int, err error) {
	if n > 0 {
		f.Add(Fault{Op: op, Times: n, Err: err})
	}
}

// Reset removes all rules; counters are kept.
func (f *Faulty) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// SetLatency changes the delay added to every call.
func (f *Faulty) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// Calls reports how many calls of op were made, including failed ones.
func (f *Faulty) Calls(op Op) int { return int(f.calls[opIndex(op)].Load()) }

// Injected reports how many calls of op a fault hit.
func (f *Faulty) Injected(op Op) int { return int(f.injected[opIndex(op)].Load()) }

// Unwrap implements target.Wrapper.
func (f *Faulty) Unwrap() target.Target { return f.inner }

func opIndex(op Op) int {
	for i, o := range allOps {
		if o == op {
			return i
		}
	}
	panic(fmt.Sprintf("targettest: unknown Op %q", op))
}

// begin counts the call, waits out the latency and returns the rule that
// hits it, if any.
func (f *Faulty) begin(ctx context.Context, op Op, name string) (*Fault, error) {
	i := opIndex(op)
	f.calls[i].Add(1)
	f.mu.Lock()
	latency := f.latency
	var hit *Fault
	for _, r := range f.rules {
		if r.Op != op || (r.Times > 0 && r.hits >= r.Times) || (r.Match != nil && !r.Match(name)) {
			continue
		}
		if r.Prob > 0 && f.rnd.Float64() >= r.Prob {
			continue
		}
		r.hits++
		ft := r.Fault
		hit = &ft
		break
	}
	f.mu.Unlock()
	if hit != nil {
		f.injected[i].Add(1)
		if hit.Err == nil {
			hit.Err = ErrInjected
		}
	}
	if latency > 0 {
		timer := time.NewTimer(latency)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("faulty: %s %q: %w", op, name, ctx.Err())
		}
	}
	return hit, nil
}

// Put implements target.Target.
func (f *Faulty) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	hit, err := f.begin(ctx, OpPut, name)
	switch {
	case err != nil:
		return err
	case hit == nil:
		return f.inner.Put(ctx, name, body, size, opts)
	case hit.Torn:
		if err := f.inner.Put(ctx, name, body, size/2, opts); err != nil {
			return err
		}
	case hit.After:
		if err := f.inner.Put(ctx, name, body, size, opts); err != nil {
			return err
		}
	}
	return fmt.Errorf("faulty: put %q: %w", name, hit.Err)
}

// Get implements target.Target.
func (f *Faulty) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	hit, err := f.begin(ctx, OpGet, name)
	switch {
	case err != nil:
		return nil, err
	case hit == nil:
		return f.inner.Get(ctx, name, offset, length)
	case hit.Corrupt:
		rc, err := f.inner.Get(ctx, name, offset, length)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		if len(data) > 0 {
			data[len(data)/2] ^= 1
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	case hit.After:
		rc, err := f.inner.Get(ctx, name, offset, length)
		if err != nil {
			return nil, err
		}
		rc.Close()
	}
	return nil, fmt.Errorf("faulty: get %q: %w", name, hit.Err)
}

// Stat implements target.Target.
func (f *Faulty) Stat(ctx context.Context, name string) (target.Info, error) {
	hit, err := f.begin(ctx, OpStat, name)
	switch {
	case err != nil:
		return target.Info{}, err
	case hit == nil:
		return f.inner.Stat(ctx, name)
	case hit.After:
		if _, err := f.inner.Stat(ctx, name); err != nil {
			return target.Info{}, err
		}
	}
	return target.Info{}, fmt.Errorf("faulty: stat %q: %w", name, hit.Err)
}

// List implements target.Target. A hit fails the listing before fn is
// called, or with After once the inner listing is complete.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	hit, err := f.begin(ctx, OpList, prefix)
	switch {
	case err != nil:
		return err
	case hit == nil:
		return f.inner.List(ctx, prefix, fn)
	case hit.After:
		if err := f.inner.List(ctx, prefix, fn); err != nil {
			return err
		}
	}
	return fmt.Errorf("faulty: list %q: %w", prefix, hit.Err)
}

// Delete implements target.Target.
func (f *Faulty) Delete(ctx context.Context, name string) error {
	hit, err := f.begin(ctx, OpDelete, name)
	switch {
	case err != nil:
		return err
	case hit == nil:
		return f.inner.Delete(ctx, name)
	case hit.After:
		if err := f.inner.Delete(ctx, name); err != nil {
			return err
		}
	}
	return fmt.Errorf("faulty: delete %q: %w", name, hit.Err)
}
