package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeTarget is a minimal in-memory Target that fails on demand and records
// what it was asked.
type fakeTarget struct {
	mu          sync.Mutex
	objects     map[string][]byte
	errs        map[string][]error // per op, popped by each call; a nil entry succeeds
	always      map[string]error   // per op, when errs is empty
	listBreak   []int              // per failing List: items delivered before the error
	calls       map[string]int
	puts        [][]byte // the bytes each Put attempt read
	inflight    int
	maxInflight int
	hold        time.Duration // how long each operation takes
}

func newFake() *fakeTarget {
	return &fakeTarget{
		objects: map[string][]byte{},
		errs:    map[string][]error{},
		always:  map[string]error{},
		calls:   map[string]int{},
	}
}

func (f *fakeTarget) failNext(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[op] = append(f.errs[op], errs...)
}

func (f *fakeTarget) setAlways(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.always[op] = err
}

func (f *fakeTarget) callCount(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// begin starts an operation and returns the error it must fail with.
func (f *fakeTarget) begin(op string) error {
	f.mu.Lock()
	f.calls[op]++
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	err := f.always[op]
	if q := f.errs[op]; len(q) > 0 {
		err, f.errs[op] = q[0], q[1:]
	}
	f.mu.Unlock()
	if f.hold > 0 {
		time.Sleep(f.hold)
	}
	return err
}

func (f *fakeTarget) end() {
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
}

func (f *fakeTarget) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts PutOptions) error {
	err := f.begin("put")
	defer f.end()
	if err != nil {
		// Fail part-way through the upload.
		b, _ := io.ReadAll(io.LimitReader(body, min(3, size)))
		f.mu.Lock()
		f.puts = append(f.puts, b)
		f.mu.Unlock()
		return err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(body, b); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, b)
	if _, ok := f.objects[name]; ok && opts.IfNotExists {
		return ErrExists
	}
	f.objects[name] = b
	return nil
}

func (f *fakeTarget) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	err := f.begin("get")
	defer f.end()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[name]
	if !ok {
		return nil, ErrNotFound
	}
	if offset > int64(len(b)) {
		return nil, ErrInvalidRange
	}
	b = b[offset:]
	if length >= 0 && length < int64(len(b)) {
		b = b[:length]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeTarget) Stat(ctx context.Context, name string) (Info, error) {
	err := f.begin("stat")
	defer f.end()
	if err != nil {
		return Info{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[name]
	if !ok {
		return Info{}, ErrNotFound
	}
	return Info{Name: name, Size: int64(len(b))}, nil
}

func (f *fakeTarget) List(ctx context.Context, prefix string, fn func(Info) error) error {
	err := f.begin("list")
	defer f.end()
	f.mu.Lock()
	var infos []Info
	for name, b := range f.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, Info{Name: name, Size: int64(len(b))})
		}
	}
	n := len(infos)
	if err != nil {
		n = 0
		if len(f.listBreak) > 0 {
			n, f.listBreak = f.listBreak[0], f.listBreak[1:]
		}
	}
	f.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos[:n] {
		// The store is idle while fn runs: this operation is not in flight.
		f.end()
		ferr := fn(info)
		f.mu.Lock()
		f.inflight++
		f.maxInflight = max(f.maxInflight, f.inflight)
		f.mu.Unlock()
		if ferr != nil {
			return ferr
		}
	}
	return err
}

func (f *fakeTarget) Delete(ctx context.Context, name string) error {
	err := f.begin("delete")
	defer f.end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, name)
	return nil
}

// fakeClock is a clock whose sleeps return at once and move it on.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return nil
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

func (c *fakeClock) env(rand float64) retryEnv {
	return retryEnv{now: c.now, sleep: c.sleep, rand: func() float64 { return rand }}
}

func mustRetry(t *testing.T, inner Target, p RetryPolicy, env retryEnv) *retryTarget {
	t.Helper()
	r, err := newRetry(inner, p, env)
	if err != nil {
		t.Fatalf("newRetry: %v", err)
	}
	return r
}

var errFlaky = fmt.Errorf("read tcp: connection reset by peer: %w", ErrUnavailable)

