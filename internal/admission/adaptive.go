package admission

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// # Adaptive admission
//
// Spark leaves the batch size to a static maxOffsetsPerTrigger. sluice can
// instead choose each batch's record limit so the batch finishes near a
// target duration T, from what recent batches cost, and without overrunning
// it from the first batch on.
//
// Model. A batch of n records takes d(n) = f + c·n, where f is the fixed
// cost of a batch (planning, offset and commit logs) and c the cost of a
// record. Both are measured on the batches the query ran: f̂ is the median
// of the last five batches' time outside addBatch (one slow fsync does not
// shrink the next batches), and
//
//	ĉ = Σ wᵢ·pᵢ / Σ wᵢ·nᵢ,   wᵢ = λ^(age of batch i),  λ = 0.5,
//
// where pᵢ is batch i's processing time (addBatch) and nᵢ its rows. Summing
// before dividing weights each batch by its size, so tiny batches, whose
// per-record cost includes fixed task costs, cannot drag the estimate up
// into a spiral of ever smaller batches; those fixed costs make ĉ err on
// the high (safe) side while batches grow. λ = 0.5: after a step change in
// cost the estimate is 50 %, 75 %, 87.5 %, 94 % of the way there 1–4
// batches later.
//
// Noise margin. Each batch's prediction error is eᵢ = cᵢ/ĉᵢ₋₁ − 1, its cost
// per record against the estimate it was sized with. The margin is the
// one-sided RMS of recent errors,
//
//	σ = √( Σ vᵢ·max(0, eᵢ)² / Σ vᵢ ),   vᵢ = 0.25^(age),  σ ≤ 1,
//
// so only batches that cost more than predicted (noise, a slow-down, a cost
// that grows with batch size) widen it, and a change of regime stops
// counting within a few batches. So that slow batches that recur (a
// garbage-collection cycle every few batches) leave a margin between
// them, σ is at least 3/4 of the largest error of the last 12 batches,
// capped at 15 %.
//
// Control law. The next limit aims at a share a of the target:
//
//	n* = (a·T − f̂) / (ĉ·(1 + σ))      (at least T/10 is kept for records)
//
// then bounded: it may grow at most ×2 per batch — or up to ×4 once two
// batches were measured, when the last batch scaled to 0.8·a·T at its
// all-in cost per record d/n (fixed costs included, so a larger batch can
// only be cheaper per record) allows it — may shrink at once, and is
// clamped to [minOffsetsPerTrigger, maxOffsetsPerTrigger] and to what the
// memory budget allows.
//
// Warm-up. The first batch of a run is a probe of DefaultInitialLimit
// records: nothing is known yet, and it pays one-time costs (connections,
// caches), so it leaves the estimate once two later batches exist. Costs
// measured in a run's first second are the least reliable — the client's
// first prefetch and the runtime compete for the CPU, and small batches
// vary by ±50 % or more — so batches aim at a = 1/2 of the target until
// three batches in a row cost within ±20 % of their prediction, then one
// batch at a = 3/4, then a = 1. A batch that costs twice its estimate
// during warm-up still finishes within the target.
//
// Why it is stable. With exact estimates the law is dead-beat: d is linear
// in n and the law inverts it, so one step puts d at a·T. After a step in
// cost the estimate's error decays geometrically (λ per batch) without a
// change of sign, so batch durations approach the target from one side and
// do not oscillate; the margin only makes the approach more cautious after
// a slow-down. The growth caps only slow convergence from below.
// Measurement noise enters through ĉ, which averages over ~1/(1−λ) = 2
// batches; that is the price of reacting within a few batches.

// BatchStat is what admission needs to know about a finished batch.
type BatchStat struct {
	Rows  int64
	Bytes int64
	// Processing is the time spent reading, transforming and writing the
	// batch's records (Spark's addBatch).
	Processing time.Duration
	// Overhead is the rest of the batch: planning, offset/commit logs.
	Overhead time.Duration
	// Limit is the record limit the batch was admitted under (0 = none).
	Limit int64
	// First marks the run's first batch, which pays one-time costs and
	// starts the warm-up.
	First bool
}

// AdaptiveConfig bounds the controller.
type AdaptiveConfig struct {
	// Target is the batch duration to aim for.
	Target time.Duration
	// Min and Max bound the limit (minOffsetsPerTrigger,
	// maxOffsetsPerTrigger); 0 = unbounded.
	Min, Max int64
	// Initial is the probe's limit, used before any batch has been
	// measured (default DefaultInitialLimit, or Max when smaller).
	Initial int64
	// MaxLagSeconds, when > 0, lets the controller double the target while
	// the query is more than that far behind: bigger batches amortise the
	// fixed cost and drain faster, at the price of latency.
	MaxLagSeconds float64
}

