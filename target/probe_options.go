package target

import (
	"fmt"
	"time"
)

// Defaults of ProbeOptions' zero fields.
const (
	// DefaultProbePrefix is where Probe writes its objects: below it, each
	// probe names its object "probe-<UTC time>-<random hex>", so probes of
	// several hosts never meet, and a probe object a crash left behind is
	// easy to recognise and delete.
	DefaultProbePrefix = "chunkback-check/"
	// DefaultProbeSize is the size of the probe object: 4 KiB, one small
	// request each way.
	DefaultProbeSize = 4 << 10
	// DefaultMaxClockSkew is the clock skew Probe flags: 5 minutes, well
	// inside the 15 minutes S3 tolerates before it refuses signed requests
	// (RequestTimeTooSkewed), so the report warns before requests fail.
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultProbeStepTimeout bounds each step, so a store that hangs makes
	// the probe fail in bounded time rather than never report.
	DefaultProbeStepTimeout = 30 * time.Second
	// MaxProbeSize bounds ProbeOptions.Size and LargeSize: a probe is a
	// health check, not a benchmark.
	MaxProbeSize = 5 << 30
)

// ProbeOptions configures Probe. The zero value is the recommended probe:
// one 4 KiB object below DefaultProbePrefix, clock skew flagged beyond 5
// minutes, each step given 30 seconds.
type ProbeOptions struct {
	// Prefix is prepended to the probe objects' names (default
	// DefaultProbePrefix). It is usually a "directory" ending in '/'; with
	// "probe-x" appended it must be a valid object name (CheckName).
	Prefix string
	// Size is the size in bytes of the probe object (default
	// DefaultProbeSize, at most MaxProbeSize).
	Size int64
	// LargeSize, when above zero, adds a second probe object of that many
	// bytes (at most MaxProbeSize), written and read back whole, which
	// exercises the store's large-object path (S3 multipart uploads, Swift
	// segments) and measures throughput. Memory use does not grow with it:
	// the bytes are generated and compared as they stream.
	LargeSize int64
	// MaxClockSkew is the difference between this host's clock and the
	// store's beyond which the report flags the skew (default
	// DefaultMaxClockSkew). The skew is measured only on stores that report
	// when an object was written.
	MaxClockSkew time.Duration
	// StepTimeout bounds each step of the probe (default
	// DefaultProbeStepTimeout); the deletion of the probe objects gets as
	// long again, even after ctx has ended.
	StepTimeout time.Duration
}

// Validate reports whether the options are usable. Zero fields stand for
// their defaults. The error wraps ErrInvalidArgument and names the field.
func (o ProbeOptions) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("probe options: %s: %w", fmt.Sprintf(format, args...), ErrInvalidArgument)
	}
	d := o.withDefaults()
	if err := CheckName(d.Prefix + "probe-x"); err != nil {
		return bad("Prefix %q does not make valid object names (%v); use a prefix such as %q", o.Prefix, err, DefaultProbePrefix)
	}
	switch {
	case o.Size < 0 || o.Size > MaxProbeSize:
		return bad("Size is %d; use 1 to %d bytes, or 0 for %d", o.Size, int64(MaxProbeSize), DefaultProbeSize)
	case o.LargeSize < 0 || o.LargeSize > MaxProbeSize:
		return bad("LargeSize is %d; use 0 (no large object) to %d bytes", o.LargeSize, int64(MaxProbeSize))
	case o.MaxClockSkew < 0:
		return bad("MaxClockSkew is %v; use a positive duration, or 0 for %v", o.MaxClockSkew, DefaultMaxClockSkew)
	case o.StepTimeout < 0:
		return bad("StepTimeout is %v; use a positive duration, or 0 for %v", o.StepTimeout, DefaultProbeStepTimeout)
	}
	return nil
}

func (o ProbeOptions) withDefaults() ProbeOptions {
	if o.Prefix == "" {
		o.Prefix = DefaultProbePrefix
	}
	if o.Size == 0 {
		o.Size = DefaultProbeSize
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = DefaultMaxClockSkew
	}
	if o.StepTimeout == 0 {
		o.StepTimeout = DefaultProbeStepTimeout
	}
	return o
}
