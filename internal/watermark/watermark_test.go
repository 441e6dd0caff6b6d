package watermark

import (
	"math"
	"strings"
	"testing"
)

// Spark's EventTimeWatermarkSuite "EventTimeStats" and "avg on large values".
func TestStats(t *testing.T) {
	s := Stats{Max: 100, Min: 10, Avg: 20, Count: 5}
	s.Add(80)
	if s.Max != 100 || s.Min != 10 || math.Abs(s.Avg-30) > 1e-6 || s.Count != 6 {
		t.Fatalf("after Add: %+v", s)
	}
	s.Merge(Stats{Max: 80, Min: 5, Avg: 15, Count: 4})
	if s.Max != 100 || s.Min != 5 || math.Abs(s.Avg-24) > 1e-6 || s.Count != 10 {
		t.Fatalf("after Merge: %+v", s)
	}
	const large = 10_000_000_000
	l := Stats{Max: large, Min: large, Avg: large, Count: large - 1}
	l.Add(large)
	if math.Abs(l.Avg-large) > 1e-6 {
		t.Fatalf("avg %v", l.Avg)
	}
	l.Merge(Stats{Max: large + 1, Min: large, Avg: large + 1, Count: large})
	if math.Abs(l.Avg-(large+0.5)) > 1e-6 {
		t.Fatalf("avg after merge %v", l.Avg)
	}
	var e Stats
	e.Merge(Stats{})
	if e.Count != 0 {
		t.Fatal("merging empty stats changed them")
	}
}

// The sequence of Spark's "watermark with 2 streams": node 0 has a 10 s
// delay, node 1 a 5 s delay, policy min.
func TestTrackerMinPolicy(t *testing.T) {
	tr := NewTracker(Min)
	delays := []int64{10_000, 5_000}
	step := func(first, second []int64, want int64) {
		t.Helper()
		st := make([]Stats, 2)
		for _, v := range first {
			st[0].Add(v * 1000)
		}
		for _, v := range second {
			st[1].Add(v * 1000)
		}
		if got := tr.Update(st, delays); got != want {
			t.Fatalf("first %v second %v: watermark %d, want %d", first, second, got, want)
		}
	}
	step([]int64{11}, nil, 0)
	step(nil, []int64{6}, 1000)
	step(nil, []int64{8}, 1000)
	step([]int64{21}, nil, 3000)
	step(nil, []int64{17, 28, 39}, 11000)
	step([]int64{31}, nil, 21000)
	step([]int64{41}, nil, 31000)
	step([]int64{51}, nil, 34000)
	step([]int64{100}, []int64{100}, 90000)
	step([]int64{120}, []int64{110}, 105000)
	step([]int64{130}, []int64{125}, 120000)
	step([]int64{100}, []int64{100}, 120000)
	step([]int64{140}, []int64{100}, 120000)
	step([]int64{100}, []int64{135}, 130000)
	step([]int64{200}, []int64{190}, 185000)
	// Restart: per-node values are gone, the global value is restored.
	tr = NewTracker(Min)
	tr.SetGlobal(185000)
	step(nil, nil, 185000)
	step(nil, []int64{200}, 185000)
	step([]int64{200}, nil, 190000)
}

func TestTrackerMaxPolicyAndNegative(t *testing.T) {
	tr := NewTracker(Max)
	st := []Stats{{}, {}}
	st[0].Add(20_000)
	st[1].Add(30_000)
	if got := tr.Update(st, []int64{10_000, 15_000}); got != 15_000 {
		t.Fatalf("max policy: %d", got)
	}
	// A node below its delay goes negative; the global value stays.
	tr = NewTracker(Min)
	one := []Stats{{}}
	one[0].Add(5_000)
	if got := tr.Update(one, []int64{10_000}); got != 0 {
		t.Fatalf("negative node: global %d", got)
	}
}

func TestParseDelay(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"10 seconds", 10_000}, {"1 minute", 60_000}, {"interval 1 hour 30 minutes", 5_400_000},
		{"10s", 10_000}, {"500 milliseconds", 500}, {"2 years 5 months", (24 + 5) * 31 * 86_400_000}, {"0 seconds", 0},
	} {
		got, err := ParseDelay(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDelay(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	// Spark's "delay threshold should not be negative." cases.
	for _, in := range []string{"-1 year", "1 year -13 months", "1 month -40 days", "-10 seconds"} {
		_, err := ParseDelay(in)
		if err == nil || !strings.Contains(err.Error(), "should not be negative.") {
			t.Errorf("ParseDelay(%q) = %v; want a negative-delay error", in, err)
		}
	}
	for _, in := range []string{"", "ten seconds", "10", "10 fortnights"} {
		if _, err := ParseDelay(in); err == nil {
			t.Errorf("ParseDelay(%q) succeeded", in)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	if p, err := ParsePolicy("MAX"); err != nil || p != Max {
		t.Fatal(p, err)
	}
	for _, in := range []string{"", "random"} {
		if _, err := ParsePolicy(in); err == nil || !strings.Contains(err.Error(), "valid values are 'min' and 'max'") {
			t.Errorf("ParsePolicy(%q) = %v", in, err)
		}
	}
}
