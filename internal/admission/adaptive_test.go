package admission

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
		// After the probe, warm-up batches aim at half the target.
		{"warm-up after the probe", AdaptiveConfig{Target: time.Second},
			[]BatchStat{{Rows: 1000, Processing: 400 * time.Millisecond, Limit: 1000, First: true}}, 1250, "warm-up"},
		// The last batch cost 50 % more than predicted: σ = √(0.25/1.25),
		// ĉ = 1125 ms / 17,500 rows, limit = 1 s / (ĉ·(1+σ)).
		{"noise margin", AdaptiveConfig{Target: time.Second},
			[]BatchStat{{Rows: 10_000, Processing: 500 * time.Millisecond, Limit: 10_000}, {Rows: 10_000, Processing: 500 * time.Millisecond, Limit: 10_000},
				{Rows: 10_000, Processing: 750 * time.Millisecond, Limit: 10_000}}, int64(float64(time.Second) / (1125e6 / 17500 * (1 + math.Sqrt(0.2)))), "estimate"},
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
	if got := BudgetLimit(3_000_000, 0, 0, hist); got != 10_000 {
		t.Fatalf("BudgetLimit = %d, want 10000 (3 MB / 300 B)", got)
	}
	if got := BudgetLimit(3_000_000, 1_500_000, 0, hist); got != 5000 {
		t.Fatalf("BudgetLimit with reserve = %d, want 5000", got)
	}
	if got := BudgetLimit(3_000_000, 0, 200, hist); got != 6000 {
		t.Fatalf("BudgetLimit with 200 B of state per record = %d, want 6000 (3 MB / 500 B)", got)
	}
	if got := BudgetLimit(3_000_000, 0, 0, nil); got != -1 {
		t.Fatalf("BudgetLimit without history = %d, want -1", got)
	}
	if got := BudgetLimit(0, 0, 0, hist); got != -1 {
		t.Fatalf("BudgetLimit without budget = %d, want -1", got)
	}
}

// runPlant is a plant for the warm-up and noise simulations: a run's
// batches, the first marked as the probe, with
//
//	processing = (inFixed + cost·n·(1 + convex·n/convexRef)) · (1 ± noise)
//	             · surge(elapsed) · spike  (+ warm on the first batch)
//
// surge models the first seconds of a run, when the client's prefetch and
// the runtime compete for the CPU; spike multiplies every spikeEvery-th
// batch (load from elsewhere).
type runPlant struct {
	overhead, inFixed, cost, warm time.Duration
	noise, convex, convexRef      float64
	surge                         func(elapsed time.Duration, r *rand.Rand) float64
	spikeEvery                    int
	spike                         float64
	r                             *rand.Rand

	i       int
	elapsed time.Duration
}

func (p *runPlant) run(n int64) BatchStat {
	proc := float64(p.inFixed) + float64(p.cost)*float64(n)
	if p.convex > 0 {
		proc += float64(p.cost) * float64(n) * p.convex * float64(n) / p.convexRef
	}
	if p.noise > 0 {
		proc *= 1 + p.noise*(2*p.r.Float64()-1)
	}
	if p.surge != nil {
		proc *= p.surge(p.elapsed, p.r)
	}
	if p.spikeEvery > 0 && p.i > 0 && p.i%p.spikeEvery == 0 {
		proc *= p.spike
	}
	if p.i == 0 {
		proc += float64(p.warm)
	}
	st := BatchStat{Rows: n, Processing: time.Duration(proc), Overhead: p.overhead, First: p.i == 0}
	p.i++
	p.elapsed += st.Processing + st.Overhead
	return st
}

// drive runs batches batches of p under the controller and returns each
// batch's duration over the target and its decision.
func drive(p *runPlant, target time.Duration, batches int) ([]float64, []AdaptiveDecision) {
	var hist []BatchStat
	var ratios []float64
	var ds []AdaptiveDecision
	for i := 0; i < batches; i++ {
		d := Adaptive(AdaptiveConfig{Target: target}, hist, 0)
		st := p.run(d.Limit)
		st.Limit = d.Limit
		hist = append(hist, st)
		ratios = append(ratios, float64(st.Processing+st.Overhead)/float64(target))
		ds = append(ds, d)
	}
	return ratios, ds
}

