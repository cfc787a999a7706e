// Package stats compares benchmark measurements the way benchstat does:
// each set of repeated runs is summarized by its median and a confidence
// interval of the median taken from order statistics (no assumption about
// the distribution), and two sets are compared with the two-sided
// Mann-Whitney U test, so that a CI pipeline can tell a real regression from
// the noise of a shared machine.
//
// It is pure Go, with no dependencies beyond the standard library.
package stats

import (
	"math"
	"slices"
)

// DefaultAlpha is the significance level Compare sets: a difference is
// significant when its p-value is below it.
const DefaultAlpha = 0.05

// confidence is the coverage the confidence interval of the median aims for.
const confidence = 0.95

// exactMaxN is the largest total sample size (old plus new) for which
// Compare computes the exact distribution of U (when there are no ties);
// above it, and whenever there are ties, it uses the normal approximation.
const exactMaxN = 100

// Summary describes one set of measurements.
type Summary struct {
	// N is the number of measurements (NaNs are left out).
	N int
	// Median is the middle measurement (the mean of the two middle ones for
	// an even N).
	Median float64
	// Low and High bound the confidence interval of the median: order
	// statistics x(k) and x(N-k+1) for the largest k whose interval covers
	// the true median with probability Confidence >= 95% (binomial
	// distribution with p = 1/2). With N <= 5 no interval reaches 95%: then
	// Low and High are the minimum and the maximum and Confidence says how
	// much less they cover (93.75% for N = 5, 0 for N = 1).
	Low, High float64
	// Confidence is the probability that [Low, High] holds the true median.
	Confidence float64
	// Mean and Stddev are the arithmetic mean and the sample standard
	// deviation (divisor N-1; 0 when N = 1).
	Mean, Stddev float64
}

// Summarize summarizes values (which it does not modify). With no values
// (or only NaNs) every field but N is NaN.
func Summarize(values []float64) Summary {
	xs := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	n := len(xs)
	if n == 0 {
		nan := math.NaN()
		return Summary{Median: nan, Low: nan, High: nan, Confidence: nan, Mean: nan, Stddev: nan}
	}
	slices.Sort(xs)
	s := Summary{N: n, Median: (xs[(n-1)/2] + xs[n/2]) / 2}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	s.Mean = sum / float64(n)
	if n > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Stddev = math.Sqrt(ss / float64(n-1))
	}
	k, cover := medianInterval(n)
	s.Low, s.High, s.Confidence = xs[k-1], xs[n-k], cover
	return s
}

// medianInterval returns the 1-based rank k of the order statistics
// [x(k), x(n-k+1)] that form the narrowest interval covering the median
// of a sample of n with probability >= 95%, and that probability,
// 1 - 2 P(B <= k-1) for B ~ Binomial(n, 1/2). When even [x(1), x(n)]
// covers less, it returns 1 and that coverage.
func medianInterval(n int) (int, float64) {
	k, cover := 1, 1-2*binomHalfCDF(n, 0)
	for j := 2; 2*j <= n+1; j++ {
		c := 1 - 2*binomHalfCDF(n, j-1)
		if c < confidence {
			break
		}
		k, cover = j, c
	}
	return k, cover
}

// binomHalfCDF returns P(B <= k) for B ~ Binomial(n, 1/2).
func binomHalfCDF(n, k int) float64 {
	var p float64
	for i := 0; i <= k && i <= n; i++ {
		p += math.Exp(lchoose(n, i) - float64(n)*math.Ln2)
	}
	return min(p, 1)
}

// lchoose returns ln C(n, k).
func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// Comparison is the comparison of an old and a new set of measurements.
type Comparison struct {
	// Old and New summarize the two sets.
	Old, New Summary
	// Delta is the relative change of the median, (New - Old) / Old: +0.10
	// is 10% more. It is 0 when both medians are 0, ±Inf when only the old
	// one is, NaN when a set is empty.
	Delta float64
	// P is the p-value of the two-sided Mann-Whitney U test: the probability
	// of a difference between the sets at least as large as the one seen if
	// both came from the same distribution. It is exact (from the
	// distribution of U) when there are no ties and at most 100 values in
	// all, and from the normal approximation with the tie correction and a
	// continuity correction otherwise (as scipy.stats.mannwhitneyu's
	// defaults). It is 1 when a set is empty or every value is equal.
	P float64
	// Exact says whether P comes from the exact distribution.
	Exact bool
	// U is the Mann-Whitney statistic of the old set: the number of pairs
	// (old, new) in which the old value is the larger, ties counting 1/2.
	U float64
	// Alpha is the significance level; Compare sets DefaultAlpha.
	Alpha float64
	// HigherIsBetter says which direction is an improvement: true for a
	// throughput, false for a time or a memory size.
	HigherIsBetter bool
}