func TestRetrySucceedsAfterTransientErrors(t *testing.T) {
	f := newFake()
	f.objects["o"] = []byte("abc")
	f.failNext("stat", errFlaky, errors.New("unclassified network failure"))
	clock := newFakeClock()
	var events []RetryEvent
	r := mustRetry(t, f, RetryPolicy{OnRetry: func(e RetryEvent) { events = append(events, e) }}, clock.env(0.5))

	info, err := r.Stat(context.Background(), "o")
	if err != nil || info.Size != 3 {
		t.Fatalf("Stat = %+v, %v; want size 3, nil", info, err)
	}
	if n := f.callCount("stat"); n != 3 {
		t.Errorf("inner Stat called %d times, want 3", n)
	}
	// Full jitter with rand 0.5: half of 100ms, then half of 200ms.
	if got, want := clock.slept(), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("slept %v, want %v", got, want)
	}
	if len(events) != 2 {
		t.Fatalf("OnRetry called %d times, want 2", len(events))
	}
	for i, e := range events {
		if e.Op != "stat" || e.Name != "o" || e.Attempt != i+1 || e.Delay != clock.slept()[i] || e.Err == nil {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	if !errors.Is(events[0].Err, ErrUnavailable) {
		t.Errorf("event 0 error %v is not ErrUnavailable", events[0].Err)
	}
}

func TestRetryPermanentErrorsStopAtOnce(t *testing.T) {
	for _, err := range []error{
		ErrPermission,
		fmt.Errorf("stat %q: %w", "o", ErrNotFound),
		fmt.Errorf("tls: failed to verify certificate: x509: certificate signed by unknown authority: %w", ErrPermanent),
		ErrInvalidArgument,
		ErrInvalidRange,
		ErrExists,
		&StatusError{Op: "stat", Name: "o", Code: 403},
		&StatusError{Op: "stat", Name: "o", Code: 404},
		&StatusError{Op: "stat", Name: "o", Code: 501}, // not in the default list
		context.Canceled, // the target's own, with the caller's context live
	} {
		t.Run(err.Error(), func(t *testing.T) {
			f := newFake()
			f.setAlways("stat", err)
			clock := newFakeClock()
			r := mustRetry(t, f, RetryPolicy{OnRetry: func(RetryEvent) { t.Error("OnRetry called") }}, clock.env(0.5))
			_, got := r.Stat(context.Background(), "o")
			if got != err {
				t.Errorf("error %v, want %v unchanged", got, err)
			}
			if n := f.callCount("stat"); n != 1 {
				t.Errorf("inner Stat called %d times, want 1", n)
			}
			if s := clock.slept(); len(s) != 0 {
				t.Errorf("slept %v", s)
			}
			if q := r.quota.available(); q != retryQuotaSize {
				t.Errorf("quota %d, want %d", q, retryQuotaSize)
			}
		})
	}
}

func TestRetryPermanentAfterRetries(t *testing.T) {
	f := newFake()
	f.failNext("delete", errFlaky, ErrPermission)
	r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
	err := r.Delete(context.Background(), "o")
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), `delete "o": giving up after 2 attempts`) {
		t.Errorf("error %q", err)
	}
	if n := f.callCount("delete"); n != 2 {
		t.Errorf("inner Delete called %d times, want 2", n)
	}
}

func TestRetryMaxAttempts(t *testing.T) {
	for _, tc := range []struct{ maxAttempts, want int }{{0, 4}, {1, 1}, {2, 2}, {7, 7}} {
		t.Run(fmt.Sprint(tc.maxAttempts), func(t *testing.T) {
			f := newFake()
			f.setAlways("delete", errFlaky)
			clock := newFakeClock()
			r := mustRetry(t, f, RetryPolicy{MaxAttempts: tc.maxAttempts}, clock.env(0.5))
			err := r.Delete(context.Background(), "o")
			if n := f.callCount("delete"); n != tc.want {
				t.Errorf("inner Delete called %d times, want %d", n, tc.want)
			}
			if len(clock.slept()) != tc.want-1 {
				t.Errorf("slept %v, want %d waits", clock.slept(), tc.want-1)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("error %v is not ErrUnavailable", err)
			}
			if tc.want == 1 {
				if err != errFlaky {
					t.Errorf("error %q, want the target's unchanged", err)
				}
			} else if want := fmt.Sprintf(`delete "o": giving up after %d attempts: `, tc.want); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it to start with %q", err, want)
			}
		})
	}
}