// TestAdaptiveWarmUpIsBounded: whatever the plant — cheap or costly
// records, fixed costs inside and outside the tasks, a probe that pays a
// second of warm-up, ±10 % noise, or ±5 % noise with costs per record 30 %
// higher at the target's batch size than in tiny batches — the probe is
// the only batch allowed past 1.2 × target, and from the 20th batch on
// durations stay within ±25 % of it. (Noise at ±10 % and a cost that grows
// with batch size, both at their extremes, can reach 1.22.)
func TestAdaptiveWarmUpIsBounded(t *testing.T) {
	type plantCase struct {
		target, cost, overhead, inFixed, warm time.Duration
		convex, noise                         float64
	}
	var cases []plantCase
	for _, target := range []time.Duration{250 * time.Millisecond, time.Second} {
		for _, cost := range []time.Duration{2 * time.Microsecond, 10 * time.Microsecond, 100 * time.Microsecond} {
			for _, fixed := range [][2]time.Duration{{2 * time.Millisecond, 0}, {3 * time.Millisecond, 20 * time.Millisecond}, {target / 5, 0}} {
				for _, warm := range []time.Duration{0, 300 * time.Millisecond, time.Second} {
					for _, cn := range [][2]float64{{0, 0.05}, {0, 0.10}, {0.3, 0.05}} {
						cases = append(cases, plantCase{target, cost, fixed[0], fixed[1], warm, cn[0], cn[1]})
					}
				}
			}
		}
	}
	for _, c := range cases {
		for seed := uint64(0); seed < 6; seed++ {
			// convex: a record costs 1+convex times more in a batch of the
			// target's size than in a tiny one.
			p := &runPlant{overhead: c.overhead, inFixed: c.inFixed, cost: c.cost, warm: c.warm, noise: c.noise, r: rand.New(rand.NewPCG(seed, 11)),
				convex: c.convex, convexRef: float64(c.target-c.overhead-c.inFixed) / float64(c.cost)}
			ratios, ds := drive(p, c.target, 40)
			name := fmt.Sprintf("%+v seed %d", c, seed)
			if ds[0].Reason != "initial" || ds[0].Limit != DefaultInitialLimit {
				t.Fatalf("%s: first batch %s, want the probe", name, ds[0])
			}
			for i := 1; i < len(ratios); i++ {
				if ratios[i] > 1.2 {
					t.Fatalf("%s: batch %d took %.2f × target (%s); all: %.2f", name, i, ratios[i], ds[i], ratios)
				}
			}
			for i := 20; i < len(ratios); i++ {
				if math.Abs(ratios[i]-1) > 0.25 {
					t.Fatalf("%s: batch %d at %.2f × target, want settled within ±25 %%; all: %.2f", name, i, ratios[i], ratios)
				}
			}
		}
	}
}

// TestAdaptiveWarmUpSurvivesASlowFirstSecond models the CI failure: for the
// first second or so every record costs 1.5–4.5 × its steady cost, varying
// from batch to batch (batches of 383 → 562 → 243 → 842 ms against a
// 250 ms target). Warm-up batches aim at half the target until the cost
// is confirmed, so none passes 1.2 × target.
func TestAdaptiveWarmUpSurvivesASlowFirstSecond(t *testing.T) {
	target := 250 * time.Millisecond
	surge := func(elapsed time.Duration, r *rand.Rand) float64 {
		return 1 + 3*math.Exp(-elapsed.Seconds()/0.7)*(0.5+r.Float64())
	}
	warmUpBatches := 0
	for seed := uint64(0); seed < 500; seed++ {
		p := &runPlant{overhead: 3 * time.Millisecond, inFixed: 20 * time.Millisecond, cost: 10 * time.Microsecond, warm: 200 * time.Millisecond,
			noise: 0.05, surge: surge, r: rand.New(rand.NewPCG(seed, 9))}
		ratios, ds := drive(p, target, 30)
		for i := 1; i < len(ratios); i++ {
			if ratios[i] > 1.2 {
				t.Fatalf("seed %d: batch %d took %.2f × target (%s); all: %.2f", seed, i, ratios[i], ds[i], ratios)
			}
			if ds[i].Reason == "warm-up" {
				warmUpBatches++
			}
		}
		if math.Abs(ratios[len(ratios)-1]-1) > 0.2 {
			t.Fatalf("seed %d: not settled after 30 batches: %.2f", seed, ratios)
		}
	}
	if warmUpBatches == 0 {
		t.Fatal("no batch was sized as warm-up")
	}
}

