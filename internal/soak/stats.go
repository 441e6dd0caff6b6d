package soak

import (
	"math"
	"slices"
)

// point is one observation of a metric: t in seconds since the start of
// the run, seg the lifetime it belongs to (a process between two kills;
// one segment for metrics that outlive the process).
type point struct {
	t, y float64
	seg  int
}

// Trend is a fitted linear trend of one metric after warm-up.
type Trend struct {
	Metric string `json:"metric"`
	// N is the number of samples fitted.
	N int `json:"n"`
	// Median is the median of the fitted samples.
	Median float64 `json:"median"`
	// SlopePerHour is the fitted growth per hour (within lifetimes for
	// per-process metrics: see fitSlope).
	SlopePerHour float64 `json:"slopePerHour"`
	// T is the slope's t statistic (slope over its standard error); 0
	// when it cannot be computed.
	T float64 `json:"t"`
	// Tolerance is the growth per hour allowed: Rel × Median + Abs.
	Tolerance float64 `json:"tolerancePerHour"`
	// Rising is the verdict: a significant (T > 3) slope whose growth per
	// hour is above Tolerance.
	Rising bool `json:"rising"`
	// TooFew: the samples leave fewer than minDOF degrees of freedom after
	// the fit (a short run, or lifetimes of two samples each), so no
	// verdict is given — Rising stays false.
	TooFew bool `json:"tooFew,omitempty"`
}

// minDOF is the fewest residual degrees of freedom a trend is judged on.
// With one or two (four samples in two lifetimes, as a two-minute soak with
// kills leaves) each lifetime's points nearly define its own line, and two
// lines of similar slope by chance — goroutines 23→24 in one lifetime and
// 22→23 in the next — fit with a tiny error and a t statistic in the
// thousands, whatever the threshold.
const minDOF = 4

// significance is the t statistic above which a slope is not noise. With
// the 100+ samples of an hour's run the slope's t distribution is nearly
// normal: 3 is a 0.1 % one-sided false-alarm rate per metric.
const significance = 3

// fitSlope fits y = a_seg + b·t by least squares with one intercept per
// segment (a fixed-effects fit) and returns b and its standard error. Only
// the variation within a segment counts: a process restarted by a kill
// starts from a fresh heap, which says nothing about a leak, while memory
// that grows within every lifetime does. With one segment this is the
// ordinary least-squares slope.
func fitSlope(pts []point) (slope, stderr float64, dof int, ok bool) {
	type acc struct{ n, st, sy float64 }
	segs := map[int]*acc{}
	for _, p := range pts {
		a := segs[p.seg]
		if a == nil {
			a = &acc{}
			segs[p.seg] = a
		}
		a.n++
		a.st += p.t
		a.sy += p.y
	}
	var sxx, sxy float64
	for _, p := range pts {
		a := segs[p.seg]
		dt, dy := p.t-a.st/a.n, p.y-a.sy/a.n
		sxx += dt * dt
		sxy += dt * dy
	}
	dof = len(pts) - len(segs) - 1
	if sxx == 0 || dof < 1 {
		return 0, 0, dof, false
	}
	slope = sxy / sxx
	var sse float64
	for _, p := range pts {
		a := segs[p.seg]
		r := (p.y - a.sy/a.n) - slope*(p.t-a.st/a.n)
		sse += r * r
	}
	return slope, math.Sqrt(sse / float64(dof) / sxx), dof, true
}

// trend fits pts and judges them against the tolerance rel × median + abs
// per hour.
func trend(metric string, pts []point, rel, abs float64) Trend {
	tr := Trend{Metric: metric, N: len(pts)}
	if len(pts) == 0 {
		return tr
	}
	ys := make([]float64, len(pts))
	for i, p := range pts {
		ys[i] = p.y
	}
	slices.Sort(ys)
	tr.Median = ys[len(ys)/2]
	tr.Tolerance = rel*math.Abs(tr.Median) + abs
	slope, se, dof, ok := fitSlope(pts)
	tr.TooFew = dof < minDOF
	if !ok {
		return tr
	}
	tr.SlopePerHour = slope * 3600
	switch {
	case se > 0:
		tr.T = slope / se
	case slope > 0:
		tr.T = 1e9 // an exact line: as significant as it gets (JSON has no Inf)
	}
	tr.Rising = !tr.TooFew && tr.T > significance && tr.SlopePerHour > tr.Tolerance
	return tr
}