func TestRetryBackoffFullJitter(t *testing.T) {
	var u float64
	r := mustRetry(t, newFake(), RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second},
		retryEnv{rand: func() float64 { return u }})
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, c := range ceilings {
		c *= time.Millisecond
		for _, u = range []float64{0, 0.25, 0.5, 0.999999} {
			if got, want := r.backoff(i+1), time.Duration(u*float64(c)); got != want {
				t.Errorf("backoff(%d) with rand %v = %v, want %v", i+1, u, got, want)
			}
		}
	}
	u = 0.999999
	for n := 1; n < 200; n++ { // no overflow however many retries
		if d := r.backoff(n); d < 0 || d >= time.Second {
			t.Fatalf("backoff(%d) = %v, out of [0, 1s)", n, d)
		}
	}

	// With real randomness: within [0, ceiling), and spread over it.
	r = mustRetry(t, newFake(), RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}, retryEnv{})
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for range 2000 {
		d := r.backoff(3)
		if d < 0 || d >= 400*time.Millisecond {
			t.Fatalf("backoff(3) = %v, out of [0, 400ms)", d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 40*time.Millisecond || hi < 360*time.Millisecond {
		t.Errorf("2000 jittered delays spread only over [%v, %v]", lo, hi)
	}
}

func TestRetryStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		code  int
		retry bool
	}{
		{nil, 408, true}, {nil, 429, true}, {nil, 500, true}, {nil, 502, true}, {nil, 503, true}, {nil, 504, true},
		{nil, 501, false}, {nil, 400, false}, {nil, 404, false}, {nil, 409, false},
		{[]int{409}, 409, true}, // the list decides, though 409 is ErrExists
		{[]int{409}, 503, false},
	} {
		t.Run(fmt.Sprint(tc.codes, tc.code), func(t *testing.T) {
			f := newFake()
			f.objects["o"] = nil
			se := &StatusError{Op: "stat", Name: "o", Code: tc.code}
			f.failNext("stat", se)
			r := mustRetry(t, f, RetryPolicy{RetryStatusCodes: tc.codes}, newFakeClock().env(0))
			_, err := r.Stat(context.Background(), "o")
			if tc.retry {
				if err != nil || f.callCount("stat") != 2 {
					t.Errorf("error %v after %d calls; want success after 2", err, f.callCount("stat"))
				}
			} else if err != se || f.callCount("stat") != 1 {
				t.Errorf("error %v after %d calls; want the StatusError after 1", err, f.callCount("stat"))
			}
		})
	}
}

func TestRetryPolicyCopiesStatusCodes(t *testing.T) {
	codes := []int{503}
	f := newFake()
	f.objects["o"] = nil
	r := mustRetry(t, f, RetryPolicy{RetryStatusCodes: codes}, newFakeClock().env(0))
	codes[0] = 404
	f.failNext("stat", &StatusError{Code: 503})
	if _, err := r.Stat(context.Background(), "o"); err != nil {
		t.Errorf("the caller's slice changed the policy: %v", err)
	}
}

// raError asks for a delay without being a StatusError.
type raError struct{ d time.Duration }

func (e raError) Error() string                  { return "slow down" }
func (e raError) Unwrap() error                  { return ErrThrottled }
func (e raError) RetryAfterDelay() time.Duration { return e.d }

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      RetryPolicy
		err    error
		rand   float64
		want   time.Duration // the wait; negative: no retry
		errMsg string
	}{
		{"honoured", RetryPolicy{}, &StatusError{Code: 429, RetryAfter: 7 * time.Second}, 0, 7 * time.Second, ""},
		{"honoured 503", RetryPolicy{}, &StatusError{Code: 503, RetryAfter: 2 * time.Second}, 0.9, 2 * time.Second, ""},
		{"not a StatusError", RetryPolicy{}, raError{3 * time.Second}, 0, 3 * time.Second, ""},
		{"backoff longer", RetryPolicy{BaseDelay: time.Second}, &StatusError{Code: 429, RetryAfter: time.Millisecond}, 0.5, 500 * time.Millisecond, ""},
		{"ignored", RetryPolicy{BaseDelay: time.Second, IgnoreRetryAfter: true}, &StatusError{Code: 429, RetryAfter: 7 * time.Second}, 0.5, 500 * time.Millisecond, ""},
		{"at the cap", RetryPolicy{}, &StatusError{Code: 429, RetryAfter: time.Minute}, 0, time.Minute, ""},
		{"over the default cap", RetryPolicy{}, &StatusError{Code: 429, RetryAfter: 2 * time.Minute}, 0, -1,
			`stat "o": giving up after 1 attempt: the store asked to wait 2m0s, longer than MaxRetryAfter (1m0s): `},
		{"over a raised cap", RetryPolicy{MaxRetryAfter: time.Hour}, &StatusError{Code: 429, RetryAfter: 2 * time.Minute}, 0, 2 * time.Minute, ""},
		{"over a lowered cap", RetryPolicy{MaxRetryAfter: time.Second}, raError{3 * time.Second}, 0, -1, "longer than MaxRetryAfter (1s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.objects["o"] = nil
			f.failNext("stat", tc.err)
			clock := newFakeClock()
			r := mustRetry(t, f, tc.p, clock.env(tc.rand))
			_, err := r.Stat(context.Background(), "o")
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), tc.errMsg) || !errors.Is(err, ErrThrottled) {
					t.Errorf("error %v, want one containing %q and wrapping ErrThrottled", err, tc.errMsg)
				}
				if n := f.callCount("stat"); n != 1 {
					t.Errorf("inner Stat called %d times, want 1", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := clock.slept(); !slices.Equal(got, []time.Duration{tc.want}) {
				t.Errorf("slept %v, want [%v]", got, tc.want)
			}
		})
	}
}

