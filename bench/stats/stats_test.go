package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        []float64
		median    float64
		low, high float64
		cover     float64
		mean, sd  float64
	}{
		// N = 1: the value itself, an interval that covers nothing
		// (1 - 2 * 1/2 = 0), no spread.
		{"one", []float64{7}, 7, 7, 7, 0, 7, 0},
		// N = 5: even [min, max] covers only 1 - 2/32 = 93.75%.
		// Mean 3, squares 4+1+0+1+4 = 10, sd = sqrt(10/4).
		{"five", []float64{5, 1, 4, 2, 3}, 3, 1, 5, 0.9375, 3, math.Sqrt(2.5)},
		// N = 6: [min, max] covers 1 - 2/64 = 96.875%; [x2, x5] only
		// 1 - 2*7/64 = 78.125%. Median of an even N: mean of the middle two.
		{"six", []float64{6, 1, 5, 2, 4, 3}, 3.5, 1, 6, 0.96875, 3.5, math.Sqrt(17.5 / 5)},
		// N = 10: P(B <= 1) = 11/1024, P(B <= 2) = 56/1024, so [x2, x9]
		// covers 1 - 22/1024 = 97.85%, [x3, x8] only 89.06%.
		// Mean 5.5, sum of squares 82.5, sd = sqrt(82.5/9).
		{"ten", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5.5, 2, 9, 1 - 22.0/1024, 5.5, math.Sqrt(82.5 / 9)},
		// N = 20: P(B <= 5) = 21700/2^20 = 0.0207, P(B <= 6) = 60460/2^20 =
		// 0.0577, so [x6, x15] covering 1 - 43400/2^20 = 95.86%.
		{"twenty", seq(1, 20), 10.5, 6, 15, 1 - 43400.0/(1<<20), 10.5, math.Sqrt(35)},
		// All equal: everything is that value.
		{"equal", []float64{2, 2, 2, 2}, 2, 2, 2, 0.875, 2, 0},
		// NaNs are left out.
		{"nan", []float64{math.NaN(), 1, 3, math.NaN()}, 2, 1, 3, 0.5, 2, math.Sqrt2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			s := Summarize(in)
			if !slices.EqualFunc(in, tc.in, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
				t.Errorf("Summarize modified its input: %v", in)
			}
			wantN := len(slices.DeleteFunc(slices.Clone(tc.in), math.IsNaN))
			if s.N != wantN || s.Median != tc.median || s.Low != tc.low || s.High != tc.high ||
				!near(s.Confidence, tc.cover, 1e-12) || !near(s.Mean, tc.mean, 1e-12) || !near(s.Stddev, tc.sd, 1e-12) {
				t.Errorf("Summarize(%v) = %+v, want N %d median %v [%v, %v] at %v, mean %v sd %v",
					tc.in, s, wantN, tc.median, tc.low, tc.high, tc.cover, tc.mean, tc.sd)
			}
		})
	}
}

func TestSummarizeEmpty(t *testing.T) {
	for _, in := range [][]float64{nil, {math.NaN()}} {
		s := Summarize(in)
		if s.N != 0 || !math.IsNaN(s.Median) || !math.IsNaN(s.Low) || !math.IsNaN(s.Mean) {
			t.Errorf("Summarize(%v) = %+v, want N 0 and NaNs", in, s)
		}
	}
}

func seq(from, to int) []float64 {
	var xs []float64
	for i := from; i <= to; i++ {
		xs = append(xs, float64(i))
	}
	return xs
}

