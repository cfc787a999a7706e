package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

func TestClassifyNetwork(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	refused := fmt.Errorf("put \"x\": dial tcp 127.0.0.1:9: %w", syscall.ECONNREFUSED)
	for _, err := range []error{reset, refused, fmt.Errorf("body: %w", syscall.EPIPE)} {
		got := ClassifyNetwork(err)
		if !errors.Is(got, ErrUnavailable) {
			t.Errorf("%v: not ErrUnavailable", err)
		}
		if !errors.Is(got, err) || got.Error() != err.Error() {
			t.Errorf("%v: the original error is lost or its text changed: %v", err, got)
		}
	}
	for _, err := range []error{nil, errors.New("something else"), fmt.Errorf("%w: %w", ErrNotFound, reset),
		fmt.Errorf("%w: %w", ErrPermission, refused), fmt.Errorf("%w: %w", context.Canceled, reset)} {
		if got := ClassifyNetwork(err); got != err {
			t.Errorf("%v: changed to %v", err, got)
		}
	}
}

// The retry decorator's final error classifies a connection failure its
// target left unclassified.
func TestRetryClassifiesConnectionFailures(t *testing.T) {
	f := newFake()
	f.setAlways("stat", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	c := newFakeClock()
	r := mustRetry(t, f, RetryPolicy{MaxAttempts: 2}, c.env(0.5))
	_, err := r.Stat(context.Background(), "x")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Stat = %v, want ErrUnavailable wrapping ECONNREFUSED", err)
	}
	if f.callCount("stat") != 2 {
		t.Errorf("%d attempts, want 2", f.callCount("stat"))
	}
}