func TestRetryNeverWaitsPastTheDeadline(t *testing.T) {
	f := newFake()
	f.setAlways("stat", &StatusError{Op: "stat", Name: "o", Code: 503, RetryAfter: 2 * time.Hour})
	clock := newFakeClock()
	r := mustRetry(t, f, RetryPolicy{MaxRetryAfter: 3 * time.Hour}, clock.env(0))
	ctx, cancel := context.WithDeadline(context.Background(), clock.now().Add(time.Hour))
	defer cancel()
	_, err := r.Stat(ctx, "o")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "would start after the context deadline") {
		t.Errorf("error %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v claims the deadline passed", err)
	}
	if n, s := f.callCount("stat"), clock.slept(); n != 1 || len(s) != 0 {
		t.Errorf("%d calls, slept %v; want 1 call and no wait", n, s)
	}
	// A wait that ends before the deadline is made.
	f.setAlways("stat", nil)
	f.objects["o"] = nil
	f.failNext("stat", &StatusError{Code: 503, RetryAfter: 30 * time.Minute})
	if _, err := r.Stat(ctx, "o"); err != nil {
		t.Errorf("Stat: %v", err)
	}
}

func TestRetryContextCancelledDuringBackoff(t *testing.T) {
	f := newFake()
	f.setAlways("delete", errFlaky)
	// The real clock: the wait is an hour, so only the cancellation can end it.
	r := mustRetry(t, f, RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}, retryEnv{rand: func() float64 { return 0.99 }})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	err := r.Delete(ctx, "o")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Delete returned after %v", el)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) || !IsPermanent(err) {
		t.Errorf("error %v, want context.Canceled with the last error", err)
	}
	if n := f.callCount("delete"); n != 1 {
		t.Errorf("inner Delete called %d times, want 1", n)
	}
}

func TestRetryContextCancelledStopsAtOnce(t *testing.T) {
	f := newFake()
	f.setAlways("stat", errFlaky) // a target that doesn't report the cancellation itself
	clock := newFakeClock()
	r := mustRetry(t, f, RetryPolicy{OnRetry: func(RetryEvent) { t.Error("OnRetry called") }}, clock.env(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Stat(ctx, "o")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("error %v, want context.Canceled and the target's error", err)
	}
	if want := `stat "o": context canceled after 1 attempt; last error: `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if n := f.callCount("stat"); n != 1 || len(clock.slept()) != 0 {
		t.Errorf("%d calls, slept %v", n, clock.slept())
	}
	if q := r.quota.available(); q != retryQuotaSize {
		t.Errorf("quota %d: a retry was paid for", q)
	}

	// The caller's deadline passed: the target's DeadlineExceeded is not its own timeout.
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	f.setAlways("stat", fmt.Errorf("Get: %w", context.DeadlineExceeded))
	if _, err := r.Stat(dctx, "o"); !errors.Is(err, context.DeadlineExceeded) || f.callCount("stat") != 2 {
		t.Errorf("error %v after %d calls", err, f.callCount("stat"))
	}

	// A target that reports it: its error, unchanged.
	f.setAlways("stat", context.Canceled)
	if _, err := r.Stat(ctx, "o"); err != context.Canceled {
		t.Errorf("error %v, want context.Canceled unchanged", err)
	}
}

func TestRetryTargetTimeoutIsRetried(t *testing.T) {
	// context.DeadlineExceeded while the caller's context is live is the
	// target's own timeout (http.Client.Timeout reports it so).
	f := newFake()
	f.objects["o"] = nil
	f.failNext("stat", fmt.Errorf("Get \"https://s3/o\": %w", context.DeadlineExceeded))
	r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
	if _, err := r.Stat(context.Background(), "o"); err != nil {
		t.Fatal(err)
	}
	if n := f.callCount("stat"); n != 2 {
		t.Errorf("inner Stat called %d times, want 2", n)
	}
	if q := r.quota.available(); q != retryQuotaSize {
		t.Errorf("quota %d after the refund, want %d", q, retryQuotaSize)
	}
}

func TestRetryPutResendsWholeBody(t *testing.T) {
	f := newFake()
	f.failNext("put", errFlaky, &StatusError{Code: 500})
	r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
	body := bytes.NewReader([]byte("HEADERpayload"))
	if _, err := body.Seek(6, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(context.Background(), "o", body, 7, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"pay", "pay", "payload"}
	var got []string
	for _, b := range f.puts {
		got = append(got, string(b))
	}
	if !slices.Equal(got, want) {
		t.Errorf("attempts received %q, want %q", got, want)
	}
	if s := string(f.objects["o"]); s != "payload" {
		t.Errorf("stored %q", s)
	}
}

// badSeeker fails every Seek but the first failOn-1 ones.
type badSeeker struct {
	*bytes.Reader
	seeks, failOn int
}

func (b *badSeeker) Seek(off int64, whence int) (int64, error) {
	b.seeks++
	if b.seeks >= b.failOn {
		return 0, errors.New("seek refused")
	}
	return b.Reader.Seek(off, whence)
}

func TestRetryPutCannotRewind(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failOn int
		msg    string
	}{
		{"rewind fails", 2, "cannot rewind the body (seek refused)"},
		{"not seekable", 1, "cannot rewind the body (body cannot seek: seek refused)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.failNext("put", errFlaky)
			r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
			err := r.Put(context.Background(), "o", &badSeeker{Reader: bytes.NewReader([]byte("data")), failOn: tc.failOn}, 4, PutOptions{})
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want the original error and %q", err, tc.msg)
			}
			if n := f.callCount("put"); n != 1 {
				t.Errorf("inner Put called %d times, want 1", n)
			}
			if q := r.quota.available(); q != retryQuotaSize {
				t.Errorf("quota %d, want it all back: no retry was made", q)
			}
		})
	}
}