func TestCompareKnownValues(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new []float64
		u, p     float64
		exact    bool
	}{
		// scipy.stats.mannwhitneyu's documentation: males vs females,
		// U1 = 17; "exact" gives p = 0.1111111111111111. By hand: the
		// smaller U is 20 - 17 = 3; arrangements of 5 and 4 values with
		// U = 0, 1, 2, 3 number 1, 1, 2, 3 (partitions of u into at most 4
		// parts of at most 5), so p = 2 * 7 / C(9, 4) = 14/126.
		{"scipy-exact", []float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12}, 17, 14.0 / 126, true},
		// R's wilcox.test documentation (Hollander & Wolfe, permeability
		// of membranes): W = 35, one-sided p-value 0.1272 = 382/3003
		// (C(15, 5) = 3003), so two-sided 764/3003 = 0.2544.
		{"R-wilcox",
			[]float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46},
			[]float64{1.15, 0.88, 0.90, 0.74, 1.21}, 35, 764.0 / 3003, true},
		// benchstat's familiar floor: 5 runs each, fully separated. Only
		// 2 of the C(10, 5) = 252 arrangements are as extreme: p = 0.0079.
		{"separated-5x5", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0, 2.0 / 252, true},
		// With only 3 runs each the best possible is 2/20 = 0.1: never
		// significant at 0.05.
		{"separated-3x3", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.1, true},
		// N = 1 each: U = 0 or 1, p = 2 * 1/2 = 1.
		{"one-each", []float64{1}, []float64{2}, 0, 1, true},
		// Ties: old {1, 2, 2, 3}, new {2, 3, 4, 4}. Midranks: 1 -> 1,
		// 2 -> 3 (ranks 2..4), 3 -> 5.5, 4 -> 7.5; rank sum of old
		// 1+3+3+5.5 = 12.5, U = 12.5 - 10 = 2.5; mean mn/2 = 8. Tie
		// groups of 3, 2, 2: sum t^3-t = 24+6+6 = 36; variance
		// 16/12 * (9 - 36/56) = 11.142857; z = (5.5 - 0.5)/3.338092 =
		// 1.497862; p = erfc(z/sqrt 2) = 0.134169180128 (scipy's default
		// method with ties, continuity correction on).
		{"ties", []float64{1, 2, 2, 3}, []float64{2, 3, 4, 4}, 2.5, 0.13416918012812581, false},
		// Every value equal: no evidence of a difference.
		{"all-equal", []float64{3, 3, 3}, []float64{3, 3, 3, 3}, 6, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.old, tc.new, true)
			if c.U != tc.u || !near(c.P, tc.p, 1e-12) || c.Exact != tc.exact {
				t.Errorf("Compare: U %v p %.17g exact %v, want U %v p %.17g exact %v", c.U, c.P, c.Exact, tc.u, tc.p, tc.exact)
			}
		})
	}
}

// TestNormalApproximation checks the normal approximation: against the
// exact distribution on a sample too large for Compare's exact path, and
// with ties against values worked out by hand.
func TestNormalApproximation(t *testing.T) {
	// 51 and 50 values interleaved except the top 10 of the new set,
	// computed both ways: the normal approximation must be within 0.005 of
	// the exact value at this size.
	old := seq(1, 51)
	var new []float64
	for i := 1; i <= 50; i++ {
		new = append(new, float64(i)+0.5+float64(i/40)*20)
	}
	c := Compare(old, new, true)
	if c.Exact {
		t.Fatalf("101 values: got the exact test, want the approximation")
	}
	u, _, _ := mannWhitney(old, new)
	exact := exactP(51, 50, int(min(u, 51*50-u)))
	if !near(c.P, exact, 0.005) || c.P <= 0 || c.P >= 1 {
		t.Errorf("normal approximation p = %v, exact p = %v", c.P, exact)
	}

	// scipy's documentation, males vs females with method="asymptotic":
	// p = 0.11134688653314041 (z = (17 - 10 - 0.5) / sqrt(5*4*10/12)).
	if p := normalP(17, 5, 4, 0); !near(p, 0.11134688653314041, 1e-12) {
		t.Errorf("scipy's asymptotic example: p = %.17g, want 0.11134688653314041", p)
	}
	// The same data with one tie added to each side goes through the
	// approximation: old {16, 19, 22, 24, 29, 30}, new {11, 12, 17, 20,
	// 30}. Midranks: 11:1 12:2 16:3 17:4 19:5 20:6 22:7 24:8 29:9 30:10.5
	// (twice); rank sum of old 3+5+7+8+9+10.5 = 42.5, U = 42.5 - 21 =
	// 21.5, mean 15, tie term 2^3-2 = 6, variance 30/12 * (12 - 6/110)
	// = 29.863636, z = (6.5 - 0.5)/5.464763 = 1.097943,
	// p = erfc(z/sqrt 2) = 0.272229 (to 6 places).
	c = Compare([]float64{19, 22, 16, 29, 24, 30}, []float64{20, 11, 17, 12, 30}, true)
	if c.Exact || c.U != 21.5 || !near(c.P, 0.272229, 5e-7) {
		t.Errorf("ties: U %v p %v exact %v, want U 21.5 p 0.272229 approximate", c.U, c.P, c.Exact)
	}
}

func TestExactMatchesEnumeration(t *testing.T) {
	// Count the arrangements by brute force: every choice of which m of
	// the ranks 1..m+n belong to the first sample.
	for m := 1; m <= 6; m++ {
		for n := 1; n <= 6; n++ {
			counts := make([]float64, m*n+1)
			var total float64
			for mask := 0; mask < 1<<(m+n); mask++ {
				if popcount(mask) != m {
					continue
				}
				u, seenY := 0, 0
				for i := 0; i < m+n; i++ {
					if mask&(1<<i) != 0 {
						u += seenY
					} else {
						seenY++
					}
				}
				counts[u]++
				total++
			}
			var cum float64
			for lo := 0; 2*lo <= m*n; lo++ {
				cum += counts[lo]
				want := min(1, 2*cum/total)
				if got := exactP(m, n, lo); !near(got, want, 1e-12) {
					t.Errorf("exactP(%d, %d, %d) = %v, want %v", m, n, lo, got, want)
				}
			}
		}
	}
}

