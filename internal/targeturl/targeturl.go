// Package targeturl opens the storage target a --target URL names, with the
// retry and concurrency decorators every target gets. It is the one place
// that knows the URL schemes, so the CLI and the benchmarks accept the same
// URLs. Each scheme lives in a file of its own (s3.go, swift.go, ...);
// credentials come from the environment variables each scheme documents,
// never from the URL, so they stay out of shell history and error messages.
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
	// Create makes a missing POSIX directory, bucket or container instead of
	// failing.
	Create bool
	// NoSync skips fsync on POSIX writes (faster, not crash-safe).
	NoSync bool
	// Retry, when set, replaces the retry policy of the target's own
	// configuration (each scheme has Cinder's defaults for its driver).
	Retry *target.RetryPolicy
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
const Schemes = "a directory path, file:///dir, s3://bucket/prefix, swift://container/prefix, " +
	"gs://bucket/prefix, azblob://container/prefix, rados://pool/prefix, " +
	"nfs://host[:port]/export/path or gluster://host/volume/path (see the README)"

// scheme is what one URL scheme's opener returns: the innermost target, the
// retry policy its configuration asks for, and what releases it (nil if
// nothing).
type scheme struct {
	target target.Target
	retry  target.RetryPolicy
	close  func() error
}

// Open returns the target named by raw: a directory path (Cinder's
// backup_posix_path), or a URL of one of the forms in Schemes.
func Open(ctx context.Context, raw string, o Options) (*Opened, error) {
	if raw == "" {
		return nil, fmt.Errorf("--target is empty: give %s: %w", Schemes, target.ErrInvalidArgument)
	}
	name, _, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		name = "file"
	}
	var u *url.URL
	if hasScheme {
		var err error
		if u, err = url.Parse(raw); err != nil {
			// url.Error quotes the URL whole, password included.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("--target %s: not a URL (%v): %w", redact(raw), err, target.ErrInvalidArgument)
		}
	}
	var s scheme
	var err error
	switch name {
	case "file":
		s, err = openFile(raw, u, o)
	case "s3":
		s, err = openS3(ctx, u, o)
	case "swift":
		s, err = openSwift(ctx, u, o)
	case "gs":
		s, err = openGCS(ctx, u, o)
	case "azblob":
		s, err = openAzure(ctx, u, o)
	case "rados":
		s, err = openRADOS(ctx, u, o)
	case "nfs":
		s, err = openNFS(ctx, u, o)
	case "gluster":
		s, err = openGluster(ctx, u, o)
	default:
		return nil, fmt.Errorf("--target %q: scheme %q is not supported: give %s: %w", redact(raw), name, Schemes, target.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	t := s.target
	if o.Connections > 0 {
		limited, err := target.NewLimit(t, o.Connections)
		if err != nil {
			s.closeQuietly()
			return nil, err
		}
		t = limited
	}
	policy := s.retry
	if o.Retry != nil {
		policy = *o.Retry
	}
	retried, err := target.NewRetry(t, policy)
	if err != nil {
		s.closeQuietly()
		return nil, err
	}
	return &Opened{Target: retried, Scheme: name, close: s.close}, nil
}

func (s scheme) closeQuietly() {
	if s.close != nil {
		_ = s.close()
	}
}

// openFile opens a directory path or a file:// URL with the POSIX target.
func openFile(raw string, u *url.URL, o Options) (scheme, error) {
	dir := raw
	if u != nil {
		if u.Host != "" && u.Host != "localhost" {
			return scheme{}, fmt.Errorf("--target %q: a file URL needs an absolute path (file:///dir), not host %q: %w", redact(raw), u.Host, target.ErrInvalidArgument)
		}
		dir = u.Path
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return scheme{}, fmt.Errorf("--target %q: %w", raw, err)
	}
	p, err := posix.New(dir, posix.Options{CreateRoot: o.Create, NoSync: o.NoSync})
	if err != nil {
		return scheme{}, err
	}
	return scheme{target: p, close: p.Close}, nil
}

// redact returns u without a password or any query parameter that looks
// like a secret, for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