func TestRetryGetRetriesOpening(t *testing.T) {
	f := newFake()
	f.objects["o"] = []byte("hello world")
	f.failNext("get", errFlaky, &StatusError{Code: 503})
	r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
	rc, err := r.Get(context.Background(), "o", 6, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "world" {
		t.Errorf("read %q", b)
	}
	if n := f.callCount("get"); n != 3 {
		t.Errorf("inner Get called %d times, want 3", n)
	}
	if _, err := r.Get(context.Background(), "missing", 0, -1); err != ErrNotFound {
		t.Errorf("Get(missing) = %v", err)
	}
}

func TestRetryListResumes(t *testing.T) {
	f := newFake()
	for _, n := range []string{"p/a", "p/b", "p/c", "p/d", "p/e", "p/f", "q"} {
		f.objects[n] = nil
	}
	// The first attempt fails after 2 names, the second after 4.
	f.failNext("list", errFlaky, &StatusError{Code: 503})
	f.listBreak = []int{2, 4}
	r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
	var got []string
	if err := r.List(context.Background(), "p/", func(i Info) error {
		got = append(got, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"p/a", "p/b", "p/c", "p/d", "p/e", "p/f"}; !slices.Equal(got, want) {
		t.Errorf("fn saw %q, want %q", got, want)
	}
	if n := f.callCount("list"); n != 3 {
		t.Errorf("inner List called %d times, want 3", n)
	}
}

func TestRetryListFnErrorIsNotRetried(t *testing.T) {
	errStop := errors.New("stop")
	for _, failFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("after a failure ", failFirst), func(t *testing.T) {
			f := newFake()
			for _, n := range []string{"a", "b", "c", "d"} {
				f.objects[n] = nil
			}
			calls := 1
			if failFirst {
				f.failNext("list", errFlaky)
				f.listBreak = []int{1}
				calls = 2
			}
			r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
			var got []string
			err := r.List(context.Background(), "", func(i Info) error {
				got = append(got, i.Name)
				if i.Name == "c" {
					return errStop
				}
				return nil
			})
			if err != errStop {
				t.Errorf("error %v, want fn's error unchanged", err)
			}
			if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
				t.Errorf("fn saw %q, want %q", got, want)
			}
			if n := f.callCount("list"); n != calls {
				t.Errorf("inner List called %d times, want %d", n, calls)
			}
		})
	}
}

