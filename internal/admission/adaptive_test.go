package admission

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// plant simulates batches: duration = overhead + cost·rows (+ noise).
type plant struct {
	overhead time.Duration
	cost     time.Duration // per record
	noise    float64       // relative, uniform ±
	r        *rand.Rand
}

func (p *plant) run(rows int64) BatchStat {
	proc := float64(p.cost) * float64(rows)
	if p.noise > 0 {
		proc *= 1 + p.noise*(2*p.r.Float64()-1)
	}
	return BatchStat{Rows: rows, Bytes: rows * 200, Processing: time.Duration(proc), Overhead: p.overhead}
}

// simulate runs n batches against an infinite backlog (or a per-batch
// arrival when arrival != nil) and returns the batch durations.
func simulate(cfg AdaptiveConfig, p *plant, n int, history *[]BatchStat, changeAt int, change func(*plant), backlog func(i int) int64) []time.Duration {
	var durs []time.Duration
	for i := 0; i < n; i++ {
		if i == changeAt && change != nil {
			change(p)
		}
		d := Adaptive(cfg, *history, 0)
		rows := d.Limit
		if backlog != nil {
			rows = min(rows, backlog(i))
		}
		st := p.run(rows)
		st.Limit = d.Limit
		*history = append(*history, st)
		durs = append(durs, st.Processing+st.Overhead)
	}
	return durs
}

func within(d, target time.Duration, tol float64) bool {
	return math.Abs(float64(d)/float64(target)-1) <= tol
}

func TestAdaptiveSettlesAfterCostSteps(t *testing.T) {
	target := time.Second
	for _, tc := range []struct {
		name   string
		factor float64
	}{{"4x slower", 4}, {"4x faster", 0.25}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &plant{overhead: 50 * time.Millisecond, cost: 20 * time.Microsecond, noise: 0.05, r: rand.New(rand.NewPCG(7, 9))}
			var hist []BatchStat
			cfg := AdaptiveConfig{Target: target}
			durs := simulate(cfg, p, 40, &hist, 20, func(p *plant) { p.cost = time.Duration(float64(p.cost) * tc.factor) }, nil)
			// Settled before the step.
			for i := 10; i < 20; i++ {
				if !within(durs[i], target, 0.2) {
					t.Fatalf("batch %d before the step: %s, want within 20%% of %s (all: %v)", i, durs[i], target, durs)
				}
			}
			// Within ±20 % at most 5 batches after the step, and stays there.
			for i := 25; i < 40; i++ {
				if !within(durs[i], target, 0.2) {
					t.Fatalf("batch %d (%d after the step): %s, want within 20%% of %s (all: %v)", i, i-20, durs[i], target, durs)
				}
			}
			// No sustained oscillation: the error does not keep changing sign.
			flips := 0
			for i := 26; i < 40; i++ {
				a, b := durs[i-1]-target, durs[i]-target
				if (a > 0) != (b > 0) && !within(durs[i], target, 0.06) {
					flips++
				}
			}
			if flips > 2 {
				t.Fatalf("error changed sign %d times after settling (beyond noise): %v", flips, durs)
			}
		})
	}
}

func TestAdaptiveBurstyArrivalAndBounds(t *testing.T) {
	p := &plant{overhead: 20 * time.Millisecond, cost: 10 * time.Microsecond, r: rand.New(rand.NewPCG(1, 1))}
	var hist []BatchStat
	cfg := AdaptiveConfig{Target: 500 * time.Millisecond, Max: 40_000, Min: 100}
	// Bursts: mostly 50 records per batch, sometimes a flood.
	durs := simulate(cfg, p, 60, &hist, -1, nil, func(i int) int64 {
		if i%10 == 0 {
			return 1_000_000
		}
		return 50
	})
	for i, h := range hist {
		if h.Limit > 40_000 || h.Limit < 100 {
			t.Fatalf("batch %d limit %d outside [100, 40000]", i, h.Limit)
		}
	}
	// Small batches must not shrink the estimate into tiny limits: a flood
	// after quiet batches still gets a large batch, bounded by the target.
	for i := 20; i < 60; i += 10 {
		if hist[i].Rows < 20_000 {
			t.Errorf("flood batch %d admitted only %d rows (limit %d)", i, hist[i].Rows, hist[i].Limit)
		}
		if durs[i] > 600*time.Millisecond {
			t.Errorf("flood batch %d took %s, want ≤ 1.2 × 500ms", i, durs[i])
		}
	}
}

func TestAdaptiveDecisionReasons(t *testing.T) {
	cases := []struct {
		name   string
		cfg    AdaptiveConfig
		hist   []BatchStat
		want   int64
		reason string
	}{
		{"initial default", AdaptiveConfig{Target: time.Second}, nil, DefaultInitialLimit, "initial"},
		{"initial capped by max", AdaptiveConfig{Target: time.Second, Max: 500}, nil, 500, "maxOffsetsPerTrigger"},
		{"estimate", AdaptiveConfig{Target: time.Second},
			[]BatchStat{{Rows: 10_000, Processing: 500 * time.Millisecond, Limit: 10_000}}, 20_000, "estimate"},
		{"growth capped at 2x", AdaptiveConfig{Target: time.Second},
			[]BatchStat{{Rows: 1000, Processing: 10 * time.Millisecond, Limit: 1000}}, 2000, "growth cap"},
		{"overhead subtracted", AdaptiveConfig{Target: time.Second},
			[]BatchStat{{Rows: 10_000, Processing: 250 * time.Millisecond, Overhead: 500 * time.Millisecond, Limit: 10_000}}, 20_000, "estimate"},
		{"min wins", AdaptiveConfig{Target: time.Second, Min: 50_000},
			[]BatchStat{{Rows: 10_000, Processing: 10 * time.Second, Limit: 10_000}}, 50_000, "minOffsetsPerTrigger"},
		{"lag boost doubles target", AdaptiveConfig{Target: time.Second, MaxLagSeconds: 1},
			[]BatchStat{{Rows: 10_000, Processing: time.Second, Limit: 10_000}}, 20_000, "estimate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Adaptive(c.cfg, c.hist, 5)
			if d.Limit != c.want || d.Reason != c.reason {
				t.Fatalf("Adaptive = %d (%s), want %d (%s); %s", d.Limit, d.Reason, c.want, c.reason, d)
			}
		})
	}
}

func TestBudgetLimit(t *testing.T) {
	hist := []BatchStat{{Rows: 1000, Bytes: 300_000}, {Rows: 1000, Bytes: 300_000}}
	if got := BudgetLimit(3_000_000, 0, hist); got != 10_000 {
		t.Fatalf("BudgetLimit = %d, want 10000 (3 MB / 300 B)", got)
	}
	if got := BudgetLimit(3_000_000, 1_500_000, hist); got != 5000 {
		t.Fatalf("BudgetLimit with reserve = %d, want 5000", got)
	}
	if got := BudgetLimit(3_000_000, 0, nil); got != -1 {
		t.Fatalf("BudgetLimit without history = %d, want -1", got)
	}
	if got := BudgetLimit(0, 0, hist); got != -1 {
		t.Fatalf("BudgetLimit without budget = %d, want -1", got)
	}
}
