package target

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The retry quota of RetryStandard and RetryAdaptive modes, with the AWS SDKs'
// numbers.
const (
	retryQuotaSize        = 500 // tokens in a full bucket
	retryCost             = 5   // taken by a retry
	retryTimeoutCost      = 10  // taken by a retry after a timeout or a broken connection
	retrySuccessIncrement = 1   // given back by an operation that needed no retry
)

// retryQuota is the token bucket that bounds retries across all the
// operations of one retrying target. A nil *retryQuota (legacy mode) allows
// every retry.
type retryQuota struct {
	mu     sync.Mutex
	tokens int
}

func newRetryQuota() *retryQuota { return &retryQuota{tokens: retryQuotaSize} }

// take takes n tokens for a retry, or reports false if there are too few.
func (q *retryQuota) take(n int) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.tokens < n {
		return false
	}
	q.tokens -= n
	return true
}

// give puts n tokens back, up to a full bucket.
func (q *retryQuota) give(n int) {
	if q == nil {
		return
	}
	q.mu.Lock()
	q.tokens = min(retryQuotaSize, q.tokens+n)
	q.mu.Unlock()
}

// succeeded records a successful operation whose last retry took cost tokens
// (0 if it needed no retry).
func (q *retryQuota) succeeded(cost int) {
	if cost == 0 {
		cost = retrySuccessIncrement
	}
	q.give(cost)
}

func (q *retryQuota) available() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.tokens
}

// The rate law of RetryAdaptive mode (documented there).
const (
	adaptiveBeta     = 0.5                    // a throttle multiplies the allowed rate by this
	adaptiveGrowth   = 0.1                    // per second without throttling, as a fraction of the reduced rate
	adaptiveMinRate  = 0.5                    // requests per second, the floor
	adaptiveCoalesce = 500 * time.Millisecond // throttles closer together count as one
	adaptiveWindow   = time.Second            // the period over which the request rate is measured
	adaptiveSmooth   = 0.8                    // weight of the newest window in the measured rate
)

// adaptiveLimiter is the client-side rate limiter of RetryAdaptive mode: a
// token bucket whose fill rate drops multiplicatively when the store
// throttles and grows back linearly in time. A nil *adaptiveLimiter never
// waits.
type adaptiveLimiter struct {
	env retryEnv

	mu           sync.Mutex
	enabled      bool      // off until the first throttle
	base         float64   // the allowed rate, requests/s, right after the last throttle
	lastDecrease time.Time // when base was set
	tokens       float64   // negative when waiters have reserved future tokens
	lastRefill   time.Time
	windowStart  time.Time // the request rate measurement
	windowCount  int
	measured     float64 // smoothed requests/s of past windows; 0 before the first
}

func newAdaptiveLimiter(env retryEnv) *adaptiveLimiter {
	return &adaptiveLimiter{env: env, windowStart: env.now()}
}

// rateAt returns the allowed rate at now. The caller holds l.mu.
func (l *adaptiveLimiter) rateAt(now time.Time) float64 {
	return l.base * (1 + adaptiveGrowth*max(0, now.Sub(l.lastDecrease).Seconds()))
}

// refill adds the tokens earned since the last refill at rate, up to a burst
// of one second's worth. The caller holds l.mu.
func (l *adaptiveLimiter) refill(now time.Time, rate float64) {
	if el := now.Sub(l.lastRefill).Seconds(); el > 0 {
		l.tokens = min(l.tokens+el*rate, max(1, rate))
	}
	l.lastRefill = now
}

// count records a request sent at now. The caller holds l.mu.
func (l *adaptiveLimiter) count(now time.Time) {
	l.windowCount++
	if el := now.Sub(l.windowStart); el >= adaptiveWindow {
		sample := float64(l.windowCount) / el.Seconds()
		if l.measured == 0 {
			l.measured = sample
		} else {
			l.measured = adaptiveSmooth*sample + (1-adaptiveSmooth)*l.measured
		}
		l.windowStart, l.windowCount = now, 0
	}
}

// demand estimates the rate at which requests are being sent. The caller
// holds l.mu.
func (l *adaptiveLimiter) demand(now time.Time) float64 {
	if l.measured > 0 {
		return l.measured
	}
	// No full window yet: the requests of the current one, as a rate over at
	// least a second.
	return float64(l.windowCount) / max(now.Sub(l.windowStart), adaptiveWindow).Seconds()
}

// throttled records that the store throttled a request.
func (l *adaptiveLimiter) throttled() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.env.now()
	if l.enabled && now.Sub(l.lastDecrease) < adaptiveCoalesce {
		return
	}
	rate := l.demand(now)
	if l.enabled {
		cur := l.rateAt(now)
		l.refill(now, cur)
		rate = min(rate, cur)
	} else {
		// The store just pushed back: start with an empty bucket.
		l.enabled, l.tokens, l.lastRefill = true, 0, now
	}
	l.base = max(adaptiveMinRate, rate*adaptiveBeta)
	l.lastDecrease = now
	l.tokens = min(l.tokens, max(1, l.base))
}

// wait blocks until the limiter lets one request through, or until ctx ends.
func (l *adaptiveLimiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := l.env.now()
	l.count(now)
	if !l.enabled {
		l.mu.Unlock()
		return nil
	}
	rate := l.rateAt(now)
	l.refill(now, rate)
	l.tokens-- // reserve a token, perhaps one not yet earned
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
		l.giveBack()
		return fmt.Errorf("client-side rate limit: waiting %v would pass the context deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	if err := l.env.sleep(ctx, d); err != nil {
		l.giveBack()
		return fmt.Errorf("waiting for the client-side rate limit: %w", err)
	}
	return nil
}

// giveBack returns the token of a request that was not sent.
func (l *adaptiveLimiter) giveBack() {
	l.mu.Lock()
	l.tokens++
	l.mu.Unlock()
}

// state returns the limiter's allowed rate (0 when it is off) and tokens.
func (l *adaptiveLimiter) state() (rate, tokens float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.enabled {
		return 0, l.tokens
	}
	now := l.env.now()
	rate = l.rateAt(now)
	l.refill(now, rate)
	return rate, l.tokens
}