func TestRetryQuota(t *testing.T) {
	t.Run("exhausted", func(t *testing.T) {
		f := newFake()
		f.setAlways("stat", errFlaky)
		var events int
		r := mustRetry(t, f, RetryPolicy{MaxAttempts: 1000, OnRetry: func(RetryEvent) { events++ }}, newFakeClock().env(0))
		_, err := r.Stat(context.Background(), "o")
		if !errors.Is(err, ErrRetryQuotaExhausted) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("error %v, want ErrRetryQuotaExhausted and the last error", err)
		}
		if !strings.Contains(err.Error(), "giving up after 101 attempts: retry quota exhausted") {
			t.Errorf("error %q", err)
		}
		if n := f.callCount("stat"); n != 1+retryQuotaSize/retryCost || events != retryQuotaSize/retryCost {
			t.Errorf("%d attempts and %d retries, want %d and %d", n, events, 1+retryQuotaSize/retryCost, retryQuotaSize/retryCost)
		}
		// Once the quota is gone, operations stop after one attempt...
		_, err = r.Stat(context.Background(), "o")
		if !errors.Is(err, ErrRetryQuotaExhausted) || f.callCount("stat") != 102 {
			t.Errorf("error %v after %d attempts", err, f.callCount("stat"))
		}
		// ...until successes refill it.
		f.setAlways("stat", nil)
		f.objects["o"] = nil
		for range 5 {
			if _, err := r.Stat(context.Background(), "o"); err != nil {
				t.Fatal(err)
			}
		}
		if q := r.quota.available(); q != 5*retrySuccessIncrement {
			t.Errorf("quota %d, want %d", q, 5*retrySuccessIncrement)
		}
		f.failNext("stat", errFlaky)
		if _, err := r.Stat(context.Background(), "o"); err != nil {
			t.Errorf("a retry with %d tokens: %v", 5*retrySuccessIncrement, err)
		}
	})
	t.Run("timeouts cost more", func(t *testing.T) {
		f := newFake()
		f.setAlways("stat", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
		r := mustRetry(t, f, RetryPolicy{MaxAttempts: 1000}, newFakeClock().env(0))
		_, err := r.Stat(context.Background(), "o")
		if !errors.Is(err, ErrRetryQuotaExhausted) || f.callCount("stat") != 1+retryQuotaSize/retryTimeoutCost {
			t.Errorf("error %v after %d attempts", err, f.callCount("stat"))
		}
	})
	t.Run("refunds", func(t *testing.T) {
		f := newFake()
		f.objects["o"] = nil
		r := mustRetry(t, f, RetryPolicy{}, newFakeClock().env(0))
		r.quota.tokens = 100
		f.failNext("stat", errFlaky, errFlaky)
		if _, err := r.Stat(context.Background(), "o"); err != nil {
			t.Fatal(err)
		}
		// Two retries took 10; success gives back the last one's 5.
		if q := r.quota.available(); q != 95 {
			t.Errorf("quota %d, want 95", q)
		}
		if _, err := r.Stat(context.Background(), "o"); err != nil {
			t.Fatal(err)
		}
		if q := r.quota.available(); q != 96 {
			t.Errorf("quota %d, want 96", q)
		}
		r.quota.tokens = retryQuotaSize
		if _, err := r.Stat(context.Background(), "o"); err != nil || r.quota.available() != retryQuotaSize {
			t.Errorf("quota %d above its size (%v)", r.quota.available(), err)
		}
	})
	t.Run("legacy has none", func(t *testing.T) {
		f := newFake()
		f.setAlways("stat", errFlaky)
		r := mustRetry(t, f, RetryPolicy{Mode: RetryLegacy, MaxAttempts: 300}, newFakeClock().env(0))
		_, err := r.Stat(context.Background(), "o")
		if errors.Is(err, ErrRetryQuotaExhausted) || f.callCount("stat") != 300 {
			t.Errorf("error %v after %d attempts, want 300", err, f.callCount("stat"))
		}
		if r.rate != nil {
			t.Error("legacy mode has a rate limiter")
		}
	})
}

