package orders

import (
	"math"
	"testing"
	"time"
)

const s = time.Second

func TestRateAt(t *testing.T) {
	spiky := Profile{Base: 100, Spike: 5, SpikeAt: 10 * s, SpikeFor: 5 * s}
	outage := Profile{Base: 100, Spike: 0, SpikeAt: 2 * s, SpikeFor: 1 * s}
	for _, tc := range []struct {
		p       Profile
		elapsed time.Duration
		want    float64
	}{
		{Profile{Base: 2000}, 0, 2000},
		{Profile{Base: 2000}, time.Hour, 2000},
		{Profile{Base: 2000, Spike: 3}, 0, 2000}, // no SpikeFor: no spike
		{spiky, 0, 100},
		{spiky, 10*s - 1, 100},
		{spiky, 10 * s, 500},
		{spiky, 12 * s, 500},
		{spiky, 15*s - 1, 500},
		{spiky, 15 * s, 100},
		{outage, 2500 * time.Millisecond, 0},
		{outage, 3 * s, 100},
		{Profile{Base: 10, Spike: 2, SpikeFor: s}, 0, 20}, // spike at the start
	} {
		if got := tc.p.RateAt(tc.elapsed); got != tc.want {
			t.Errorf("%+v.RateAt(%v) = %v, want %v", tc.p, tc.elapsed, got, tc.want)
		}
	}
}

func TestExpected(t *testing.T) {
	spiky := Profile{Base: 100, Spike: 5, SpikeAt: 10 * s, SpikeFor: 5 * s}
	for _, tc := range []struct {
		p       Profile
		elapsed time.Duration
		want    float64
	}{
		{Profile{Base: 2000}, 1500 * time.Millisecond, 3000},
		{Profile{Base: 2000}, -s, 0},
		{spiky, 10 * s, 1000},
		{spiky, 12 * s, 1000 + 2*500},
		{spiky, 15 * s, 1000 + 5*500},
		{spiky, 20 * s, 1000 + 5*500 + 5*100},
		{Profile{Base: 100, Spike: 0, SpikeAt: 2 * s, SpikeFor: s}, 4 * s, 300},
		{Profile{Base: 10, Spike: 3}, 10 * s, 100},
	} {
		if got := tc.p.Expected(tc.elapsed); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%+v.Expected(%v) = %v, want %v", tc.p, tc.elapsed, got, tc.want)
		}
	}
	// Expected is the integral of RateAt: check by summing small steps.
	p := Profile{Base: 250, Spike: 3.5, SpikeAt: 1300 * time.Millisecond, SpikeFor: 700 * time.Millisecond}
	const step = time.Millisecond
	var sum float64
	for e := time.Duration(0); e < 3*s; e += step {
		sum += p.RateAt(e) * step.Seconds()
		if got := p.Expected(e + step); math.Abs(got-sum) > 1e-6 {
			t.Fatalf("Expected(%v) = %v, sum of RateAt = %v", e+step, got, sum)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Profile
		ok bool
	}{
		{Profile{}, true},
		{Profile{Base: 2000, Spike: 4, SpikeAt: s, SpikeFor: s}, true},
		{Profile{Base: -1}, false},
		{Profile{Base: math.NaN()}, false},
		{Profile{Base: math.Inf(1)}, false},
		{Profile{Base: 1, Spike: -2}, false},
		{Profile{Base: 1, SpikeAt: -s}, false},
		{Profile{Base: 1, SpikeFor: -s}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}
