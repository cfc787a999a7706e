package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrProbeMismatch is wrapped by the error of a probe step that found the
// store answering wrongly: other bytes than were written, another size, a
// listing without the object just written, or a deleted object still there.
var ErrProbeMismatch = errors.New("the store answered wrongly")

// The steps of a probe, in the order Probe runs them. StepOpen is not run by
// Probe: callers that open the target themselves record it (ProbeReport.Prepend).
const (
	StepOpen        = "open"         // making the target (the caller's)
	StepCheck       = "check"        // Checker.Check: reachable, credentials, container
	StepPut         = "put"          // writing the probe object
	StepStat        = "stat"         // its size (and the store's clock)
	StepGet         = "get"          // reading it whole, compared byte for byte
	StepGetRange    = "get-range"    // reading a range of it
	StepList        = "list"         // listing its prefix finds it
	StepPutLarge    = "put-large"    // writing the large probe object (LargeSize)
	StepGetLarge    = "get-large"    // reading it back, compared
	StepDelete      = "delete"       // deleting the probe objects
	StepStatDeleted = "stat-deleted" // Stat after Delete says not found
)

// ProbeStep is the outcome of one step of a probe.
type ProbeStep struct {
	// Name is one of the Step constants.
	Name string `json:"name"`
	// OK is true when the step ran and passed.
	OK bool `json:"ok"`
	// Skipped is true when the step did not run; Note says why.
	Skipped bool `json:"skipped,omitempty"`
	// Note says why a step was skipped, or adds a fact (a throughput).
	Note string `json:"note,omitempty"`
	// LatencyMS is how long the step took, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Kind classifies a failure (see ErrorKind); empty when OK.
	Kind string `json:"error_kind,omitempty"`
	// Error is the failure's message; empty when OK.
	Error string `json:"error,omitempty"`
	// Err is the failure itself, for errors.Is (not in JSON).
	Err error `json:"-"`
}

// NewProbeStep records a step named name that started at start and ended
// now with err (nil: it passed).
func NewProbeStep(name string, start time.Time, err error) ProbeStep {
	s := ProbeStep{Name: name, OK: err == nil, LatencyMS: millis(time.Since(start))}
	if err != nil {
		s.Kind, s.Error, s.Err = ErrorKind(err), err.Error(), err
	}
	return s
}

func skippedStep(name, why string) ProbeStep {
	return ProbeStep{Name: name, Skipped: true, Note: why}
}

// ClockSkew is what a probe measured of the difference between this host's
// clock and the store's: the time the store recorded for the probe object
// against the local clock before and after the Put that wrote it.
type ClockSkew struct {
	// SkewMS is the store's clock minus this host's, in milliseconds:
	// positive when the store is ahead. It is the smallest offset that fits
	// the observation (the store's time may lie anywhere during the Put,
	// and many stores keep whole seconds only), so 0 means "within the
	// measurement's precision".
	SkewMS int64 `json:"skew_ms"`
	// MaxMS is ProbeOptions.MaxClockSkew, in milliseconds.
	MaxMS int64 `json:"max_ms"`
	// Exceeded is true when the skew is beyond MaxMS either way.
	Exceeded bool `json:"exceeded"`
}

// ProbeReport is the outcome of a probe. It encodes as JSON.
type ProbeReport struct {
	// OK is true when every step that ran passed, the clock skew (where
	// measured) is within bounds, and no probe object was left behind.
	OK bool `json:"ok"`
	// Start is when the probe started.
	Start time.Time `json:"start"`
	// DurationMS is how long the probe took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Object is the name of the probe object.
	Object string `json:"object"`
	// Steps are the steps in the order they ran (see the Step constants).
	Steps []ProbeStep `json:"steps"`
	// ClockSkew is nil when the store reports no modification times.
	ClockSkew *ClockSkew `json:"clock_skew,omitempty"`
	// ReadOnly is true when the credentials may read but not write: the
	// container could be checked or listed, and the Put was refused.
	ReadOnly bool `json:"read_only,omitempty"`
	// Problems says, in words, what is wrong and what to do; empty when OK.
	Problems []string `json:"problems,omitempty"`
}

// Step returns the step named name, if the report has it.
func (r *ProbeReport) Step(name string) (ProbeStep, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return ProbeStep{}, false
}

// Err returns the error of the first failed step, or nil. A report can be
// not OK with a nil Err: a clock skew beyond bounds fails no step.
func (r *ProbeReport) Err() error {
	for _, s := range r.Steps {
		if !s.OK && !s.Skipped {
			return fmt.Errorf("probe step %s: %w", s.Name, s.Err)
		}
	}
	return nil
}

// Prepend records a step the caller ran before Probe (StepOpen, when the
// caller opened the target itself) as the report's first step; a failed
// step makes the report not OK and says so first among the Problems.
// Prepending to a zero ProbeReport makes a report of that step alone.
func (r *ProbeReport) Prepend(s ProbeStep) {
	r.Steps = append([]ProbeStep{s}, r.Steps...)
	if s.OK || s.Skipped {
		return
	}
	r.OK = false
	r.Problems = append([]string{problemOf(s)}, r.Problems...)
}

// ErrorKind classifies err in one word, for reports and metrics: canceled,
// timeout, permission, not_found, exists, invalid_range, invalid_argument,
// throttled, unavailable, mismatch (ErrProbeMismatch), permanent, network
// (no answer from the store), or error (anything else). It is "" for nil.
func ErrorKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrPermission):
		return "permission"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrExists):
		return "exists"
	case errors.Is(err, ErrInvalidRange):
		return "invalid_range"
	case errors.Is(err, ErrInvalidArgument):
		return "invalid_argument"
	case errors.Is(err, ErrThrottled):
		return "throttled"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrProbeMismatch):
		return "mismatch"
	case errors.Is(err, ErrPermanent):
		return "permanent"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case isConnectionError(err):
		return "network"
	}
	return "error"
}

// problemOf says in words what a failed step means.
func problemOf(s ProbeStep) string {
	what := map[string]string{
		"permission":  "the store refused the credentials or a permission",
		"not_found":   "something the target needs does not exist",
		"timeout":     "the store did not answer in time",
		"network":     "the store could not be reached",
		"unavailable": "the store is unavailable",
		"throttled":   "the store asks the client to slow down",
		"mismatch":    "the store answered wrongly",
		"canceled":    "the probe was interrupted",
	}[s.Kind]
	if what == "" {
		what = "it failed"
	}
	return fmt.Sprintf("%s: %s: %s", s.Name, what, s.Error)
}

func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