// Compare compares the measurements old and new of one quantity (NaNs are
// left out), with Alpha set to DefaultAlpha.
func Compare(old, new []float64, higherIsBetter bool) Comparison {
	c := Comparison{Old: Summarize(old), New: Summarize(new), Alpha: DefaultAlpha, HigherIsBetter: higherIsBetter, P: 1}
	switch {
	case c.Old.N == 0 || c.New.N == 0:
		c.Delta = math.NaN()
		return c
	case c.Old.Median == c.New.Median:
		c.Delta = 0
	default:
		c.Delta = (c.New.Median - c.Old.Median) / math.Abs(c.Old.Median)
	}
	c.U, c.P, c.Exact = mannWhitney(dropNaN(old), dropNaN(new))
	return c
}

// Significant reports whether the difference is statistically significant:
// P < Alpha.
func (c Comparison) Significant() bool { return c.P < c.Alpha }

// Regression reports whether the new set is significantly worse than the
// old by more than threshold, a fraction (0.05 for 5%): Significant, and the
// median moved in the bad direction (down when HigherIsBetter, up
// otherwise) by more than threshold of the old median.
func (c Comparison) Regression(threshold float64) bool {
	if !c.Significant() || math.IsNaN(c.Delta) {
		return false
	}
	if c.HigherIsBetter {
		return c.Delta < -threshold
	}
	return c.Delta > threshold
}

// Improvement reports whether the new set is significantly better than the
// old by more than threshold, the mirror of Regression.
func (c Comparison) Improvement(threshold float64) bool {
	if !c.Significant() || math.IsNaN(c.Delta) {
		return false
	}
	if c.HigherIsBetter {
		return c.Delta > threshold
	}
	return c.Delta < -threshold
}

func dropNaN(xs []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
}

// mannWhitney returns U of x (pairs x > y, ties 1/2), the two-sided p-value,
// and whether it is exact. x and y are not empty.
func mannWhitney(x, y []float64) (u, p float64, exact bool) {
	m, n := len(x), len(y)
	type obs struct {
		v   float64
		old bool
	}
	all := make([]obs, 0, m+n)
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Midranks; rx is the rank sum of x, tie the sum of t^3 - t over groups
	// of t equal values.
	var rx, tie float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of the 1-based ranks i+1 .. j
		for _, o := range all[i:j] {
			if o.old {
				rx += rank
			}
		}
		t := float64(j - i)
		tie += t*t*t - t
		i = j
	}
	mf := float64(m)
	u = rx - mf*(mf+1)/2
	if mn := mf * float64(n); tie == 0 && m+n <= exactMaxN {
		return u, exactP(m, n, int(math.Round(min(u, mn-u)))), true
	}
	return u, normalP(u, m, n, tie), false
}

// normalP returns the two-sided p-value of U for samples of m and n from
// the normal approximation, with the tie correction (tie is the sum of
// t^3 - t over groups of t equal values) and a continuity correction of
// 1/2, as scipy.stats.mannwhitneyu's method "asymptotic".
func normalP(u float64, m, n int, tie float64) float64 {
	mn, total := float64(m)*float64(n), float64(m+n)
	variance := mn / 12 * ((total + 1) - tie/(total*(total-1)))
	if variance <= 0 { // every value equal
		return 1
	}
	z := (math.Abs(u-mn/2) - 0.5) / math.Sqrt(variance)
	p := math.Erfc(z / math.Sqrt2) // 2 * (1 - Phi(z))
	return min(max(p, 0), 1)
}

// exactP returns the two-sided exact p-value of the Mann-Whitney test for
// samples of m and n without ties whose smaller U (of the two, U and mn-U)
// is lo: 2 P(U <= lo), at most 1. The number of arrangements with U = u is
// the coefficient of q^u in the Gaussian binomial coefficient
// [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), computed up
// to q^lo only (the coefficients below lo+1 never depend on higher ones, so
// they are exact integers in float64 as long as they are below 2^53).
func exactP(m, n, lo int) float64 {
	c := make([]float64, lo+1)
	c[0] = 1
	for i := 1; i <= m; i++ {
		// Multiply by (1 - q^(n+i)), from the top down.
		for u := lo; u >= n+i; u-- {
			c[u] -= c[u-n-i]
		}
		// Divide by (1 - q^i): multiply by 1 + q^i + q^2i + ...
		for u := i; u <= lo; u++ {
			c[u] += c[u-i]
		}
	}
	var tail float64
	for _, v := range c {
		tail += v
	}
	total := math.Exp(lchoose(m+n, m))
	return min(1, 2*tail/total)
}