// The controller's constants (see the package's "Adaptive admission"
// comment).
const (
	// DefaultInitialLimit is the probe's limit: the first adaptive batch,
	// when nothing has been measured yet.
	DefaultInitialLimit = 1_000
	// Decay is λ, the per-batch weight decay of the cost estimate.
	Decay = 0.5
	// SpreadDecay is the per-batch weight decay of the noise margin σ:
	// faster than Decay, so that a change of regime stops counting as
	// noise within a few batches.
	SpreadDecay = 0.25
	// SlowSpreadBatches and MaxSlowSpread: the margin is at least the RMS
	// of positive errors over that many batches, capped at MaxSlowSpread.
	SlowSpreadBatches = 12
	SlowSpreadShare   = 0.75
	MaxSlowSpread     = 0.15
	// MaxSpread caps σ: batches are never sized for more than twice the
	// estimated cost per record.
	MaxSpread = 1.0
	// WarmUpShare is the share of the target batches aim at during
	// warm-up.
	WarmUpShare = 0.5
	// WarmTolerance and ConfidentBatches end the warm-up: that many
	// batches in a row within ±WarmTolerance of their predicted cost.
	WarmTolerance    = 0.2
	ConfidentBatches = 3
	// MaxGrowth bounds how many times the last limit the next may be
	// (×2 until FastGrowthBatches batches were measured); GrowthHeadroom
	// is the share of the aim such a step is sized for from the last
	// batch's all-in cost per record.
	MaxGrowth         = 4
	FastGrowthBatches = 2
	GrowthHeadroom    = 0.8
)

// AdaptiveDecision is the controller's choice and why it was made.
type AdaptiveDecision struct {
	// Limit is the record limit for the next batch (≥ 1).
	Limit int64
	// Reason names what decided it: "initial" (the probe), "warm-up",
	// "estimate", "growth cap", "maxOffsetsPerTrigger",
	// "minOffsetsPerTrigger".
	Reason string
	// CostPerRecord and Overhead are the estimates ĉ and f̂ (0 when
	// unknown).
	CostPerRecord time.Duration
	Overhead      time.Duration
	// Spread is the noise margin σ: the limit is sized for
	// CostPerRecord·(1+σ).
	Spread float64
	// Target is the batch duration aimed at (after any lag boost; during
	// warm-up the limit aims at a share of it).
	Target time.Duration
}

func (d AdaptiveDecision) String() string {
	return fmt.Sprintf("limit %d (%s; target %s, cost %s/record + %.0f%% margin, overhead %s)",
		d.Limit, d.Reason, d.Target, d.CostPerRecord, 100*d.Spread, d.Overhead)
}

// Adaptive chooses the next batch's record limit from recent batch history
// (oldest first). lagSeconds is the current time lag (NaN or 0 if unknown).
// It is a pure function.
func Adaptive(cfg AdaptiveConfig, history []BatchStat, lagSeconds float64) AdaptiveDecision {
	target := cfg.Target
	if target <= 0 {
		target = time.Second
	}
	if cfg.MaxLagSeconds > 0 && lagSeconds > cfg.MaxLagSeconds {
		target *= 2
	}
	d := AdaptiveDecision{Target: target}
	var limit float64
	if est, ok := estimate(history, target); !ok {
		d.Reason = "initial"
		limit = float64(cfg.Initial)
		if limit <= 0 {
			limit = DefaultInitialLimit
		}
	} else {
		d.CostPerRecord = time.Duration(est.cost)
		d.Overhead = time.Duration(est.overhead)
		d.Spread = est.spread
		d.Reason = "estimate"
		if est.aim < 1 {
			d.Reason = "warm-up"
		}
		budget := est.aim*float64(target) - est.overhead
		if budget < float64(target)/10 {
			// Fixed cost eats the target: keep batches meaningful anyway.
			budget = float64(target) / 10
		}
		limit = budget / max(est.cost*(1+est.spread), est.last)
		if grow := est.prev * est.growth; limit > grow {
			limit = grow
			d.Reason = "growth cap"
		}
	}
	if limit > math.MaxInt64/2 {
		limit = math.MaxInt64 / 2
	}
	d.Limit = int64(limit)
	if cfg.Max > 0 && d.Limit > cfg.Max {
		d.Limit, d.Reason = cfg.Max, "maxOffsetsPerTrigger"
	}
	if cfg.Min > 0 && d.Limit < cfg.Min {
		d.Limit, d.Reason = cfg.Min, "minOffsetsPerTrigger"
	}
	if d.Limit < 1 {
		d.Limit = 1
	}
	return d
}

// costEstimate is what the history says about the plant.
type costEstimate struct {
	cost     float64 // ĉ, ns per record
	overhead float64 // f̂, ns per batch
	spread   float64 // σ, the noise margin
	aim      float64 // share of the target to aim at (< 1 in warm-up)
	last     float64 // the last batch's cost per record, ns
	prev     float64 // the last batch's limit (its rows when unlimited)
	growth   float64 // how many times prev the next batch may be
}

