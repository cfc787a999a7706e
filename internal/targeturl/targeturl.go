// Package targeturl opens the storage target a --target URL names, with the
// retry and concurrency decorators every target gets. It is the one place
// that knows the URL schemes, so the CLI and the benchmarks accept the same
// URLs.
package targeturl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/chunkback/chunkback/posix"
	"github.com/chunkback/chunkback/target"
)

// Options tunes Open. The zero value is right for the CLI.
type Options struct {
	// Create makes a missing POSIX directory instead of failing.
	Create bool
	// NoSync skips fsync on POSIX writes (faster, not crash-safe).
	NoSync bool
	// Retry is the retry policy wrapped around the target (zero: the
	// standard policy's defaults).
	Retry target.RetryPolicy
	// Connections bounds the operations in flight (0: no limit).
	Connections int
}

// Opened is an open target and how to release it.
type Opened struct {
	target.Target
	// Scheme is the URL scheme ("file" for a directory).
	Scheme string
	close  func() error
}

// Unwrap returns the decorated target, so the engine finds the innermost
// target's layout (target.As) through the Opened value.
func (o *Opened) Unwrap() target.Target { return o.Target }

// Close releases the target's resources.
func (o *Opened) Close() error {
	if o.close == nil {
		return nil
	}
	return o.close()
}

// Schemes lists the URL forms Open accepts, for help texts.
const Schemes = "a directory path, or file:///absolute/dir"

// Open returns the target named by raw: a directory path (Cinder's
// backup_posix_path) or a file:// URL.
func Open(ctx context.Context, raw string, o Options) (*Opened, error) {
	if raw == "" {
		return nil, errors.New("--target is empty: give " + Schemes)
	}
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		scheme, rest = "file", raw
	} else if scheme == "file" {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("--target %q: %w", raw, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("--target %q: a file URL needs an absolute path (file:///dir), not host %q", raw, u.Host)
		}
		rest = u.Path
	}
	var inner target.Target
	var closer func() error
	switch scheme {
	case "file":
		dir, err := filepath.Abs(rest)
		if err != nil {
			return nil, fmt.Errorf("--target %q: %w", raw, err)
		}
		p, err := posix.New(dir, posix.Options{CreateRoot: o.Create, NoSync: o.NoSync})
		if err != nil {
			return nil, err
		}
		inner, closer = p, p.Close
	default:
		return nil, fmt.Errorf("--target %q: scheme %q is not supported: give %s", raw, scheme, Schemes)
	}
	t := inner
	if o.Connections > 0 {
		limited, err := target.NewLimit(t, o.Connections)
		if err != nil {
			return nil, err
		}
		t = limited
	}
	retried, err := target.NewRetry(t, o.Retry)
	if err != nil {
		return nil, err
	}
	return &Opened{Target: retried, Scheme: scheme, close: closer}, nil
}