// TestAdaptiveNoiseMargin: with ±10 % noise no batch passes 1.2 × target;
// with ±20 % the one-sided margin keeps the 95th percentile within it
// (sizing for the mean alone gives 1.22).
func TestAdaptiveNoiseMargin(t *testing.T) {
	target := 250 * time.Millisecond
	for _, noise := range []float64{0.10, 0.20} {
		var all []float64
		for seed := uint64(0); seed < 200; seed++ {
			p := &runPlant{overhead: 3 * time.Millisecond, inFixed: 5 * time.Millisecond, cost: 10 * time.Microsecond, warm: 100 * time.Millisecond,
				noise: noise, r: rand.New(rand.NewPCG(seed, 3))}
			ratios, ds := drive(p, target, 40)
			for i := 1; i < len(ratios); i++ {
				if noise <= 0.10 && ratios[i] > 1.2 {
					t.Fatalf("noise %.2f seed %d: batch %d took %.2f × target (%s)", noise, seed, i, ratios[i], ds[i])
				}
			}
			all = append(all, ratios[1:]...)
		}
		slices.Sort(all)
		if p95 := all[len(all)*95/100]; p95 > 1.2 {
			t.Fatalf("noise %.2f: p95 %.2f × target, want ≤ 1.2", noise, p95)
		}
	}
}

// TestAdaptiveSpikesDoNotCompound: a batch slowed 2.5 × by outside load
// is not followed by an overrun: the next batches shrink.
func TestAdaptiveSpikesDoNotCompound(t *testing.T) {
	target := 250 * time.Millisecond
	for seed := uint64(0); seed < 100; seed++ {
		p := &runPlant{overhead: 3 * time.Millisecond, cost: 10 * time.Microsecond, noise: 0.05, spikeEvery: 7, spike: 2.5, r: rand.New(rand.NewPCG(seed, 5))}
		ratios, ds := drive(p, target, 40)
		for i := 1; i < len(ratios); i++ {
			if i%7 != 0 && ratios[i] > 1.2 {
				t.Fatalf("seed %d: batch %d (after a spike: %v) took %.2f × target (%s)", seed, i, i%7 == 1, ratios[i], ds[i])
			}
		}
	}
}

// TestAdaptiveRecurringSlowBatches: a batch 30 % slower every 8 batches
// (a garbage-collection cycle over a large heap, as the timing test's
// in-process broker causes) keeps a margin between the slow batches, so
// the 95th percentile of all batches, the slow ones included, stays
// within 1.2 × target (sizing for the mean alone gives 1.30).
func TestAdaptiveRecurringSlowBatches(t *testing.T) {
	target := 250 * time.Millisecond
	var all []float64
	for seed := uint64(0); seed < 200; seed++ {
		p := &runPlant{overhead: 3 * time.Millisecond, cost: 10 * time.Microsecond, noise: 0.05, spikeEvery: 8, spike: 1.3, r: rand.New(rand.NewPCG(seed, 3))}
		ratios, ds := drive(p, target, 40)
		for i := 1; i < len(ratios); i++ {
			if ratios[i] > 1.4 {
				t.Fatalf("seed %d: batch %d took %.2f × target (%s)", seed, i, ratios[i], ds[i])
			}
		}
		all = append(all, ratios[1:]...)
	}
	slices.Sort(all)
	if p95 := all[len(all)*95/100]; p95 > 1.2 {
		t.Fatalf("p95 %.2f × target, want ≤ 1.2", p95)
	}
}
