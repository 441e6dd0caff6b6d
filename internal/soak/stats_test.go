package soak

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// lifetimes builds samples every 10 s over an hour, the process restarted
// every 3 minutes; level(up) is the value after up seconds of a lifetime,
// plus Gaussian noise of sd.
func lifetimes(level func(up float64) float64, sd float64, seed uint64) []point {
	r := rand.New(rand.NewPCG(seed, 1))
	var pts []point
	for t := 0.0; t < 3600; t += 10 {
		seg := int(t / 180)
		up := t - float64(seg)*180
		pts = append(pts, point{t: t, y: level(up) + r.NormFloat64()*sd, seg: seg})
	}
	return pts
}

func TestTrend(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name   string
		pts    []point
		rising bool
	}{
		// A heap at its steady size with GC noise: flat.
		{"flat with noise", lifetimes(func(float64) float64 { return 60 * mib }, 4*mib, 1), false},
		// Every restart starts higher (say the output log grows) but each
		// lifetime is flat: not a leak of the process.
		{"level shifts between lifetimes", func() []point {
			p := lifetimes(func(float64) float64 { return 60 * mib }, 2*mib, 2)
			for i := range p {
				p[i].y += float64(p[i].seg) * 3 * mib
			}
			return p
		}(), false},
		// Growth within every lifetime, undone by each kill: a leak the
		// kills hide from a plain fit.
		{"leak within lifetimes", lifetimes(func(up float64) float64 { return 60*mib + up*10*mib/60 }, 4*mib, 3), true},
		// A slow drift under the tolerance (25 % + 16 MiB per hour).
		{"drift under tolerance", lifetimes(func(up float64) float64 { return 60*mib + up*20*mib/3600 }, 0.5*mib, 4), false},
	} {
		tr := trend("rss_bytes", tc.pts, 0.25, 16*mib)
		if tr.Rising != tc.rising {
			t.Errorf("%s: %+v, want rising %v", tc.name, tr, tc.rising)
		}
	}
	// A single-segment exact line: slope known, t huge.
	var line []point
	for i := 0; i < 100; i++ {
		line = append(line, point{t: float64(i) * 36, y: 100 + float64(i)})
	}
	tr := trend("fds", line, 0.1, 5)
	if math.Abs(tr.SlopePerHour-100) > 1e-6 || !tr.Rising || tr.Median != 150 {
		t.Errorf("line: %+v", tr)
	}
	if tr := trend("x", nil, 0, 0); tr.Rising || tr.N != 0 {
		t.Errorf("empty: %+v", tr)
	}
	// CI's two-minute soak: goroutines sampled twice in each of two
	// lifetimes, one more at the second sample of each (reconnections).
	// One residual degree of freedom: the fit is near exact by chance and
	// its t in the thousands; no verdict.
	short := []point{{40, 23, 0}, {50, 24, 0}, {100, 22, 2}, {111, 23, 2}}
	if tr := trend("goroutines", short, 0.10, 10); tr.Rising || !tr.TooFew {
		t.Errorf("short run: %+v, want too few samples and not rising", tr)
	}
}

// judge turns rising trends, lost or duplicated records into failures.
func TestJudge(t *testing.T) {
	mk := func(rss func(t float64) int64) *soak {
		s := &soak{cfg: Config{Duration: time.Hour}, res: &Result{Rate: 1000, InTopic: 10}}
		s.cfg.defaults()
		for tt := 0.0; tt < 3600; tt += 10 {
			life := int(tt/180) + 1
			s.res.Samples = append(s.res.Samples, Sample{T: tt, Life: life, Up: tt - float64(life-1)*180,
				RSS: rss(tt) + 30<<20, AnonRSS: rss(tt), FDs: 20, Goroutines: 30, Lag: 500, CheckpointBytes: 40 << 10})
		}
		return s
	}
	s := mk(func(float64) int64 { return 50 << 20 })
	s.judge()
	if !s.res.OK() {
		t.Errorf("flat run failed: %v", s.res.Failures)
	}
	s = mk(func(tt float64) int64 { return 50<<20 + int64(math.Mod(tt, 180))*(200<<10) })
	s.judge()
	if s.res.OK() || !strings.Contains(strings.Join(s.res.Failures, ";"), "anon_rss_bytes trends upward") {
		t.Errorf("leaking run: %v", s.res.Failures)
	}
	// A heap that follows the lag while the query catches up (lag above 5 s
	// of input) is not a leak: those samples are left out of the memory
	// trend.
	s = mk(func(float64) int64 { return 50 << 20 })
	for i := range s.res.Samples {
		if m := &s.res.Samples[i]; math.Mod(m.T, 180) >= 100 {
			m.Lag = 20_000 + int64(math.Mod(m.T, 180))*100
			m.AnonRSS = 50<<20 + int64(math.Mod(m.T, 180)-100)*(400<<10)
		}
	}
	s.judge()
	for _, f := range s.res.Failures {
		if strings.Contains(f, "anon_rss_bytes") {
			t.Errorf("catch-up run judged as a leak: %v", s.res.Failures)
		}
	}
	s = mk(func(float64) int64 { return 50 << 20 })
	s.res.Lost, s.res.Duplicated = 1, 2
	s.judge()
	if s.res.OK() || !strings.Contains(s.res.Failures[0], "1 lost, 2 duplicated") {
		t.Errorf("lossy run: %v", s.res.Failures)
	}
	// Lag growing by more than one outage's backlog over the run.
	s = mk(func(float64) int64 { return 50 << 20 })
	for i := range s.res.Samples {
		s.res.Samples[i].Lag = int64(s.res.Samples[i].T * 100)
	}
	s.judge()
	if s.res.OK() || !strings.Contains(strings.Join(s.res.Failures, ";"), "lag_records trends upward") {
		t.Errorf("lag growing: %v", s.res.Failures)
	}
}
