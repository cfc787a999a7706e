package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustLimit(t *testing.T, inner Target, n int) Target {
	t.Helper()
	l, err := NewLimit(inner, n)
	if err != nil {
		t.Fatalf("NewLimit: %v", err)
	}
	return l
}

func TestLimitBoundsConcurrency(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := newFake()
			f.hold = 2 * time.Millisecond
			l := mustLimit(t, f, n)
			ctx := context.Background()
			var wg sync.WaitGroup
			for g := range 32 {
				wg.Go(func() {
					name := fmt.Sprintf("o%d", g)
					if err := l.Put(ctx, name, bytes.NewReader([]byte(name)), int64(len(name)), PutOptions{}); err != nil {
						t.Error(err)
						return
					}
					if _, err := l.Stat(ctx, name); err != nil {
						t.Error(err)
					}
					rc, err := l.Get(ctx, name, 0, -1)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, rc)
					rc.Close()
					if err := l.List(ctx, name, func(Info) error { return nil }); err != nil {
						t.Error(err)
					}
					if err := l.Delete(ctx, name); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			// 32 goroutines against n slots: the limit is reached, never passed.
			if f.maxInflight != n {
				t.Errorf("at most %d operations in flight, want %d", f.maxInflight, n)
			}
		})
	}
}

func TestLimitGetHoldsSlotUntilClose(t *testing.T) {
	f := newFake()
	f.objects["o"] = []byte("data")
	l := mustLimit(t, f, 1)
	ctx := context.Background()
	rc, err := l.Get(ctx, "o", 0, -1)
	if err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Stat(short, "o"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat with the only slot held by a reader: %v, want context.DeadlineExceeded", err)
	}
	if n := f.callCount("stat"); n != 0 {
		t.Errorf("inner Stat called %d times while waiting", n)
	}

	if b, _ := io.ReadAll(rc); string(b) != "data" {
		t.Errorf("read %q", b)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil { // a second Close must not free a second slot
		t.Fatal(err)
	}
	if _, err := l.Stat(ctx, "o"); err != nil {
		t.Fatalf("Stat after Close: %v", err)
	}
	// One slot, so one reader at a time: the double Close freed only one.
	rc, err = l.Get(ctx, "o", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := l.Get(short2, "o", 0, -1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second reader with one slot: %v, want context.DeadlineExceeded", err)
	}
}

func TestLimitFailedGetReleasesSlot(t *testing.T) {
	f := newFake()
	l := mustLimit(t, f, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		if _, err := l.Get(ctx, "missing", 0, -1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get: %v, want ErrNotFound", err)
		}
	}
}

func TestLimitWaitHonoursContext(t *testing.T) {
	f := newFake()
	f.objects["o"] = []byte("data")
	l := mustLimit(t, f, 1)
	rc, err := l.Get(context.Background(), "o", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Delete(ctx, "o") }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `delete "o": waiting for a free slot`) {
			t.Errorf("Delete: %v, want context.Canceled while waiting", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Delete still waiting after its context was cancelled")
	}
	if n := f.callCount("delete"); n != 0 {
		t.Errorf("inner Delete called %d times", n)
	}

	// An already cancelled context never takes a slot, even a free one.
	rc.Close()
	if err := l.Delete(ctx, "o"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context: %v", err)
	}
	if n := f.callCount("delete"); n != 0 {
		t.Errorf("inner Delete called %d times", n)
	}
}

func TestLimitListFnMayUseTheTarget(t *testing.T) {
	f := newFake()
	for _, n := range []string{"a", "b", "c"} {
		f.objects[n] = nil
	}
	l := mustLimit(t, f, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var seen []string
	err := l.List(ctx, "", func(i Info) error {
		seen = append(seen, i.Name)
		return l.Delete(ctx, i.Name) // would deadlock if List held the only slot
	})
	if err != nil || len(seen) != 3 || len(f.objects) != 0 {
		t.Fatalf("List: %v, saw %q, left %d objects", err, seen, len(f.objects))
	}

	// fn's error is returned, and the slot is free afterwards.
	f.objects["x"] = nil
	errStop := errors.New("stop")
	if err := l.List(ctx, "", func(Info) error { return errStop }); err != errStop {
		t.Errorf("List: %v, want fn's error", err)
	}
	if _, err := l.Stat(ctx, "x"); err != nil {
		t.Errorf("Stat after List: %v", err)
	}

	// A cancellation while fn runs stops the listing when it wants its slot back.
	f.objects["y"] = nil
	lctx, lcancel := context.WithCancel(ctx)
	calls := 0
	err = l.List(lctx, "", func(Info) error { calls++; lcancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("List: %v after %d calls of fn, want context.Canceled after 1", err, calls)
	}
	if _, err := l.Stat(ctx, "x"); err != nil {
		t.Errorf("Stat after the cancelled List: %v", err)
	}
}

func TestNewLimitRejects(t *testing.T) {
	for _, n := range []int{0, -1} {
		_, err := NewLimit(newFake(), n)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprintf("n is %d; it must be at least 1", n)) {
			t.Errorf("NewLimit(n=%d) = %v", n, err)
		}
	}
	if _, err := NewLimit(nil, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewLimit(nil) = %v", err)
	}
}