func TestAdaptiveLimiter(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.now()
	l := newAdaptiveLimiter(clock.env(0))
	ctx := context.Background()
	at := func(d time.Duration) {
		clock.mu.Lock()
		clock.t = t0.Add(d)
		clock.mu.Unlock()
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}

	// Off: 10 requests/s for 2 seconds pass at once, and are measured.
	for i := 1; i <= 20; i++ {
		at(time.Duration(i) * 100 * time.Millisecond)
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s := clock.slept(); len(s) != 0 {
		t.Fatalf("the limiter waited %v before any throttle", s)
	}
	if rate, _ := l.state(); rate != 0 {
		t.Fatalf("rate %v before any throttle, want 0 (off)", rate)
	}
	near("measured rate", l.measured, 10)

	// The first throttle: half the measured rate, an empty bucket.
	l.throttled()
	rate, tokens := l.state()
	near("rate after a throttle", rate, 5)
	near("tokens after a throttle", tokens, 0)

	// A throttle 200ms later is the same event.
	at(2200 * time.Millisecond)
	l.throttled()
	rate, _ = l.state()
	near("rate 200ms later", rate, 5*(1+adaptiveGrowth*0.2))

	// The bucket earned 0.2s*5.1 = 1.02 tokens: one request passes, the next
	// waits for the 0.98 tokens it lacks.
	if err := l.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.wait(ctx); err != nil {
		t.Fatal(err)
	}
	s := clock.slept()
	if len(s) != 1 {
		t.Fatalf("slept %v, want one wait", s)
	}
	near("wait", s[0].Seconds(), 0.98/5.1)

	// A later throttle halves the allowed rate (below the measured one).
	at(2600 * time.Millisecond)
	l.throttled()
	rate, _ = l.state()
	near("rate after a second throttle", rate, 5*(1+adaptiveGrowth*0.6)/2)

	// It grows back linearly: doubled after ten quiet seconds.
	at(12600 * time.Millisecond)
	rate, _ = l.state()
	near("rate ten seconds later", rate, 5*(1+adaptiveGrowth*0.6))

	// Repeated throttles stop at the floor.
	for i := range 20 {
		at(13*time.Second + time.Duration(i)*time.Second)
		l.throttled()
	}
	rate, _ = l.state()
	near("rate after many throttles", rate, adaptiveMinRate)

	// At 0.5/s a request waits 2s for a token: with a deadline 1s away, the
	// wait fails at once and gives its token back.
	l.tokens = 0
	dctx, cancel := context.WithDeadline(ctx, clock.now().Add(time.Second))
	defer cancel()
	n := len(clock.slept())
	if err := l.wait(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if len(clock.slept()) != n {
		t.Error("the refused wait slept")
	}
	near("tokens after a refused wait", l.tokens, 0)

	// A cancelled wait returns the cancellation.
	cctx, cancel2 := context.WithCancel(ctx)
	cancel2()
	l.tokens = -10
	if err := l.wait(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	near("tokens after a cancelled wait", l.tokens, -10)
}

func TestRetryAdaptiveSlowsDownAfterThrottling(t *testing.T) {
	f := newFake()
	f.objects["o"] = nil
	clock := newFakeClock()
	r := mustRetry(t, f, RetryPolicy{Mode: RetryAdaptive}, clock.env(0))
	ctx := context.Background()
	for range 50 { // no throttling, no waiting
		if _, err := r.Stat(ctx, "o"); err != nil {
			t.Fatal(err)
		}
	}
	if s := clock.slept(); len(s) != 0 {
		t.Fatalf("slept %v without throttling", s)
	}
	f.failNext("stat", &StatusError{Code: 429})
	if _, err := r.Stat(ctx, "o"); err != nil {
		t.Fatal(err)
	}
	rate, _ := r.rate.state()
	if rate <= 0 {
		t.Fatal("the limiter is still off after a throttle")
	}
	start := clock.now()
	const n = 20
	for range n {
		if _, err := r.Stat(ctx, "o"); err != nil {
			t.Fatal(err)
		}
	}
	// n requests at about rate per second take about n/rate seconds, less the
	// burst and the tokens earned meanwhile.
	if el, min := clock.now().Sub(start).Seconds(), (n-1)/(rate*1.2); el < min {
		t.Errorf("%d requests took %.2fs at a rate of %.1f/s, want at least %.2fs", n, el, rate, min)
	}
	if q := r.quota.available(); q != retryQuotaSize {
		t.Errorf("quota %d, want it refilled", q)
	}
}

func TestRetryConcurrentUse(t *testing.T) {
	f := newFake()
	clock := newFakeClock()
	// The queued failures are shared, so one Put may meet many of them.
	r := mustRetry(t, f, RetryPolicy{Mode: RetryAdaptive, MaxAttempts: 100}, retryEnv{now: clock.now, sleep: clock.sleep})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				name := fmt.Sprintf("o%d-%d", g, i)
				if i%5 == 0 { // few enough failures that the quota lasts
					f.failNext("put", &StatusError{Code: 429})
				}
				if err := r.Put(context.Background(), name, bytes.NewReader([]byte(name)), int64(len(name)), PutOptions{}); err != nil {
					t.Error(err)
				}
				if _, err := r.Stat(context.Background(), name); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func TestRetryPolicyValidate(t *testing.T) {
	if err := (RetryPolicy{}).Validate(); err != nil {
		t.Errorf("the zero policy: %v", err)
	}
	for _, tc := range []struct {
		p    RetryPolicy
		want string
	}{
		{RetryPolicy{Mode: 7}, "RetryPolicy.Mode is RetryMode(7); use RetryStandard, RetryLegacy or RetryAdaptive"},
		{RetryPolicy{MaxAttempts: -1}, "RetryPolicy.MaxAttempts is -1; use 0 for the default (4), 1 for no retries"},
		{RetryPolicy{BaseDelay: -time.Second}, "RetryPolicy.BaseDelay is -1s"},
		{RetryPolicy{MaxDelay: -time.Second}, "RetryPolicy.MaxDelay is -1s"},
		{RetryPolicy{MaxRetryAfter: -time.Second}, "RetryPolicy.MaxRetryAfter is -1s"},
		{RetryPolicy{BaseDelay: time.Second, MaxDelay: time.Millisecond}, "RetryPolicy.MaxDelay (1ms) is less than BaseDelay (1s)"},
		{RetryPolicy{BaseDelay: time.Minute}, "RetryPolicy.MaxDelay (20s) is less than BaseDelay (1m0s)"},
		{RetryPolicy{RetryStatusCodes: []int{503, 42}}, "RetryPolicy.RetryStatusCodes holds 42"},
	} {
		err := tc.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want an ErrInvalidArgument containing %q", tc.p, err, tc.want)
		}
		if _, nerr := NewRetry(newFake(), tc.p); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("NewRetry(%+v) = %v, want %v", tc.p, nerr, err)
		}
	}
	if _, err := NewRetry(nil, RetryPolicy{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewRetry(nil) = %v", err)
	}
}

func TestRetryModeString(t *testing.T) {
	for m, want := range map[RetryMode]string{RetryStandard: "standard", RetryLegacy: "legacy", RetryAdaptive: "adaptive", 9: "RetryMode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
}

// The optional interfaces of the inner target pass through the decorators.
type layoutFake struct{ *fakeTarget }

func (layoutFake) CinderLayout() Layout { return LayoutPosix }

type closerFake struct {
	*fakeTarget
	closed *int
}

func (c closerFake) Close() error { *c.closed++; return nil }

type layoutCloserFake struct {
	*fakeTarget
	closed *int
}

func (layoutCloserFake) CinderLayout() Layout { return LayoutPosix }
func (c layoutCloserFake) Close() error       { *c.closed++; return nil }

func TestDecoratorsPassThrough(t *testing.T) {
	closed := 0
	f := newFake()
	decorators := map[string]func(Target) (Target, error){
		"retry": func(t Target) (Target, error) { return NewRetry(t, RetryPolicy{}) },
		"limit": func(t Target) (Target, error) { return NewLimit(t, 2) },
		"retry(limit)": func(t Target) (Target, error) {
			l, err := NewLimit(t, 2)
			if err != nil {
				return nil, err
			}
			return NewRetry(l, RetryPolicy{})
		},
	}
	for name, decorate := range decorators {
		for _, inner := range []Target{f, layoutFake{f}, closerFake{f, &closed}, layoutCloserFake{f, &closed}} {
			d, err := decorate(inner)
			if err != nil {
				t.Fatal(err)
			}
			_, innerLayout := inner.(LayoutTarget)
			_, innerCloser := inner.(Closer)
			dl, isLayout := d.(LayoutTarget)
			dc, isCloser := d.(Closer)
			if isLayout != innerLayout || isCloser != innerCloser {
				t.Errorf("%s(%T): LayoutTarget %v, Closer %v; want %v, %v", name, inner, isLayout, isCloser, innerLayout, innerCloser)
				continue
			}
			if isLayout && dl.CinderLayout() != LayoutPosix {
				t.Errorf("%s(%T): layout %q", name, inner, dl.CinderLayout())
			}
			if isCloser {
				before := closed
				if err := dc.Close(); err != nil || closed != before+1 {
					t.Errorf("%s(%T): Close did not reach the inner target", name, inner)
				}
			}
			w, ok := d.(Wrapper)
			if !ok {
				t.Errorf("%s(%T) is not a Wrapper", name, inner)
				continue
			}
			if name == "retry(limit)" {
				w, ok = w.Unwrap().(Wrapper)
				if !ok {
					t.Errorf("%s(%T): the inner decorator is not a Wrapper", name, inner)
					continue
				}
			}
			if w.Unwrap() != inner {
				t.Errorf("%s(%T).Unwrap() = %T", name, inner, w.Unwrap())
			}
			if got, ok := As[Target](d); !ok || got != d {
				t.Errorf("As[Target] = %v, %v", got, ok)
			}
			if _, ok := As[*fakeTarget](d); ok != (inner == Target(f)) {
				t.Errorf("As[*fakeTarget](%s(%T)) found %v", name, inner, ok)
			}
		}
	}
}