func popcount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestCompareProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		m, n := 1+r.IntN(30), 1+r.IntN(30)
		if i%5 == 0 {
			m, n = 1+r.IntN(80), 1+r.IntN(80)
		}
		shift := r.Float64() * 3
		draw := func(k int, off float64) []float64 {
			xs := make([]float64, k)
			for j := range xs {
				xs[j] = r.NormFloat64() + off
				if i%3 == 0 { // coarse values: ties
					xs[j] = math.Round(xs[j] * 2)
				}
			}
			return xs
		}
		a, b := draw(m, 10), draw(n, 10+shift)
		ab, ba := Compare(a, b, true), Compare(b, a, true)
		if !(ab.P >= 0 && ab.P <= 1) {
			t.Fatalf("p = %v out of [0, 1] for %v vs %v", ab.P, a, b)
		}
		if !near(ab.P, ba.P, 1e-12) {
			t.Fatalf("not symmetric: p %v vs %v for %v vs %v", ab.P, ba.P, a, b)
		}
		if ab.U+ba.U != float64(m*n) {
			t.Fatalf("U %v + U %v != %d", ab.U, ba.U, m*n)
		}
		if self := Compare(a, a, true); self.P != 1 {
			t.Fatalf("a sample against itself: p = %v", self.P)
		}
		for _, s := range []Summary{ab.Old, ab.New} {
			if !(s.Low <= s.Median && s.Median <= s.High) {
				t.Fatalf("median %v outside its interval [%v, %v]", s.Median, s.Low, s.High)
			}
		}
	}
}

func TestRegression(t *testing.T) {
	fast := []float64{100, 101, 99, 100.5, 99.5}
	slow := []float64{90, 91, 89, 90.5, 89.5}         // -10%
	slightly := []float64{98, 98.5, 97.5, 98.2, 97.8} // -2%
	noisy := []float64{80, 120, 95, 105, 100}

	for _, tc := range []struct {
		name           string
		old, new       []float64
		higherIsBetter bool
		threshold      float64
		regression     bool
		improvement    bool
	}{
		{"throughput down 10%", fast, slow, true, 0.05, true, false},
		{"throughput down 2%, threshold 5%", fast, slightly, true, 0.05, false, false},
		{"throughput down 2%, threshold 1%", fast, slightly, true, 0.01, true, false},
		{"throughput up 11%", slow, fast, true, 0.05, false, true},
		{"memory up 11%", slow, fast, false, 0.05, true, false},
		{"memory down 10%", fast, slow, false, 0.05, false, true},
		{"noise", fast, noisy, true, 0.05, false, false},
		{"3 runs: never significant", fast[:3], slow[:3], true, 0.05, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.old, tc.new, tc.higherIsBetter)
			if got := c.Regression(tc.threshold); got != tc.regression {
				t.Errorf("Regression(%v) = %v, want %v (delta %v, p %v)", tc.threshold, got, tc.regression, c.Delta, c.P)
			}
			if got := c.Improvement(tc.threshold); got != tc.improvement {
				t.Errorf("Improvement(%v) = %v, want %v (delta %v, p %v)", tc.threshold, got, tc.improvement, c.Delta, c.P)
			}
		})
	}

	c := Compare(fast, slow, true)
	if !near(c.Delta, -0.1, 1e-12) || !c.Significant() {
		t.Errorf("delta %v (want -0.1), significant %v (p %v)", c.Delta, c.Significant(), c.P)
	}
	c.Alpha = 0.001 // p = 2/252 = 0.0079
	if c.Significant() || c.Regression(0.05) {
		t.Errorf("alpha 0.001: p %v should not be significant", c.P)
	}
}

func TestCompareEdgeCases(t *testing.T) {
	c := Compare(nil, []float64{1, 2}, true)
	if c.P != 1 || !math.IsNaN(c.Delta) || c.Significant() || c.Regression(0) {
		t.Errorf("empty old: %+v", c)
	}
	c = Compare([]float64{0, 0}, []float64{0, 0}, true)
	if c.Delta != 0 || c.P != 1 {
		t.Errorf("zeros: delta %v p %v", c.Delta, c.P)
	}
	c = Compare([]float64{0, 0, 0, 0, 0}, []float64{1, 1, 1, 1, 1}, false)
	if !math.IsInf(c.Delta, 1) || !c.Regression(0.05) {
		t.Errorf("0 -> 1, lower is better: delta %v p %v regression %v", c.Delta, c.P, c.Regression(0.05))
	}
	// A negative old median: Delta is relative to its magnitude, so a
	// rise is still positive.
	c = Compare([]float64{-10, -10, -10}, []float64{-5, -5, -5}, true)
	if c.Delta != 0.5 {
		t.Errorf("-10 -> -5: delta %v, want 0.5", c.Delta)
	}
}