// usable returns the batches the estimate is made from: those with rows,
// without the run's first batch (the probe) once two later batches exist.
func usable(history []BatchStat) []BatchStat {
	var use []BatchStat
	for _, h := range history {
		if h.Rows > 0 && h.Processing > 0 {
			use = append(use, h)
		}
	}
	if len(use) > 2 && use[0].First {
		use = use[1:]
	}
	return use
}

// estimate computes ĉ, f̂, σ, the aim and the growth allowance from the
// history; ok is false when nothing usable has been measured.
func estimate(history []BatchStat, target time.Duration) (e costEstimate, ok bool) {
	use := usable(history)
	if len(use) == 0 {
		return e, false
	}
	last := use[len(use)-1]
	e = costEstimate{cost: costPerRecord(use), aim: 1, prev: float64(last.Limit), last: float64(last.Processing) / float64(last.Rows)}
	if e.prev <= 0 {
		e.prev = float64(last.Rows)
	}
	var overheads []time.Duration
	for i := len(use) - 1; i >= 0 && len(overheads) < 5; i-- {
		overheads = append(overheads, use[i].Overhead)
	}
	slices.Sort(overheads)
	e.overhead = float64(overheads[len(overheads)/2])

	// Prediction errors, oldest first: each batch's cost per record
	// against the estimate made before it.
	var errs []float64
	var sized []bool // the batch was long enough to confirm the warm-up aim
	first := false
	for i, h := range history {
		first = first || h.First
		if h.Rows <= 0 || h.Processing <= 0 {
			continue
		}
		if prior := usable(history[:i]); len(prior) > 0 {
			errs = append(errs, float64(h.Processing)/float64(h.Rows)/costPerRecord(prior)-1)
			sized = append(sized, float64(h.Processing+h.Overhead) >= WarmUpShare/2*float64(target))
		}
	}
	var v, sw float64
	w := 1.0
	for i := len(errs) - 1; i >= 0 && w > 1e-3; i-- {
		r := max(0, errs[i])
		v += w * r * r
		sw += w
		w *= SpreadDecay
	}
	if sw > 0 {
		e.spread = min(math.Sqrt(v/sw), MaxSpread)
	}
	// A slow companion: the RMS of all recent positive errors, capped, so
	// that recurring slow batches (a garbage-collection cycle every few
	// batches) keep a margin between them.
	if n := len(errs); n > 0 {
		worst := slices.Max(errs[max(0, n-SlowSpreadBatches):])
		e.spread = max(e.spread, min(SlowSpreadShare*worst, MaxSlowSpread))
	}

	// Warm-up: from the run's first batch until ConfidentBatches batches in
	// a row, each at least half the warm-up aim long (small batches say
	// little about large ones), cost what was predicted; then one batch
	// halfway.
	if first {
		e.aim = WarmUpShare
		for i, run := 0, 0; i < len(errs); i++ {
			if !sized[i] {
				continue
			}
			if math.Abs(errs[i]) > WarmTolerance {
				run = 0
				continue
			}
			if run++; run >= ConfidentBatches {
				e.aim = 1
				if i == len(errs)-1 {
					e.aim = (1 + WarmUpShare) / 2
				}
				break
			}
		}
	}

	e.growth = 2
	if dur := float64(last.Processing + last.Overhead); dur > 0 && len(use) >= FastGrowthBatches {
		scaled := float64(last.Rows) * GrowthHeadroom * e.aim * float64(target) / (dur * (1 + e.spread))
		e.growth = min(MaxGrowth, max(2, scaled/e.prev))
	}
	return e, true
}

// costPerRecord is ĉ = Σ wᵢ·pᵢ / Σ wᵢ·nᵢ over batches (oldest first), wᵢ =
// Decay^age, in ns per record.
func costPerRecord(batches []BatchStat) float64 {
	var sp, sn float64
	w := 1.0
	for i := len(batches) - 1; i >= 0 && w > 1e-3; i-- {
		sp += w * float64(batches[i].Processing)
		sn += w * float64(batches[i].Rows)
		w *= Decay
	}
	return sp / sn
}

// BudgetLimit returns how many records fit in budget bytes given the
// in-memory bytes per record measured on recent batches (history, oldest
// first), or -1 when nothing is known yet. reserve is subtracted from the
// budget first (fetch buffers, sink buffers); extraPerRecord is added to
// the bytes per record (memory a record adds beyond the batch: state).
func BudgetLimit(budget, reserve, extraPerRecord int64, history []BatchStat) int64 {
	if budget <= 0 {
		return -1
	}
	var bytes, rows int64
	for i := len(history) - 1; i >= 0 && i >= len(history)-8; i-- {
		bytes += history[i].Bytes
		rows += history[i].Rows
	}
	if rows == 0 || bytes == 0 {
		return -1
	}
	per := float64(bytes)/float64(rows) + float64(max(0, extraPerRecord))
	room := budget - reserve
	if room < budget/10 {
		room = budget / 10
	}
	n := int64(float64(room) / per)
	return max(n, 1)
}
